//! The driver domain's DMA window and the devices passed through to it.
//!
//! QEMU's `virt` has no IOMMU: a passed-through virtio device reads and
//! writes machine-physical memory. The monitor therefore gives the driver
//! domain one physically contiguous RAM window (device-tree property
//! `/hypervisor/pvh,dma-window = <base size>`) mapped at guest-physical ==
//! machine-physical, and every buffer a device sees (virtqueues, and bounce
//! buffers for data) must lie inside it. [`DmaWindow`] hands out runs of
//! pages from the window (first fit over a bitmap) and takes them back,
//! refusing frees that do not match an allocation.
//!
//! [`Passthrough`] checks what the device tree says about the window and
//! the `virtio,mmio` nodes before the driver trusts any of it: page
//! aligned, no overflow, no overlap with guest RAM or each other, each
//! device's VIRQ in `VIRQ_ARCH_0..NR_VIRQS`.
//!
//! ```
//! use pvdev::dma::DmaWindow;
//! let mut w = DmaWindow::new(0x4800_0000, 16 * 4096).unwrap();
//! let a = w.alloc(2).unwrap();
//! let b = w.alloc(1).unwrap();
//! assert_eq!((a, b), (0x4800_0000, 0x4800_2000));
//! w.free(a, 2).unwrap();
//! assert_eq!(w.alloc(13), Some(0x4800_3000)); // next fit
//! assert_eq!(w.alloc(2), Some(0x4800_0000));  // then from the start
//! assert!(w.free(b, 2).is_err(), "not the size it was allocated with");
//! ```

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use hypercall_abi::physdev::{device_for_virq, MAX_PASSTHROUGH_IRQS};

/// Page size of DMA allocations.
pub const PAGE: u64 = 4096;

/// Why a window or a free was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaError {
    /// Base or size not page aligned, zero, or overflowing.
    BadWindow,
    /// The address/size pair is not a live allocation.
    NotAllocated,
}

/// A page allocator over the DMA window.
pub struct DmaWindow {
    base: u64,
    pages: usize,
    used: Vec<bool>,
    live: BTreeMap<u64, usize>,
    next: usize,
}

impl DmaWindow {
    /// The window `base..base + size`.
    pub fn new(base: u64, size: u64) -> Result<DmaWindow, DmaError> {
        if base % PAGE != 0 || size % PAGE != 0 || size == 0 || base.checked_add(size).is_none() {
            return Err(DmaError::BadWindow);
        }
        let pages = (size / PAGE) as usize;
        Ok(DmaWindow {
            base,
            pages,
            used: vec![false; pages],
            live: BTreeMap::new(),
            next: 0,
        })
    }

    /// First address of the window.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.pages as u64 * PAGE
    }

    /// Whether `addr..addr + len` lies inside the window.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.base
            && addr
                .checked_add(len)
                .is_some_and(|e| e <= self.base + self.size())
    }

    /// Pages free.
    pub fn free_pages(&self) -> usize {
        self.used.iter().filter(|u| !**u).count()
    }

    /// `n` contiguous pages (n > 0): their first address, or `None`. Searches
    /// from just after the last allocation, then from the start, so that
    /// short-lived bounce buffers do not always reuse the same pages.
    pub fn alloc(&mut self, n: usize) -> Option<u64> {
        if n == 0 || n > self.pages {
            return None;
        }
        let start = self.find(self.next, n).or_else(|| self.find(0, n))?;
        self.used[start..start + n]
            .iter_mut()
            .for_each(|u| *u = true);
        self.next = (start + n) % self.pages;
        let addr = self.base + start as u64 * PAGE;
        self.live.insert(addr, n);
        Some(addr)
    }

    fn find(&self, from: usize, n: usize) -> Option<usize> {
        let mut run = 0;
        for i in from..self.pages {
            run = if self.used[i] { 0 } else { run + 1 };
            if run == n {
                return Some(i + 1 - n);
            }
        }
        None
    }

    /// Frees the `n` pages allocated at `addr`.
    pub fn free(&mut self, addr: u64, n: usize) -> Result<(), DmaError> {
        if self.live.get(&addr) != Some(&n) {
            return Err(DmaError::NotAllocated);
        }
        self.live.remove(&addr);
        let start = ((addr - self.base) / PAGE) as usize;
        self.used[start..start + n]
            .iter_mut()
            .for_each(|u| *u = false);
        Ok(())
    }
}

/// A `virtio,mmio` node of the driver domain's device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioDevice {
    /// Guest-physical (== machine-physical) address of its registers.
    pub addr: u64,
    /// Bytes of registers (0x200 on QEMU `virt`).
    pub size: u64,
    /// Its `pvh,virq`.
    pub virq: u32,
}

/// Why the device tree's passthrough description was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassthroughError {
    /// The DMA window is misaligned, empty, overflows or overlaps RAM.
    BadWindow,
    /// A device's registers are empty, overflow, or overlap RAM, the
    /// window or another device.
    BadDevice(u64),
    /// A device's VIRQ is not `VIRQ_ARCH_0 + k`, or is used twice.
    BadVirq(u32),
    /// More devices than passed-through interrupts.
    TooMany,
}

/// The validated passthrough description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passthrough {
    /// The DMA window (base, size).
    pub window: (u64, u64),
    /// The devices, in device-tree order.
    pub devices: Vec<MmioDevice>,
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

impl Passthrough {
    /// Checks `window` and `devices` against each other and against guest
    /// RAM (`ram` = base, size).
    pub fn validate(
        ram: (u64, u64),
        window: (u64, u64),
        devices: &[MmioDevice],
    ) -> Result<Passthrough, PassthroughError> {
        let (wb, ws) = window;
        if wb % PAGE != 0
            || ws % PAGE != 0
            || ws == 0
            || wb.checked_add(ws).is_none()
            || overlaps(window, ram)
        {
            return Err(PassthroughError::BadWindow);
        }
        if devices.len() > MAX_PASSTHROUGH_IRQS as usize {
            return Err(PassthroughError::TooMany);
        }
        let mut virqs = 0u32;
        for (i, d) in devices.iter().enumerate() {
            let r = (d.addr, d.size);
            if d.size == 0
                || d.addr.checked_add(d.size).is_none()
                || overlaps(r, ram)
                || overlaps(r, window)
            {
                return Err(PassthroughError::BadDevice(d.addr));
            }
            if devices[..i].iter().any(|o| overlaps(r, (o.addr, o.size))) {
                return Err(PassthroughError::BadDevice(d.addr));
            }
            let k = device_for_virq(d.virq).ok_or(PassthroughError::BadVirq(d.virq))?;
            if virqs & (1 << k) != 0 {
                return Err(PassthroughError::BadVirq(d.virq));
            }
            virqs |= 1 << k;
        }
        Ok(Passthrough {
            window,
            devices: devices.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RAM: (u64, u64) = (0x4000_0000, 0x100_0000);
    const WIN: (u64, u64) = (0x7000_0000, 0x80_0000);

    fn dev(addr: u64, virq: u32) -> MmioDevice {
        MmioDevice {
            addr,
            size: 0x200,
            virq,
        }
    }

    #[test]
    fn window_refusals() {
        assert_eq!(
            DmaWindow::new(0x1001, 4096).err(),
            Some(DmaError::BadWindow)
        );
        assert_eq!(DmaWindow::new(0x1000, 0).err(), Some(DmaError::BadWindow));
        assert_eq!(DmaWindow::new(0x1000, 100).err(), Some(DmaError::BadWindow));
        assert_eq!(
            DmaWindow::new(u64::MAX - 0xfff, 0x2000).err(),
            Some(DmaError::BadWindow)
        );
        let mut w = DmaWindow::new(0x10_0000, 4 * PAGE).unwrap();
        assert_eq!(w.alloc(0), None);
        assert_eq!(w.alloc(5), None);
        let a = w.alloc(4).unwrap();
        assert_eq!(w.alloc(1), None, "full");
        assert_eq!(
            w.free(a + PAGE, 1),
            Err(DmaError::NotAllocated),
            "not an allocation's start"
        );
        w.free(a, 4).unwrap();
        assert_eq!(w.free(a, 4), Err(DmaError::NotAllocated), "double free");
        assert!(w.contains(a, 4 * PAGE) && !w.contains(a, 4 * PAGE + 1) && !w.contains(a - 1, 1));
    }

    #[test]
    fn passthrough_checks() {
        let ok =
            Passthrough::validate(RAM, WIN, &[dev(0x0a00_3e00, 16), dev(0x0a00_3c00, 17)]).unwrap();
        assert_eq!(ok.devices.len(), 2);
        let bad = |w, d: &[MmioDevice]| Passthrough::validate(RAM, w, d).unwrap_err();
        assert_eq!(
            bad((0x4080_0000, 0x1000), &[]),
            PassthroughError::BadWindow,
            "window inside RAM"
        );
        assert_eq!(bad((0x7000_0800, 0x1000), &[]), PassthroughError::BadWindow);
        assert_eq!(
            bad(WIN, &[dev(0x4000_1000, 16)]),
            PassthroughError::BadDevice(0x4000_1000)
        );
        assert_eq!(
            bad(WIN, &[dev(0x7000_0000, 16)]),
            PassthroughError::BadDevice(0x7000_0000)
        );
        assert_eq!(
            bad(WIN, &[dev(0x0a00_0000, 16), dev(0x0a00_0100, 17)]),
            PassthroughError::BadDevice(0x0a00_0100)
        );
        assert_eq!(
            bad(WIN, &[dev(0x0a00_0000, 15)]),
            PassthroughError::BadVirq(15)
        );
        assert_eq!(
            bad(WIN, &[dev(0x0a00_0000, 16), dev(0x0a00_0200, 16)]),
            PassthroughError::BadVirq(16)
        );
        let nine: Vec<_> = (0..9).map(|i| dev(0x0a00_0000 + 0x200 * i, 16)).collect();
        assert_eq!(bad(WIN, &nine), PassthroughError::TooMany);
    }

    proptest! {
        /// Any sequence of allocations and frees: live allocations never
        /// overlap, stay inside the window, and the free count adds up.
        #[test]
        fn allocations_never_overlap(ops in proptest::collection::vec((1usize..6, any::<bool>(), any::<prop::sample::Index>()), 1..200)) {
            let mut w = DmaWindow::new(0x8000_0000, 32 * PAGE).unwrap();
            let mut live: Vec<(u64, usize)> = Vec::new();
            for (n, free, idx) in ops {
                if free && !live.is_empty() {
                    let (a, k) = live.remove(idx.index(live.len()));
                    prop_assert_eq!(w.free(a, k), Ok(()));
                } else if let Some(a) = w.alloc(n) {
                    prop_assert!(w.contains(a, n as u64 * PAGE));
                    for &(b, k) in &live {
                        prop_assert!(!overlaps((a, n as u64 * PAGE), (b, k as u64 * PAGE)));
                    }
                    live.push((a, n));
                } else {
                    // Refused only when no run of n free pages exists.
                    prop_assert!(w.find(0, n).is_none());
                }
                prop_assert_eq!(w.free_pages(), 32 - live.iter().map(|l| l.1).sum::<usize>());
            }
        }
    }
}
