//! The console back end: many domains' console output on one serial
//! line, each line labelled `[name] `, and the serial line's input sent
//! to one domain at a time.
//!
//! # Switching input
//!
//! Typing **Ctrl-]** (byte `0x1d`) then a digit `1`..`9` sends input to
//! the domain with that number in the list (the order of
//! [`ConsoleMux::add`]); Ctrl-] then `0` sends input nowhere; Ctrl-]
//! twice sends one Ctrl-] to the current domain; Ctrl-] then `?` prints the
//! list. Any other byte after Ctrl-] is dropped. Each switch prints
//! `[console] input to NAME`. (Ctrl-A is QEMU's own escape on its serial
//! console, so it is not used here.)
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
//! let a = mux.add("alice");
//! let b = mux.add("bob");
//! let mut serial = Vec::new();
//! mux.output(a, b"hel", &mut serial);
//! mux.output(b, b"hi\n", &mut serial);
//! mux.output(a, b"lo\n", &mut serial);
//! assert_eq!(serial, b"[bob] hi\r\n[alice] hello\r\n");
//! serial.clear();
//! let to = mux.input(&[0x1d, b'2', b'x'], &mut serial);
//! assert_eq!(to, vec![(b, b"x".to_vec())]);
//! assert_eq!(serial, b"[console] input to bob\r\n");
//! ```

use alloc::string::String;
use alloc::vec::Vec;

/// The input escape byte: Ctrl-].
pub const ESCAPE: u8 = 0x1d;
/// Longest line written at once.
pub const LINE_MAX: usize = 160;

/// A console's index in the mux.
pub type ConsoleId = usize;

struct Console {
    name: String,
    line: Vec<u8>,
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

    /// Adds a domain's console labelled `name` (the first gets the input).
    pub fn add(&mut self, name: &str) -> ConsoleId {
        let name = name
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(32)
            .collect();
        self.consoles.push(Console {
            name,
            line: Vec::new(),
        });
        let id = self.consoles.len() - 1;
        if self.focus.is_none() {
            self.focus = Some(id);
        }
        id
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
        let Some(c) = self.consoles.get_mut(id) else {
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
                    let i = (b - b'1') as usize;
                    if let Some(c) = self.consoles.get(i) {
                        self.focus = Some(i);
                        out.extend_from_slice(b"[console] input to ");
                        out.extend_from_slice(c.name.as_bytes());
                        out.extend_from_slice(b"\r\n");
                    } else {
                        out.extend_from_slice(b"[console] no such console\r\n");
                    }
                }
                b'?' => {
                    for (i, c) in self.consoles.iter().enumerate().take(9) {
                        let mark = if self.focus == Some(i) { "*" } else { " " };
                        let line = alloc::format!("[console] {mark}{} {}\r\n", i + 1, c.name);
                        out.extend_from_slice(line.as_bytes());
                    }
                }
                _ => {}
            }
        }
        res
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
        let (a, b) = (m.add("a"), m.add("b"));
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
        let a = m.add("a\x1b[2J");
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
        let (a, b) = (m.add("a"), m.add("b"));
        let mut out = Vec::new();
        assert_eq!(m.input(b"ls", &mut out), vec![(a, b"ls".to_vec())]);
        assert_eq!(m.input(&[ESCAPE], &mut out), vec![]);
        assert_eq!(m.input(b"2pwd", &mut out), vec![(b, b"pwd".to_vec())]);
        assert_eq!(out, b"[console] input to b\r\n");
        out.clear();
        assert_eq!(
            m.input(
                &[b'x', ESCAPE, ESCAPE, b'y', ESCAPE, b'7', ESCAPE, b'q'],
                &mut out
            ),
            vec![(b, vec![b'x', ESCAPE, b'y'])]
        );
        assert_eq!(out, b"[console] no such console\r\n");
        out.clear();
        assert_eq!(
            m.input(&[ESCAPE, b'0', b'z', ESCAPE, b'?'], &mut out),
            vec![]
        );
        assert_eq!(m.focus(), None);
        assert_eq!(
            out,
            b"[console] input to nobody\r\n[console]  1 a\r\n[console]  2 b\r\n"
        );
        m.input(&[ESCAPE, b'1', b'k'], &mut out);
        assert_eq!(m.focus(), Some(a));
    }

    proptest! {
        /// Whatever the domains write, every output line is labelled with
        /// one of their names and the text of each domain comes out whole
        /// and in order.
        #[test]
        fn output_is_complete_and_labelled(chunks in proptest::collection::vec((0usize..3, proptest::collection::vec(prop_oneof![Just(b'\n'), b'a'..=b'z'], 0..50)), 0..40)) {
            let mut m = ConsoleMux::new();
            let names = ["x", "y", "z"];
            for n in names { m.add(n); }
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
    }
}
