//! Counting a test mode's checks: each check prints one line,
//! `guest: <prefix> <what>: <detail> ok` (or `FAIL`), which the QEMU
//! scenarios match, and the mode ends with `passed n/n`.

use crate::console::println;

/// Checks passed and run so far.
pub struct Tally {
    /// Word printed after `guest:` on every line (e.g. "blk").
    prefix: &'static str,
    /// Checks that passed.
    pub ok: u32,
    /// Checks run.
    pub all: u32,
}

impl Tally {
    /// No checks yet.
    pub const fn new(prefix: &'static str) -> Self {
        Tally {
            prefix,
            ok: 0,
            all: 0,
        }
    }

    /// Records one check and prints its line.
    pub fn check(&mut self, what: &str, good: bool, detail: core::fmt::Arguments) {
        self.all += 1;
        if good {
            self.ok += 1;
        }
        let verdict = if good { "ok" } else { "FAIL" };
        println!("guest: {} {what}: {detail} {verdict}", self.prefix);
    }
}
