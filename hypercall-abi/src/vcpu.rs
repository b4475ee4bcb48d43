//! `vcpu_op` (hypercall [`nr::VCPU_OP`]) and `set_timer_op`
//! ([`nr::SET_TIMER_OP`]): bring secondary vCPUs up and down, and a
//! one-shot timer per vCPU.
//!
//! | register | `vcpu_op` | `set_timer_op` |
//! |---|---|---|
//! | `x16` | [`nr::VCPU_OP`] (24) | [`nr::SET_TIMER_OP`] (15) |
//! | `x0`  | sub-operation `VCPUOP_*` | absolute deadline, ns of system time; 0 cancels |
//! | `x1`  | target vCPU index (0-based, in the calling domain) | — |
//! | `x2`  | guest virtual address of the argument, or 0 | — |
//!
//! | sub-op | `x2` points to | result |
//! |---|---|---|
//! | [`VCPUOP_INITIALISE`] | [`VcpuGuestContext`] | 0; `-EEXIST` if the vCPU is up |
//! | [`VCPUOP_UP`] | nothing | 0; `-EINVAL` if never initialised |
//! | [`VCPUOP_DOWN`] | nothing | 0 (the vCPU stops; itself: does not return until up again) |
//! | [`VCPUOP_IS_UP`] | nothing | 1 if up, 0 if down |
//! | [`VCPUOP_SET_SINGLESHOT_TIMER`] | [`VcpuSetSingleshotTimer`] | as `set_timer_op`, for the calling vCPU only |
//! | [`VCPUOP_STOP_SINGLESHOT_TIMER`] | nothing | 0 |
//!
//! A vCPU index at or above the domain's vCPU count gives `-ENOENT`
//! (Xen's answer); an unknown sub-op `-ENOSYS`. The numbers are Xen's.
//! Xen on Arm brings vCPUs up with PSCI `CPU_ON` instead; this monitor
//! offers both, and [`VcpuGuestContext`] is this ABI's own trimmed
//! layout (Xen's Arm `vcpu_guest_context` holds the full register file,
//! most of which a starting vCPU does not need).
//!
//! **System time** is nanoseconds since the monitor started, the same
//! clock the guest reads as the virtual counter (`CNTVCT_EL0`) scaled by
//! its frequency (`CNTFRQ_EL0`). When the deadline passes the monitor
//! raises the vCPU's timer interrupt (the virtual timer PPI 27 until
//! event channels exist, then `VIRQ_TIMER`); a deadline already in the
//! past fires at once. Setting a new deadline replaces the old one.
//!
//! # Example: start vCPU 1
//!
//! ```
//! use hypercall_abi::vcpu::{VcpuGuestContext, VCPUOP_INITIALISE, VCPUOP_UP};
//! let ctx = VcpuGuestContext::new(0x4008_0000, 0x4100_0000, 1);
//! // guest::vcpu_initialise(1, &ctx) then guest::vcpu_up(1), i.e.
//! // vcpu_op(VCPUOP_INITIALISE, 1, &ctx); vcpu_op(VCPUOP_UP, 1, 0).
//! assert_eq!((VCPUOP_INITIALISE, VCPUOP_UP), (0, 1));
//! assert_eq!(ctx.validate(), Ok(()));
//! ```

#[allow(unused_imports)] // used by intra-doc links
use crate::nr;
use crate::Errno;
use core::mem::{align_of, size_of};

/// `VCPUOP_initialise`: set the start state of a down vCPU; argument
/// [`VcpuGuestContext`].
pub const VCPUOP_INITIALISE: u64 = 0;
/// `VCPUOP_up`: start an initialised vCPU.
pub const VCPUOP_UP: u64 = 1;
/// `VCPUOP_down`: stop a vCPU (its state is kept; `up` resumes it).
pub const VCPUOP_DOWN: u64 = 2;
/// `VCPUOP_is_up`: 1 if the vCPU is up, 0 if down.
pub const VCPUOP_IS_UP: u64 = 3;
/// `VCPUOP_set_singleshot_timer`: argument [`VcpuSetSingleshotTimer`].
pub const VCPUOP_SET_SINGLESHOT_TIMER: u64 = 8;
/// `VCPUOP_stop_singleshot_timer`: cancel the one-shot timer.
pub const VCPUOP_STOP_SINGLESHOT_TIMER: u64 = 9;

/// [`VcpuGuestContext::flags`] bit: start with the EL1 MMU on using
/// `ttbr0`/`ttbr1`/`tcr`/`mair` of the calling vCPU (otherwise MMU off).
pub const VGCF_MMU_LIKE_CALLER: u64 = 1 << 0;
/// All flag bits this ABI version defines; others give `-EINVAL`.
pub const VGCF_ALL: u64 = VGCF_MMU_LIKE_CALLER;

/// Start state of a vCPU for [`VCPUOP_INITIALISE`] (32 bytes).
///
/// The vCPU starts at EL1h with all of DAIF masked, at `pc`, with `x0`
/// in `x0`, `sp` in `SP_EL1`, every other general register 0, and the
/// EL1 MMU off unless [`VGCF_MMU_LIKE_CALLER`] is set. `pc` must be
/// 4-byte aligned and `sp` 16-byte aligned, else `-EINVAL`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct VcpuGuestContext {
    /// Entry point (guest virtual address; physical if the MMU is off).
    pub pc: u64,
    /// Initial stack pointer (`SP_EL1`).
    pub sp: u64,
    /// Initial `x0` (for example a per-CPU data pointer).
    pub x0: u64,
    /// `VGCF_*` flags.
    pub flags: u64,
}

impl VcpuGuestContext {
    /// A context entering at `pc` with stack `sp` and `x0`, MMU off.
    pub const fn new(pc: u64, sp: u64, x0: u64) -> Self {
        Self {
            pc,
            sp,
            x0,
            flags: 0,
        }
    }

    /// The checks the monitor applies: alignment and known flags.
    pub const fn validate(&self) -> Result<(), Errno> {
        if self.pc % 4 != 0 || self.sp % 16 != 0 || self.flags & !VGCF_ALL != 0 {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }
}

/// [`VcpuSetSingleshotTimer::flags`] bit: fail with `-ETIME` instead of
/// firing at once if the deadline has passed (Xen's
/// `VCPU_SSHOTTMR_future`).
pub const VCPU_SSHOTTMR_FUTURE: u32 = 1 << 0;

/// Argument of [`VCPUOP_SET_SINGLESHOT_TIMER`]
/// (`struct vcpu_set_singleshot_timer`, 16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct VcpuSetSingleshotTimer {
    /// Absolute deadline, ns of system time.
    pub timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_*` flags.
    pub flags: u32,
    /// Padding; write 0.
    pub pad: u32,
}

const _: () = {
    assert!(size_of::<VcpuGuestContext>() == 32 && align_of::<VcpuGuestContext>() == 8);
    assert!(size_of::<VcpuSetSingleshotTimer>() == 16);
};
