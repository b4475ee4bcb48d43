//! Console output through the `console_io` hypercall: `println!` and the
//! `log` backend. Each line goes out in as few hypercalls as possible (one
//! for lines up to `LINE_MAX` bytes); the monitor prefixes it with the
//! domain's name, so nothing is prepended here.

use core::fmt::{self, Write};
use hypercall_abi::guest::console_write;

/// Bytes buffered before a (partial) line is sent.
const LINE_MAX: usize = 256;

/// Collects formatted text and sends it in chunks of `LINE_MAX` bytes.
struct LineWriter {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl LineWriter {
    const fn new() -> Self {
        LineWriter {
            buf: [0; LINE_MAX],
            len: 0,
        }
    }

    fn flush(&mut self) {
        // Through the PV console once a session installed it; else (or if
        // the back end is gone) the monitor's console. Nowhere to report a
        // failed console write: drop the text.
        if !crate::pv::console_front::write_installed(&self.buf[..self.len]) {
            let _ = console_write(&self.buf[..self.len]);
        }
        self.len = 0;
    }
}

impl Write for LineWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut bytes = s.as_bytes();
        while !bytes.is_empty() {
            if self.len == LINE_MAX {
                self.flush();
            }
            let n = bytes.len().min(LINE_MAX - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
        }
        Ok(())
    }
}

/// Print `args` followed by a newline (use [`println!`]).
pub fn print_line(args: fmt::Arguments) {
    let mut w = LineWriter::new();
    let _ = w.write_fmt(args);
    let _ = w.write_str("\n");
    w.flush();
}

/// `println!` for the guest: formats one line onto the monitor console.
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print_line(format_args!($($arg)*))
    };
}
pub(crate) use println;

/// The `log` backend: every record is one console line, the message only.
struct ConsoleLogger;

impl log::Log for ConsoleLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            print_line(*record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: ConsoleLogger = ConsoleLogger;

/// Route the `log` macros to the console (levels up to `Info`).
pub fn init_logger() {
    // Only fails if a logger is already set, which then stays in use.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}
