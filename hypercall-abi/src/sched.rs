//! `sched_op` (hypercall [`nr::SCHED_OP`]): yield, block, shut down.
//!
//! | register | value |
//! |---|---|
//! | `x16` | [`nr::SCHED_OP`] (29) |
//! | `x0`  | sub-operation `SCHEDOP_*` |
//! | `x1`  | guest virtual address of the sub-operation's argument struct, or 0 |
//!
//! Sub-operations and their argument:
//!
//! | sub-op | `x1` points to | result |
//! |---|---|---|
//! | [`SCHEDOP_YIELD`] | nothing (0) | 0 after the vCPU ran again |
//! | [`SCHEDOP_BLOCK`] | nothing (0) | 0 once an event is pending for the vCPU |
//! | [`SCHEDOP_SHUTDOWN`] | [`SchedShutdown`] | does not return, see below |
//! | [`SCHEDOP_POLL`] | [`SchedPoll`] | 0 when a listed port is pending or on timeout |
//! | [`SCHEDOP_REMOTE_SHUTDOWN`] | [`SchedRemoteShutdown`] | 0 (privileged) |
//! | [`SCHEDOP_SHUTDOWN_CODE`] | [`SchedShutdown`] | 0; records the reason without shutting down |
//! | [`SCHEDOP_WATCHDOG`] | [`SchedWatchdog`] | watchdog id (create) or 0 |
//!
//! `SCHEDOP_SHUTDOWN` stops the whole domain with the given
//! [`ShutdownReason`]; on success it does not return to the caller, except
//! for [`ShutdownReason::Suspend`], which returns 0 when the guest is
//! resumed in a new domain and 1 when the suspend was cancelled or the
//! domain was checkpointed. An unknown reason returns `-EINVAL`.
//!
//! The numbering is Xen's. A monitor that does not implement a sub-op
//! returns `-ENOSYS` (Xen on Arm, for instance, has no `SCHEDOP_block`).

#[allow(unused_imports)] // used by intra-doc links
use crate::nr;
use core::mem::{align_of, size_of};

/// `SCHEDOP_yield`: give up the pCPU; the vCPU stays runnable.
pub const SCHEDOP_YIELD: u64 = 0;
/// `SCHEDOP_block`: sleep until an event is pending for this vCPU.
pub const SCHEDOP_BLOCK: u64 = 1;
/// `SCHEDOP_shutdown`: stop the calling domain; argument [`SchedShutdown`].
pub const SCHEDOP_SHUTDOWN: u64 = 2;
/// `SCHEDOP_poll`: wait for one of a set of event-channel ports; argument
/// [`SchedPoll`].
pub const SCHEDOP_POLL: u64 = 3;
/// `SCHEDOP_remote_shutdown`: stop another domain (privileged); argument
/// [`SchedRemoteShutdown`].
pub const SCHEDOP_REMOTE_SHUTDOWN: u64 = 4;
/// `SCHEDOP_shutdown_code`: record the reason a later shutdown/crash will
/// report, without shutting down; argument [`SchedShutdown`].
pub const SCHEDOP_SHUTDOWN_CODE: u64 = 5;
/// `SCHEDOP_watchdog`: create, kick or destroy a domain watchdog; argument
/// [`SchedWatchdog`].
pub const SCHEDOP_WATCHDOG: u64 = 6;

/// Why a domain shut down (`SHUTDOWN_*` in Xen).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ShutdownReason {
    /// `SHUTDOWN_poweroff`: clean halt, the domain is destroyed.
    Poweroff = 0,
    /// `SHUTDOWN_reboot`: clean reboot, the domain is restarted.
    Reboot = 1,
    /// `SHUTDOWN_suspend`: save state (for migration or checkpoint) and
    /// resume later; the hypercall returns 0 in the new domain, 1 if
    /// cancelled.
    Suspend = 2,
    /// `SHUTDOWN_crash`: the guest crashed (e.g. kernel panic).
    Crash = 3,
    /// `SHUTDOWN_watchdog`: a watchdog expired (set by the monitor).
    Watchdog = 4,
    /// `SHUTDOWN_soft_reset`: reset the domain without destroying it.
    SoftReset = 5,
}

impl ShutdownReason {
    /// Every reason, in numeric order.
    pub const ALL: [ShutdownReason; 6] = [
        ShutdownReason::Poweroff,
        ShutdownReason::Reboot,
        ShutdownReason::Suspend,
        ShutdownReason::Crash,
        ShutdownReason::Watchdog,
        ShutdownReason::SoftReset,
    ];

    /// The reason with number `raw`, or `None` if there is none.
    pub const fn from_raw(raw: u32) -> Option<ShutdownReason> {
        Some(match raw {
            0 => ShutdownReason::Poweroff,
            1 => ShutdownReason::Reboot,
            2 => ShutdownReason::Suspend,
            3 => ShutdownReason::Crash,
            4 => ShutdownReason::Watchdog,
            5 => ShutdownReason::SoftReset,
            _ => return None,
        })
    }

    /// The number stored in [`SchedShutdown::reason`].
    pub const fn to_raw(self) -> u32 {
        self as u32
    }

    /// Xen's lower-case name: `"poweroff"`, `"reboot"`, `"suspend"`,
    /// `"crash"`, `"watchdog"`, `"soft_reset"`.
    pub const fn name(self) -> &'static str {
        match self {
            ShutdownReason::Poweroff => "poweroff",
            ShutdownReason::Reboot => "reboot",
            ShutdownReason::Suspend => "suspend",
            ShutdownReason::Crash => "crash",
            ShutdownReason::Watchdog => "watchdog",
            ShutdownReason::SoftReset => "soft_reset",
        }
    }
}

/// Argument of [`SCHEDOP_SHUTDOWN`] and [`SCHEDOP_SHUTDOWN_CODE`]
/// (`struct sched_shutdown`, 4 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SchedShutdown {
    /// A [`ShutdownReason`] number.
    pub reason: u32,
}

impl SchedShutdown {
    /// The argument for `reason`.
    pub const fn new(reason: ShutdownReason) -> SchedShutdown {
        SchedShutdown {
            reason: reason as u32,
        }
    }
}

/// Argument of [`SCHEDOP_POLL`] (`struct sched_poll`, 24 bytes on arm64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SchedPoll {
    /// Guest virtual address of an array of `nr_ports` `u32` event-channel
    /// port numbers (a Xen guest handle, 8 bytes on Arm).
    pub ports: u64,
    /// Number of entries in `ports`.
    pub nr_ports: u32,
    /// Padding; write 0.
    pub pad: u32,
    /// Absolute timeout in nanoseconds of monitor system time; 0 means no
    /// timeout.
    pub timeout: u64,
}

/// Argument of [`SCHEDOP_REMOTE_SHUTDOWN`] (`struct sched_remote_shutdown`,
/// 8 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SchedRemoteShutdown {
    /// Domain to shut down.
    pub domain_id: u16,
    /// Padding; write 0.
    pub pad: u16,
    /// A [`ShutdownReason`] number.
    pub reason: u32,
}

/// Argument of [`SCHEDOP_WATCHDOG`] (`struct sched_watchdog`, 8 bytes).
///
/// `id == 0`: create a watchdog with `timeout` seconds, the result is its
/// id. `id != 0, timeout != 0`: kick watchdog `id` with a new timeout.
/// `id != 0, timeout == 0`: destroy watchdog `id`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SchedWatchdog {
    /// Watchdog id, or 0 to create one.
    pub id: u32,
    /// Timeout in seconds; 0 destroys.
    pub timeout: u32,
}

const _: () = {
    assert!(size_of::<SchedShutdown>() == 4 && align_of::<SchedShutdown>() == 4);
    assert!(size_of::<SchedPoll>() == 24 && align_of::<SchedPoll>() == 8);
    assert!(size_of::<SchedRemoteShutdown>() == 8);
    assert!(size_of::<SchedWatchdog>() == 8);
};
