//! The monitor's console: its own log lines and every domain's output,
//! labelled, on the one serial line.

use core::fmt::Write;
use core::sync::atomic::{AtomicUsize, Ordering};
use platform::pl011::Pl011;

static UART_BASE: AtomicUsize = AtomicUsize::new(0);
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Sets the UART used from now on.
pub fn init(base: usize) {
    UART_BASE.store(base, Ordering::Release);
}

fn uart() -> Option<Pl011> {
    match UART_BASE.load(Ordering::Acquire) {
        0 => None,
        // SAFETY: the base came from the device tree's PL011 node and is
        // mapped as device memory (or the MMU is still off).
        b => Some(unsafe { Pl011::new(b) }),
    }
}

/// Turns on the UART's receive interrupt (see [`crate::console_in`]).
pub fn enable_input() {
    if let Some(u) = uart() {
        u.enable_rx_interrupt();
    }
}

/// Clears the receive interrupt, then hands the bytes waiting in the
/// UART's receive FIFO (at most 256; if more keep coming, the interrupt is
/// raised again) to `f`. Never waits.
///
/// The order matters: a byte that arrives after the FIFO was found empty
/// raises the interrupt anew. Clearing after draining could erase the
/// interrupt of such a byte, and the receive interrupt, raised when the
/// FIFO reaches its level, would then never come again.
pub fn drain_input(mut f: impl FnMut(u8)) {
    if let Some(u) = uart() {
        u.clear_rx_interrupt();
        for _ in 0..256 {
            match u.read_byte() {
                Some(b) => f(b),
                None => break,
            }
        }
    }
}

/// Writes formatted text under the console lock.
pub fn write_fmt(args: core::fmt::Arguments) {
    if let Some(mut u) = uart() {
        let _g = LOCK.lock();
        let _ = u.write_fmt(args);
    }
}

/// Writes without taking the lock: for panic and fault reports, which may
/// happen while the lock is held.
pub fn write_fmt_unlocked(args: core::fmt::Arguments) {
    if let Some(mut u) = uart() {
        let _ = u.write_fmt(args);
    }
}

/// Prints a line on the console.
#[macro_export]
macro_rules! println {
    ($($t:tt)*) => { $crate::console::write_fmt(format_args!("{}\n", format_args!($($t)*))) };
}

/// Writes one line of a domain's output, labelled with its name.
pub fn domain_line(name: &str, line: &[u8]) {
    if let Some(u) = uart() {
        let _g = LOCK.lock();
        u.write_bytes(b"[");
        u.write_bytes(name.as_bytes());
        u.write_bytes(b"] ");
        // Control characters other than tab are shown as '.', so a guest
        // cannot forge monitor lines or move the cursor.
        for &b in line {
            u.write_byte(if b == b'\t' || (0x20..0x7f).contains(&b) {
                b
            } else {
                b'.'
            });
        }
        u.write_bytes(b"\n");
    }
}

/// Collects a domain's console bytes into lines.
#[derive(Default, Debug)]
pub struct LineBuffer {
    buf: heapless::Vec<u8, 200>,
}

impl LineBuffer {
    /// Adds bytes; calls `emit` for every complete (or full) line.
    pub fn push(&mut self, bytes: &[u8], mut emit: impl FnMut(&[u8])) {
        for &b in bytes {
            match b {
                b'\n' => {
                    emit(&self.buf);
                    self.buf.clear();
                }
                b'\r' => {}
                _ => {
                    if self.buf.is_full() {
                        emit(&self.buf);
                        self.buf.clear();
                    }
                    let _ = self.buf.push(b);
                }
            }
        }
    }

    /// Emits a pending partial line.
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(&self.buf);
            self.buf.clear();
        }
    }
}

/// `log` output on the console.
pub struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        match r.level() {
            log::Level::Info => write_fmt(format_args!("hyp: {}\n", r.args())),
            l => write_fmt(format_args!("hyp: {}: {}\n", l.as_str(), r.args())),
        }
    }
    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_long_lines_wrapped() {
        let mut lb = LineBuffer::default();
        let mut out: Vec<Vec<u8>> = Vec::new();
        lb.push(b"ab\r\ncd", |l| out.push(l.to_vec()));
        assert_eq!(out, vec![b"ab".to_vec()]);
        lb.push(&[b'x'; 450], |l| out.push(l.to_vec()));
        lb.flush(|l| out.push(l.to_vec()));
        assert_eq!(out.len(), 4);
        assert_eq!(out[1].len(), 200);
        assert_eq!(&out[1][..2], b"cd");
        assert_eq!(
            out.iter().map(|l| l.len()).sum::<usize>(),
            2 + 2 + 450,
            "nothing lost"
        );
    }
}
