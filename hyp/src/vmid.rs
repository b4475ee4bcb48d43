//! VMIDs: the tags that keep each domain's TLB entries apart. A domain holds
//! one from creation to destruction; a VMID is handed out again only after
//! the monitor has invalidated every TLB entry tagged with it (the caller
//! does that before [`VmidPool::free`]).

/// VMID 0 is never given to a domain (it tags nothing valid).
pub const FIRST: u16 = 1;

/// A pool of 8-bit VMIDs (the width every AArch64 CPU supports).
#[derive(Clone, Debug)]
pub struct VmidPool {
    used: [u64; 4],
    limit: u16,
}

impl Default for VmidPool {
    fn default() -> Self {
        Self::new(256)
    }
}

impl VmidPool {
    /// A pool of VMIDs `FIRST..limit` (`limit <= 256`).
    pub fn new(limit: u16) -> Self {
        Self {
            used: [0; 4],
            limit: limit.min(256),
        }
    }

    /// The lowest free VMID, now taken; `None` when all are in use.
    pub fn alloc(&mut self) -> Option<u16> {
        let v = (FIRST..self.limit).find(|&v| !self.is_used(v))?;
        self.used[v as usize / 64] |= 1 << (v % 64);
        Some(v)
    }

    /// Returns `vmid` to the pool. The caller has invalidated its TLB
    /// entries on every CPU. Returns false (and changes nothing) if it was
    /// not taken.
    pub fn free(&mut self, vmid: u16) -> bool {
        if vmid < FIRST || vmid >= self.limit || !self.is_used(vmid) {
            return false;
        }
        self.used[vmid as usize / 64] &= !(1 << (vmid % 64));
        true
    }

    /// Whether `vmid` is taken.
    pub fn is_used(&self, vmid: u16) -> bool {
        vmid < 256 && self.used[vmid as usize / 64] & (1 << (vmid % 64)) != 0
    }

    /// How many are taken.
    pub fn in_use(&self) -> u32 {
        self.used.iter().map(|w| w.count_ones()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn recycles_after_free_and_runs_out() {
        let mut p = VmidPool::new(4);
        assert_eq!(p.alloc(), Some(1));
        assert_eq!(p.alloc(), Some(2));
        assert_eq!(p.alloc(), Some(3));
        assert_eq!(p.alloc(), None);
        assert!(p.free(2));
        assert!(!p.free(2), "double free refused");
        assert!(!p.free(0));
        assert_eq!(p.alloc(), Some(2));
        assert_eq!(p.in_use(), 3);
    }

    proptest! {
        #[test]
        fn never_hands_out_a_vmid_twice(ops in proptest::collection::vec(any::<(bool, u8)>(), 0..600)) {
            let mut p = VmidPool::default();
            let mut live = std::collections::BTreeSet::new();
            for (alloc, x) in ops {
                if alloc {
                    match p.alloc() {
                        Some(v) => { prop_assert!(v >= FIRST); prop_assert!(live.insert(v)); }
                        None => prop_assert_eq!(live.len(), 255),
                    }
                } else {
                    let v = x as u16;
                    prop_assert_eq!(p.free(v), live.remove(&v));
                }
                prop_assert_eq!(p.in_use() as usize, live.len());
            }
        }
    }
}
