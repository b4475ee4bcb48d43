//! The console back end: many domains' console output on one serial
//! line, each line labelled `[name] `, and the serial line's input sent
//! to one domain at a time.
//!
//! # Switching input
//!
//! Typing **Ctrl-]** (byte `0x1d`) then a digit `1`..`9` sends input to
//! the domain with that domain id (the `N` of `domN` in the monitor's and
//! the driver domain's messages); Ctrl-] then `0` sends input nowhere (it
//! is discarded); Ctrl-] twice sends one Ctrl-] to the current domain;
//! Ctrl-] then `?` lists the consoles (`*` marks the one with the input).
//! Any other byte after Ctrl-] is dropped. Each switch prints
//! `[console] input to NAME (domN)`; a digit with no console behind it
//! prints `[console] no console for domN` and changes nothing. At first the
//! input goes to the first console added. When the console with the input
//! is removed, input goes nowhere until the next switch. (Ctrl-A is QEMU's
//! own escape on its serial console, so it is not used here.)
//!
//! # Output
//!
//! Bytes of a domain are buffered until a newline, then written as one
//! labelled line, so lines of different domains never mix. A line longer
//! than [`LINE_MAX`] is cut and continued on a new labelled line. Carriage
//! returns are dropped (the serial side writes `\r\n`). Control bytes
//! other than tab are shown as `^X`, so a guest cannot drive the
//! terminal.
//!
//! ```
//! use pvdev::consback::*;
//! let mut mux = ConsoleMux::new();
//! let a = mux.add(1, "alice");
//! let b = mux.add(2, "bob");
//! let mut serial = Vec::new();
//! mux.output(a, b"hel", &mut serial);
//! mux.output(b, b"hi\n", &mut serial);
//! mux.output(a, b"lo\n", &mut serial);
//! assert_eq!(serial, b"[bob] hi\r\n[alice] hello\r\n");
//! serial.clear();
//! let to = mux.input(&[0x1d, b'2', b'x'], &mut serial);
//! assert_eq!(to, vec![(b, b"x".to_vec())]);
//! assert_eq!(serial, b"[console] input to bob (dom2)\r\n");
//! ```

use crate::DomId;
use alloc::string::String;
use alloc::vec::Vec;

/// The input escape byte: Ctrl-].
pub const ESCAPE: u8 = 0x1d;
/// Longest line written at once.
pub const LINE_MAX: usize = 160;

/// A console's index in the mux.
pub type ConsoleId = usize;

struct Console {
    dom: DomId,
    name: String,
    line: Vec<u8>,
    /// Removed: the slot may be reused.
    gone: bool,
}

/// The console multiplexer.
pub struct ConsoleMux {
    consoles: Vec<Console>,
    focus: Option<ConsoleId>,
    escaped: bool,
}

impl Default for ConsoleMux {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleMux {
    /// No consoles; input goes nowhere until a domain is added.
    pub fn new() -> Self {
        ConsoleMux {
            consoles: Vec::new(),
            focus: None,
            escaped: false,
        }
    }

    /// Adds domain `dom`'s console labelled `name` (the first added gets
    /// the input).
    pub fn add(&mut self, dom: DomId, name: &str) -> ConsoleId {
        let name = name
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(32)
            .collect();
        let c = Console {
            dom,
            name,
            line: Vec::new(),
            gone: false,
        };
        let first = self.consoles.iter().all(|c| c.gone) && self.focus.is_none();
        let id = match self.consoles.iter().position(|c| c.gone) {
            Some(i) => {
                self.consoles[i] = c;
                i
            }
            None => {
                self.consoles.push(c);
                self.consoles.len() - 1
            }
        };
        if first {
            self.focus = Some(id);
        }
        id
    }

    /// Removes console `id` (after flushing it): its partial line is
    /// written to `out`; if it had the input, the input goes nowhere (and
    /// `out` says so).
    pub fn remove(&mut self, id: ConsoleId, out: &mut Vec<u8>) {
        let Some(c) = self.consoles.get_mut(id).filter(|c| !c.gone) else {
            return;
        };
        if !c.line.is_empty() {
            Self::emit(&c.name, &c.line, out);
        }
        c.line = Vec::new();
        c.gone = true;
        if self.focus == Some(id) {
            self.focus = None;
            out.extend_from_slice(b"[console] input to nobody (");
            out.extend_from_slice(c.name.as_bytes());
            out.extend_from_slice(b" is gone)\r\n");
        }
    }

    /// The console receiving input.
    pub fn focus(&self) -> Option<ConsoleId> {
        self.focus
    }

    fn emit(name: &str, line: &[u8], out: &mut Vec<u8>) {
        out.push(b'[');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"] ");
        for &c in line {
            match c {
                b'\t' | 0x20..=0x7e | 0x80..=0xff => out.push(c),
                _ => {
                    out.push(b'^');
                    out.push((c & 0x1f) + b'@');
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Takes output bytes of console `id` (unknown ids are ignored) and
    /// appends complete labelled lines to `out`.
    pub fn output(&mut self, id: ConsoleId, bytes: &[u8], out: &mut Vec<u8>) {
        let Some(c) = self.consoles.get_mut(id).filter(|c| !c.gone) else {
            return;
        };
        for &b in bytes {
            match b {
                b'\n' => {
                    Self::emit(&c.name, &c.line, out);
                    c.line.clear();
                }
                b'\r' => {}
                _ => {
                    c.line.push(b);
                    if c.line.len() >= LINE_MAX {
                        Self::emit(&c.name, &c.line, out);
                        c.line.clear();
                    }
                }
            }
        }
    }

    /// Writes out any partial lines (e.g. before shutting down).
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        for c in &mut self.consoles {
            if !c.line.is_empty() {
                Self::emit(&c.name, &c.line, out);
                c.line.clear();
            }
        }
    }

    /// Takes bytes typed on the serial line: handles the switch sequence
    /// (messages to `out`) and returns the bytes for each console, in
    /// order.
    pub fn input(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Vec<(ConsoleId, Vec<u8>)> {
        let mut res: Vec<(ConsoleId, Vec<u8>)> = Vec::new();
        let send = |to: Option<ConsoleId>, b: u8, res: &mut Vec<(ConsoleId, Vec<u8>)>| {
            if let Some(t) = to {
                match res.last_mut() {
                    Some((l, v)) if *l == t => v.push(b),
                    _ => res.push((t, alloc::vec![b])),
                }
            }
        };
        for &b in bytes {
            if !self.escaped {
                if b == ESCAPE {
                    self.escaped = true;
                } else {
                    send(self.focus, b, &mut res);
                }
                continue;
            }
            self.escaped = false;
            match b {
                ESCAPE => send(self.focus, ESCAPE, &mut res),
                b'0' => {
                    self.focus = None;
                    out.extend_from_slice(b"[console] input to nobody\r\n");
                }
                b'1'..=b'9' => {
                    let dom = (b - b'0') as DomId;
                    match self.consoles.iter().position(|c| !c.gone && c.dom == dom) {
                        Some(i) => {
                            self.focus = Some(i);
                            let line = alloc::format!(
                                "[console] input to {} (dom{dom})\r\n",
                                self.consoles[i].name
                            );
                            out.extend_from_slice(line.as_bytes());
                        }
                        None => {
                            let line = alloc::format!("[console] no console for dom{dom}\r\n");
                            out.extend_from_slice(line.as_bytes());
                        }
                    }
                }
                b'?' => {
                    let mut live: Vec<(usize, &Console)> = self
                        .consoles
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| !c.gone)
                        .collect();
                    live.sort_by_key(|(_, c)| c.dom);
                    for (i, c) in live {
                        let mark = if self.focus == Some(i) { "*" } else { " " };
                        let line = alloc::format!("[console] {mark}dom{} {}\r\n", c.dom, c.name);
                        out.extend_from_slice(line.as_bytes());
                    }
                }
                _ => {}
            }
        }
        res
    }
}

/// The guest side of console input: collects typed bytes into lines.
/// A line ends at carriage return or newline (so `\r\n` is one end, and
/// empty lines are skipped); backspace and delete remove the last byte;
/// a line longer than [`LINE_MAX`] is cut and handed over as it is.
///
/// ```
/// use pvdev::consback::LineReader;
/// let mut r = LineReader::new();
/// let mut lines = Vec::new();
/// r.push(b"hel", |l| lines.push(l.to_vec()));
/// r.push(b"lo\r\nquix\x7ft\n", |l| lines.push(l.to_vec()));
/// assert_eq!(lines, [b"hello".to_vec(), b"quit".to_vec()]);
/// ```
#[derive(Default)]
pub struct LineReader {
    line: Vec<u8>,
}

impl LineReader {
    /// Nothing typed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes typed bytes; calls `line` for each complete line.
    pub fn push(&mut self, bytes: &[u8], mut line: impl FnMut(&[u8])) {
        for &b in bytes {
            match b {
                b'\r' | b'\n' => {
                    if !self.line.is_empty() {
                        line(&self.line);
                        self.line.clear();
                    }
                }
                0x08 | 0x7f => {
                    self.line.pop();
                }
                _ => {
                    self.line.push(b);
                    if self.line.len() >= LINE_MAX {
                        line(&self.line);
                        self.line.clear();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    #[test]
    fn lines_are_labelled_and_never_mixed() {
        let mut m = ConsoleMux::new();
        let (a, b) = (m.add(1, "a"), m.add(2, "b"));
        let mut out = Vec::new();
        m.output(a, b"one\r\ntw", &mut out);
        m.output(b, b"B1\nB", &mut out);
        m.output(a, b"o\n", &mut out);
        m.output(9, b"ignored\n", &mut out);
        m.flush(&mut out);
        assert_eq!(out, b"[a] one\r\n[b] B1\r\n[a] two\r\n[b] B\r\n");
    }

    #[test]
    fn control_bytes_are_shown_and_long_lines_cut() {
        let mut m = ConsoleMux::new();
        let a = m.add(1, "a\x1b[2J");
        let mut out = Vec::new();
        m.output(a, b"x\x1b[31my\x07\n", &mut out);
        assert_eq!(out, b"[a[2J] x^[[31my^G\r\n");
        out.clear();
        m.output(a, &[b'z'; LINE_MAX + 5], &mut out);
        m.output(a, b"\n", &mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].len(), "[a[2J] ".len() + LINE_MAX);
        assert_eq!(lines[1], "[a[2J] zzzzz");
    }

    #[test]
    fn switching_input() {
        let mut m = ConsoleMux::new();
        // Digits are domain ids, whatever the order the consoles came in.
        let (b, a) = (m.add(4, "b"), m.add(2, "a"));
        let mut out = Vec::new();
        assert_eq!(m.focus(), Some(b), "the first console added has the input");
        m.input(&[ESCAPE, b'2'], &mut out);
        assert_eq!(m.focus(), Some(a));
        out.clear();
        assert_eq!(m.input(b"ls", &mut out), vec![(a, b"ls".to_vec())]);
        assert_eq!(m.input(&[ESCAPE], &mut out), vec![]);
        assert_eq!(m.input(b"4pwd", &mut out), vec![(b, b"pwd".to_vec())]);
        assert_eq!(out, b"[console] input to b (dom4)\r\n");
        out.clear();
        assert_eq!(
            m.input(
                &[b'x', ESCAPE, ESCAPE, b'y', ESCAPE, b'7', ESCAPE, b'q'],
                &mut out
            ),
            vec![(b, vec![b'x', ESCAPE, b'y'])]
        );
        assert_eq!(out, b"[console] no console for dom7\r\n");
        out.clear();
        assert_eq!(
            m.input(&[ESCAPE, b'0', b'z', ESCAPE, b'?'], &mut out),
            vec![]
        );
        assert_eq!(m.focus(), None);
        assert_eq!(
            out,
            b"[console] input to nobody\r\n[console]  dom2 a\r\n[console]  dom4 b\r\n"
        );
        assert_eq!(
            m.input(&[ESCAPE, b'2', b'k'], &mut out),
            vec![(a, vec![b'k'])]
        );
        assert_eq!(m.focus(), Some(a));
    }

    #[test]
    fn typed_lines() {
        let mut r = LineReader::new();
        let mut lines: Vec<Vec<u8>> = Vec::new();
        r.push(b"\r\n\nab\x08\x08\x08c\r", |l| lines.push(l.to_vec()));
        assert_eq!(lines, vec![b"c".to_vec()]);
        lines.clear();
        r.push(&[b'x'; LINE_MAX + 3], |l| lines.push(l.to_vec()));
        r.push(b"\n", |l| lines.push(l.to_vec()));
        assert_eq!(lines, vec![vec![b'x'; LINE_MAX], b"xxx".to_vec()]);
    }

    #[test]
    fn removing_the_focused_console_sends_input_nowhere() {
        let mut m = ConsoleMux::new();
        let (a, b) = (m.add(2, "a"), m.add(3, "b"));
        let mut out = Vec::new();
        m.output(a, b"half", &mut out);
        m.remove(a, &mut out);
        assert_eq!(
            out,
            b"[a] half\r\n[console] input to nobody (a is gone)\r\n"
        );
        out.clear();
        assert_eq!(m.input(b"x", &mut out), vec![]);
        m.output(a, b"late\n", &mut out);
        assert_eq!(out, b"", "a removed console shows nothing");
        m.input(&[ESCAPE, b'2'], &mut out);
        assert_eq!(out, b"[console] no console for dom2\r\n");
        out.clear();
        // The slot is reused; the other console keeps its id.
        let c = m.add(5, "c");
        assert_eq!(c, a);
        assert_eq!(m.focus(), None, "switching is the user's choice");
        m.input(&[ESCAPE, b'3'], &mut out);
        assert_eq!(m.input(b"y", &mut out), vec![(b, b"y".to_vec())]);
        m.remove(b, &mut out);
        m.remove(b, &mut out);
        m.remove(99, &mut out);
        out.clear();
        m.input(&[ESCAPE, b'5', b'z'], &mut out);
        assert_eq!(out, b"[console] input to c (dom5)\r\n");
    }

    proptest! {
        /// Whatever the domains write, every output line is labelled with
        /// one of their names and the text of each domain comes out whole
        /// and in order.
        #[test]
        fn output_is_complete_and_labelled(chunks in proptest::collection::vec((0usize..3, proptest::collection::vec(prop_oneof![Just(b'\n'), b'a'..=b'z'], 0..50)), 0..40)) {
            let mut m = ConsoleMux::new();
            let names = ["x", "y", "z"];
            for (i, n) in names.iter().enumerate() { m.add(i as DomId + 1, n); }
            let mut out = Vec::new();
            let mut sent: [Vec<u8>; 3] = Default::default();
            for (id, bytes) in &chunks {
                m.output(*id, bytes, &mut out);
                sent[*id].extend(bytes);
            }
            m.flush(&mut out);
            let text = String::from_utf8(out).unwrap();
            let mut got: [Vec<u8>; 3] = Default::default();
            for line in text.split_terminator("\r\n") {
                let (label, rest) = line.split_once("] ").unwrap();
                let i = names.iter().position(|n| label == alloc::format!("[{n}")).unwrap();
                prop_assert!(rest.len() <= LINE_MAX);
                got[i].extend(rest.as_bytes());
            }
            for i in 0..3 {
                let want: Vec<u8> = sent[i].iter().copied().filter(|&b| b != b'\n').collect();
                prop_assert_eq!(&got[i], &want);
            }
        }

        /// However the input is split into chunks, every byte typed goes
        /// to the console that had the focus when it was typed (a model of
        /// the escape rules), and nowhere else.
        #[test]
        fn input_goes_to_the_focused_console_only(
            typed in proptest::collection::vec(prop_oneof![
                Just(ESCAPE), Just(b'0'), Just(b'2'), Just(b'3'), Just(b'5'), Just(b'9'), b'a'..=b'e'
            ], 0..200),
            cut in 1usize..10,
        ) {
            let mut m = ConsoleMux::new();
            let ids = [m.add(2, "x"), m.add(3, "y"), m.add(5, "z")];
            let mut got: [Vec<u8>; 3] = Default::default();
            let mut out = Vec::new();
            for chunk in typed.chunks(cut) {
                for (id, bytes) in m.input(chunk, &mut out) {
                    got[ids.iter().position(|&i| i == id).unwrap()].extend(bytes);
                }
            }
            // The model.
            let mut want: [Vec<u8>; 3] = Default::default();
            let (mut focus, mut esc) = (Some(0usize), false);
            for &b in &typed {
                if esc {
                    esc = false;
                    match b {
                        ESCAPE => { if let Some(f) = focus { want[f].push(b) } }
                        b'0' => focus = None,
                        b'2' => focus = Some(0),
                        b'3' => focus = Some(1),
                        b'5' => focus = Some(2),
                        _ => {}
                    }
                } else if b == ESCAPE {
                    esc = true;
                } else if let Some(f) = focus {
                    want[f].push(b);
                }
            }
            prop_assert_eq!(got, want);
        }
    }
}
