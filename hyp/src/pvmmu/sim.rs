//! A simulated domain memory for host tests: RAM as shared words (so the
//! fast path's direct frame access is exercised too), and the set of frames
//! the monitor would have made read-only in stage 2.

use super::{MmuEnv, Words, PAGE};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

/// Guest RAM `[base, base + size)` as 64-bit words.
#[derive(Debug)]
pub struct SimEnv {
    base: u64,
    mem: Vec<Words>,
    /// Frames currently read-only in stage 2.
    pub protected: RefCell<BTreeSet<u64>>,
    /// Protection changes made.
    pub protect_calls: Cell<u64>,
    /// Frames written or handed out (the only ones that may be non-zero).
    touched: RefCell<BTreeSet<usize>>,
    /// Whether [`MmuEnv::frame`] gives direct access (else every access
    /// goes through `read` and `write`: the slow path only).
    pub direct: bool,
}

impl SimEnv {
    /// Zeroed RAM of `size` bytes at `base`.
    pub fn new(base: u64, size: u64) -> Self {
        Self {
            base,
            mem: (0..size / PAGE)
                .map(|_| core::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            protected: RefCell::default(),
            protect_calls: Cell::new(0),
            touched: RefCell::default(),
            direct: true,
        }
    }

    fn word(&self, ipa: u64) -> &AtomicU64 {
        assert_eq!(ipa % 8, 0);
        let off = ipa.checked_sub(self.base).expect("below RAM");
        self.touched.borrow_mut().insert((off / PAGE) as usize);
        &self.mem[(off / PAGE) as usize][(off % PAGE / 8) as usize]
    }

    /// The non-zero words by address (for comparisons).
    pub fn words(&self) -> BTreeMap<u64, u64> {
        let mut m = BTreeMap::new();
        for &i in self.touched.borrow().iter() {
            for (k, w) in self.mem[i].iter().enumerate() {
                let v = w.load(Relaxed);
                if v != 0 {
                    m.insert(self.base + i as u64 * PAGE + 8 * k as u64, v);
                }
            }
        }
        m
    }

    /// The protected frames (a copy).
    pub fn protected(&self) -> BTreeSet<u64> {
        self.protected.borrow().clone()
    }
}

impl Clone for SimEnv {
    fn clone(&self) -> Self {
        let mut c = Self::new(self.base, self.mem.len() as u64 * PAGE);
        for (a, v) in self.words() {
            c.write(a, v);
        }
        c.protected = self.protected.clone();
        c.protect_calls = self.protect_calls.clone();
        c.direct = self.direct;
        c
    }
}

impl MmuEnv for SimEnv {
    fn read(&self, ipa: u64) -> u64 {
        self.word(ipa).load(Relaxed)
    }
    fn write(&self, ipa: u64, val: u64) {
        self.word(ipa).store(val, Relaxed)
    }
    fn protect(&self, ipa: u64, table: bool) {
        self.protect_calls.set(self.protect_calls.get() + 1);
        let changed = if table {
            self.protected.borrow_mut().insert(ipa)
        } else {
            self.protected.borrow_mut().remove(&ipa)
        };
        assert!(changed, "protect({ipa:#x}, {table}) changed nothing");
    }
    fn frame(&self, ipa: u64) -> Option<&Words> {
        assert_eq!(ipa % PAGE, 0);
        let i = (ipa.checked_sub(self.base)? / PAGE) as usize;
        let f = self.mem.get(i).filter(|_| self.direct)?;
        self.touched.borrow_mut().insert(i);
        Some(f)
    }
}
