//! The shared-info page and `vcpu_info` (Xen's `public/xen.h`, Arm 64-bit
//! layout), with the 2-level event-channel bitmaps.
//!
//! Every field is an atomic of the C field's size, so that the monitor and
//! the guest can both hold a `&SharedInfo` to the same page and update it
//! with the atomic read-modify-write operations the protocol needs, without
//! `unsafe` (the layout is identical to the C struct's; see the size and
//! offset assertions below).
//!
//! A guest obtains its page with `memory_op(XENMEM_add_to_physmap)`,
//! space [`XENMAPSPACE_SHARED_INFO`](crate::memory::XENMAPSPACE_SHARED_INFO),
//! at a free guest frame of the window
//! [`GUEST_MAGIC_BASE`](crate::memory::GUEST_MAGIC_BASE) (see
//! [`crate::memory`]), then refers to it as a `&'static SharedInfo`.
//!
//! # 2-level event channels, as the monitor applies them
//!
//! Port `p` is bit `p % 64` of word `p / 64` of `evtchn_pending` and
//! `evtchn_mask`; word `w` has selector bit `w` in `evtchn_pending_sel` of
//! the vCPU the port notifies.
//!
//! * **send**: set the pending bit; if it was already set, stop. If the
//!   mask bit is clear, set selector bit `w`; if that was clear, set
//!   `evtchn_upcall_pending` (an *upcall*: the vCPU's virtual IRQ).
//! * **unmask**: clear the mask bit; if the port is pending, do the
//!   selector/upcall step above.
//!
//! The guest's side is in [`SharedInfo::take_pending`]: it is what the
//! upcall handler runs, see [`crate::event_channel`] for the whole scheme.
//!
//! ```
//! use hypercall_abi::shared_info::SharedInfo;
//! let s = Box::new(SharedInfo::new());
//! // What the monitor does on a send to port 70 of vCPU 0:
//! assert!(s.mark_pending(70));
//! assert_eq!(s.vcpu_info[0].upcall_pending(), true);
//! // What the guest's upcall handler does:
//! let mut got = Vec::new();
//! s.take_pending(0, |port| got.push(port));
//! assert_eq!(got, [70]);
//! assert!(!s.is_pending(70));
//! ```

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// `XEN_LEGACY_MAX_VCPUS` on Arm: vCPUs whose `vcpu_info` is in the page.
pub const LEGACY_MAX_VCPUS: usize = 1;
/// Bits per word of the event bitmaps (`xen_ulong_t` is 64 bits on Arm).
pub const BITS_PER_WORD: u32 = 64;
/// Words in each bitmap.
pub const EVTCHN_WORDS: usize = 64;

/// `struct vcpu_time_info`: the monitor's system time for a vCPU (not
/// maintained by this monitor yet: the guest reads the generic timer).
#[repr(C)]
#[derive(Debug, Default)]
pub struct VcpuTimeInfo {
    /// Odd while being updated (seqcount).
    pub version: AtomicU32,
    /// Padding.
    pub pad0: AtomicU32,
    /// Counter value at `system_time`.
    pub tsc_timestamp: AtomicU64,
    /// Nanoseconds since boot at `tsc_timestamp`.
    pub system_time: AtomicU64,
    /// Counter-to-nanoseconds multiplier (32.32 fixed point), with
    /// `tsc_shift` (an `i8`) and `flags` (a `u8`) in the next word.
    pub tsc_to_system_mul: AtomicU32,
    /// `tsc_shift: i8`, `flags: u8`, `pad1: [u8; 2]`, little-endian.
    pub shift_flags: AtomicU32,
}

/// `struct vcpu_info` (48 bytes on Arm 64-bit).
#[repr(C)]
#[derive(Debug)]
pub struct VcpuInfo {
    /// `evtchn_upcall_pending`: set by the monitor when it raises the
    /// upcall; cleared by the guest *before* it scans the bitmaps.
    pub evtchn_upcall_pending: AtomicU8,
    /// `evtchn_upcall_mask`: x86 only; padding on Arm (guests mask with
    /// `PSTATE.I`).
    pub evtchn_upcall_mask: AtomicU8,
    /// Padding to the next 8-byte field.
    pub pad: [AtomicU8; 6],
    /// `evtchn_pending_sel`: bit `w` = word `w` of `evtchn_pending` may
    /// have pending unmasked ports for this vCPU.
    pub evtchn_pending_sel: AtomicU64,
    /// `time`.
    pub time: VcpuTimeInfo,
}

impl VcpuInfo {
    /// A zeroed `vcpu_info`.
    pub const fn new() -> VcpuInfo {
        VcpuInfo {
            evtchn_upcall_pending: AtomicU8::new(0),
            evtchn_upcall_mask: AtomicU8::new(0),
            pad: [const { AtomicU8::new(0) }; 6],
            evtchn_pending_sel: AtomicU64::new(0),
            time: VcpuTimeInfo {
                version: AtomicU32::new(0),
                pad0: AtomicU32::new(0),
                tsc_timestamp: AtomicU64::new(0),
                system_time: AtomicU64::new(0),
                tsc_to_system_mul: AtomicU32::new(0),
                shift_flags: AtomicU32::new(0),
            },
        }
    }
    /// Whether `evtchn_upcall_pending` is set.
    #[inline]
    pub fn upcall_pending(&self) -> bool {
        self.evtchn_upcall_pending.load(Ordering::Acquire) != 0
    }
}

/// `struct shared_info` (1088 bytes on Arm 64-bit; the page is 4096).
#[repr(C)]
#[derive(Debug)]
pub struct SharedInfo {
    /// `vcpu_info[XEN_LEGACY_MAX_VCPUS]`.
    pub vcpu_info: [VcpuInfo; LEGACY_MAX_VCPUS],
    /// `evtchn_pending`: one bit per port.
    pub evtchn_pending: [AtomicU64; EVTCHN_WORDS],
    /// `evtchn_mask`: one bit per port; a masked port can become pending
    /// but raises no upcall until unmasked.
    pub evtchn_mask: [AtomicU64; EVTCHN_WORDS],
    /// `wc_version`: wall-clock seqcount (not maintained yet).
    pub wc_version: AtomicU32,
    /// `wc_sec`.
    pub wc_sec: AtomicU32,
    /// `wc_nsec`.
    pub wc_nsec: AtomicU32,
    /// `wc_sec_hi`.
    pub wc_sec_hi: AtomicU32,
}

impl Default for VcpuInfo {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for SharedInfo {
    fn default() -> Self {
        Self::new()
    }
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<VcpuTimeInfo>() == 32);
    assert!(size_of::<VcpuInfo>() == 48);
    assert!(offset_of!(VcpuInfo, evtchn_pending_sel) == 8);
    assert!(offset_of!(VcpuInfo, time) == 16);
    assert!(offset_of!(SharedInfo, evtchn_pending) == 48);
    assert!(offset_of!(SharedInfo, evtchn_mask) == 560);
    assert!(offset_of!(SharedInfo, wc_version) == 1072);
    assert!(size_of::<SharedInfo>() == 1088);
};

fn split(port: u32) -> (usize, u64) {
    (
        (port / BITS_PER_WORD) as usize,
        1u64 << (port % BITS_PER_WORD),
    )
}

impl SharedInfo {
    /// A zeroed page (for simulators and tests; a real page is the
    /// monitor's, mapped by the guest).
    pub const fn new() -> SharedInfo {
        SharedInfo {
            vcpu_info: [const { VcpuInfo::new() }; LEGACY_MAX_VCPUS],
            evtchn_pending: [const { AtomicU64::new(0) }; EVTCHN_WORDS],
            evtchn_mask: [const { AtomicU64::new(0) }; EVTCHN_WORDS],
            wc_version: AtomicU32::new(0),
            wc_sec: AtomicU32::new(0),
            wc_nsec: AtomicU32::new(0),
            wc_sec_hi: AtomicU32::new(0),
        }
    }

    /// Whether `port` is pending. Ports outside the bitmap are not.
    pub fn is_pending(&self, port: u32) -> bool {
        port < BITS_PER_WORD * EVTCHN_WORDS as u32 && {
            let (w, b) = split(port);
            self.evtchn_pending[w].load(Ordering::Acquire) & b != 0
        }
    }

    /// Whether `port` is masked. Ports outside the bitmap are.
    pub fn is_masked(&self, port: u32) -> bool {
        port >= BITS_PER_WORD * EVTCHN_WORDS as u32 || {
            let (w, b) = split(port);
            self.evtchn_mask[w].load(Ordering::Acquire) & b != 0
        }
    }

    /// Sets or clears `port`'s mask bit (guest side: mask with `true`;
    /// unmasking must go through `EVTCHNOP_unmask` so a pending port is
    /// delivered). Ignores ports outside the bitmap.
    pub fn set_mask(&self, port: u32, masked: bool) {
        if port < BITS_PER_WORD * EVTCHN_WORDS as u32 {
            let (w, b) = split(port);
            if masked {
                self.evtchn_mask[w].fetch_or(b, Ordering::AcqRel);
            } else {
                self.evtchn_mask[w].fetch_and(!b, Ordering::AcqRel);
            }
        }
    }

    /// Monitor side of a send to `port` notifying vCPU 0 (the only vCPU in
    /// the page): sets the pending bit and, if that changed it and the
    /// port is unmasked, the selector bit and `evtchn_upcall_pending`.
    /// Returns whether `evtchn_upcall_pending` went from 0 to 1 (the
    /// upcall must be raised).
    #[inline(always)]
    pub fn mark_pending(&self, port: u32) -> bool {
        if port >= BITS_PER_WORD * EVTCHN_WORDS as u32 {
            return false;
        }
        let (w, b) = split(port);
        if self.evtchn_pending[w].fetch_or(b, Ordering::AcqRel) & b != 0 {
            return false;
        }
        self.deliver(w, b)
    }

    /// Monitor side of an unmask: clears the mask bit and delivers the
    /// port if it is pending. Returns whether the upcall must be raised.
    pub fn unmask(&self, port: u32) -> bool {
        if port >= BITS_PER_WORD * EVTCHN_WORDS as u32 {
            return false;
        }
        let (w, b) = split(port);
        self.evtchn_mask[w].fetch_and(!b, Ordering::AcqRel);
        if self.evtchn_pending[w].load(Ordering::Acquire) & b == 0 {
            return false;
        }
        self.deliver(w, b)
    }

    #[inline(always)]
    fn deliver(&self, w: usize, b: u64) -> bool {
        if self.evtchn_mask[w].load(Ordering::Acquire) & b != 0 {
            return false;
        }
        let v = &self.vcpu_info[0];
        if v.evtchn_pending_sel.fetch_or(1 << w, Ordering::AcqRel) & (1 << w) != 0 {
            return false;
        }
        v.evtchn_upcall_pending.swap(1, Ordering::AcqRel) == 0
    }

    /// Clears `port`'s pending bit (monitor: when a port is freed).
    pub fn clear_pending(&self, port: u32) {
        if port < BITS_PER_WORD * EVTCHN_WORDS as u32 {
            let (w, b) = split(port);
            self.evtchn_pending[w].fetch_and(!b, Ordering::AcqRel);
        }
    }

    /// Guest side, the body of the upcall handler for vCPU `vcpu` (0):
    /// clears `evtchn_upcall_pending`, takes the selector, and for each
    /// pending unmasked port clears its pending bit and calls `f(port)`,
    /// lowest port first. Returns the number of ports dispatched. Masked
    /// pending ports stay pending. A `vcpu` outside the page dispatches
    /// nothing.
    pub fn take_pending(&self, vcpu: usize, mut f: impl FnMut(u32)) -> u32 {
        let Some(v) = self.vcpu_info.get(vcpu) else {
            return 0;
        };
        v.evtchn_upcall_pending.store(0, Ordering::Release);
        let mut n = 0;
        let mut sel = v.evtchn_pending_sel.swap(0, Ordering::AcqRel);
        while sel != 0 {
            let w = sel.trailing_zeros() as usize;
            sel &= sel - 1;
            let mut bits = self.evtchn_pending[w].load(Ordering::Acquire)
                & !self.evtchn_mask[w].load(Ordering::Acquire);
            while bits != 0 {
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                let mask = 1u64 << b;
                // Only the port whose bit this call cleared is dispatched.
                if self.evtchn_pending[w].fetch_and(!mask, Ordering::AcqRel) & mask != 0 {
                    n += 1;
                    f(w as u32 * BITS_PER_WORD + b);
                }
            }
        }
        n
    }
}
