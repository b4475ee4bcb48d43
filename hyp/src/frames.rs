//! The machine-frame allocator for guest memory and stage-2 tables: a buddy
//! allocator (`buddy_system_allocator::FrameAllocator`) over the free RAM
//! ranges, with the accounting the monitor reports.

use crate::memmap::Range;
use crate::pagetable::PAGE_SIZE;
use buddy_system_allocator::FrameAllocator;

/// Frame allocator with counters.
pub struct Frames {
    inner: FrameAllocator<32>,
    total: u64,
    free: u64,
}

impl Default for Frames {
    fn default() -> Self {
        Self::new()
    }
}

impl Frames {
    /// An allocator with no memory.
    pub fn new() -> Self {
        Self {
            inner: FrameAllocator::new(),
            total: 0,
            free: 0,
        }
    }

    /// Adds a range of free RAM (rounded inwards to whole pages).
    pub fn add(&mut self, r: Range) {
        let start = r.start.div_ceil(PAGE_SIZE);
        let end = r.end / PAGE_SIZE;
        if end > start {
            self.inner.add_frame(start as usize, end as usize);
            self.total += end - start;
            self.free += end - start;
        }
    }

    /// Allocates `count` contiguous frames aligned to `count` rounded up to a
    /// power of two; returns the physical address of the first.
    pub fn alloc(&mut self, count: u64) -> Option<u64> {
        let n = count.next_power_of_two();
        let f = self.inner.alloc(n as usize)? as u64;
        self.free -= n;
        Some(f * PAGE_SIZE)
    }

    /// Returns frames from `alloc(count)` at `pa`.
    pub fn free(&mut self, pa: u64, count: u64) {
        let n = count.next_power_of_two();
        self.inner.dealloc((pa / PAGE_SIZE) as usize, n as usize);
        self.free += n;
    }

    /// Frames managed.
    pub fn total_frames(&self) -> u64 {
        self.total
    }

    /// Frames not allocated.
    pub fn free_frames(&self) -> u64 {
        self.free
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn aligned_blocks_and_accounting() {
        let mut f = Frames::new();
        f.add(Range {
            start: 0x4000_0000,
            end: 0x4100_0000,
        });
        assert_eq!(f.total_frames(), 4096);
        let a = f.alloc(512).unwrap();
        assert_eq!(a % (2 << 20), 0, "2 MiB blocks are 2 MiB aligned");
        assert_eq!(f.free_frames(), 4096 - 512);
        f.free(a, 512);
        assert_eq!(f.free_frames(), 4096);
        assert!(f.alloc(8192).is_none());
    }

    proptest! {
        /// Allocations never overlap, and freeing everything restores the
        /// free count.
        #[test]
        fn no_overlap(sizes in prop::collection::vec(1u64..64, 1..40)) {
            let mut f = Frames::new();
            f.add(Range { start: 0x10_0000, end: 0x10_0000 + 2048 * PAGE_SIZE });
            let mut got: Vec<(u64, u64)> = Vec::new();
            for n in sizes {
                if let Some(a) = f.alloc(n) {
                    let len = n.next_power_of_two() * PAGE_SIZE;
                    for &(b, l) in &got {
                        prop_assert!(a + len <= b || b + l <= a);
                    }
                    prop_assert!(a >= 0x10_0000 && a + len <= 0x10_0000 + 2048 * PAGE_SIZE);
                    got.push((a, len));
                }
            }
            for (a, l) in got {
                f.free(a, l / PAGE_SIZE);
            }
            prop_assert_eq!(f.free_frames(), 2048);
        }
    }
}
