//! `multicall` ([`nr::MULTICALL`]): several hypercalls in one trap.
//!
//! | register | value |
//! |---|---|
//! | `x0` | guest virtual address of `nr_calls` [`MulticallEntry`] |
//! | `x1` | `nr_calls`, at most [`MULTICALL_MAX`] |
//!
//! The monitor runs the entries in order, each as if the guest had made
//! hypercall `op` with `args[0..5]` in `x0..x4`, and stores each one's
//! result (what `x0` would hold) in its `result` field. A failing entry
//! does not stop the others (Xen's rule): check every `result`. Only
//! [`nr::MMU_UPDATE`], [`nr::MMUEXT_OP`], [`nr::XEN_VERSION`] and
//! [`nr::CONSOLE_IO`] may be batched; any other `op` (a nested multicall,
//! `sched_op`, ...) gets `-ENOSYS` in its `result`.
//!
//! The call itself returns 0, or `-EINVAL` if `nr_calls > MULTICALL_MAX`
//! (nothing run), or `-EFAULT` if entry `i` cannot be read or its result
//! written (entries before `i` ran and have their results).
//!
//! ```
//! use hypercall_abi::multicall::MulticallEntry;
//! use hypercall_abi::nr;
//! // Update descriptors, then flush the TLB, in one trap: both arrays are
//! // passed by guest virtual address.
//! let calls = [
//!     MulticallEntry::new(nr::MMU_UPDATE, [0x4100_0000, 4, 0, 0x7ff0, 0, 0]),
//!     MulticallEntry::new(nr::MMUEXT_OP, [0x4100_1000, 1, 0, 0x7ff0, 0, 0]),
//! ];
//! assert_eq!(calls[0].result, MulticallEntry::NOT_RUN);
//! ```

#[allow(unused_imports)] // used by intra-doc links
use crate::nr;
use core::mem::size_of;

/// Most entries in one `multicall`.
pub const MULTICALL_MAX: usize = 64;

/// One call of a multicall (Xen's `struct multicall_entry`, 64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MulticallEntry {
    /// Hypercall number.
    pub op: u64,
    /// Its result, written by the monitor.
    pub result: i64,
    /// Arguments (`x0..x4`; the sixth is unused on AArch64).
    pub args: [u64; 6],
}

const _: () = assert!(size_of::<MulticallEntry>() == 64);

impl MulticallEntry {
    /// What `result` holds before the monitor has run the entry.
    pub const NOT_RUN: i64 = i64::MIN;

    /// An entry for hypercall `op`, with `result` = [`Self::NOT_RUN`].
    pub const fn new(op: u64, args: [u64; 6]) -> Self {
        Self {
            op,
            result: Self::NOT_RUN,
            args,
        }
    }
}
