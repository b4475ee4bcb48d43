//! A simulated domain memory for host tests: descriptors by address, and
//! the set of frames the monitor would have made read-only in stage 2.

use super::MmuEnv;
use std::collections::{BTreeMap, BTreeSet};

/// Guest RAM as sparse 64-bit words (untouched words read as zero).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimEnv {
    /// Words by guest-physical address.
    pub words: BTreeMap<u64, u64>,
    /// Frames currently read-only in stage 2.
    pub protected: BTreeSet<u64>,
    /// Protection changes made.
    pub protect_calls: u64,
}

impl MmuEnv for SimEnv {
    fn read(&self, ipa: u64) -> u64 {
        assert_eq!(ipa % 8, 0);
        self.words.get(&ipa).copied().unwrap_or(0)
    }
    fn write(&mut self, ipa: u64, val: u64) {
        assert_eq!(ipa % 8, 0);
        if val == 0 {
            self.words.remove(&ipa);
        } else {
            self.words.insert(ipa, val);
        }
    }
    fn protect(&mut self, ipa: u64, table: bool) {
        self.protect_calls += 1;
        let changed = if table {
            self.protected.insert(ipa)
        } else {
            self.protected.remove(&ipa)
        };
        assert!(changed, "protect({ipa:#x}, {table}) changed nothing");
    }
}
