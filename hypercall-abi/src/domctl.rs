//! `domctl` (hypercall [`nr::DOMCTL`], 36): domain management from the
//! privileged domain.
//!
//! | register | value |
//! |---|---|
//! | `x16` | [`nr::DOMCTL`] (36) |
//! | `x0`  | guest virtual address of a [`Domctl`], read and written back |
//!
//! The command numbers are Xen's (`XEN_DOMCTL_*`); the struct is this
//! ABI's own, smaller than Xen's, and versioned by
//! [`DOMCTL_INTERFACE_VERSION`]: a [`Domctl`] with another version gets
//! `-EACCES` (as in Xen). The struct is flat (no union): each command
//! reads and writes only the fields named below.
//!
//! | `cmd` | reads | writes | errors besides the common ones |
//! |---|---|---|---|
//! | [`DOMCTL_CREATEDOMAIN`] | `create` | `domain` (the new id) | `-EINVAL` bad field, `-ENOMEM` not enough free memory, `-ENOSPC` no free domain slot, `-EEXIST` name in use |
//! | [`DOMCTL_DESTROYDOMAIN`] | `domain` | — | `-EINVAL` for the caller itself |
//! | [`DOMCTL_PAUSEDOMAIN`] | `domain` | — | `-EINVAL` for the caller itself |
//! | [`DOMCTL_UNPAUSEDOMAIN`] | `domain` | — | — |
//! | [`DOMCTL_GETDOMAININFO`] | `domain` | `info` of the first domain with id `>= domain` | `-ESRCH` if there is none |
//! | [`DOMCTL_SCHEDULER_OP`] | `domain`, `sched` | `sched` (on get) | `-EINVAL` bad weight/cap/op |
//!
//! Common errors: `-EPERM` if the caller is not the privileged domain,
//! `-ESRCH` for a domain id that does not exist, `-ENOSYS` for an unknown
//! `cmd`, `-EFAULT` if the struct is not readable and writable.
//!
//! The privileged domain is, unless the boot configuration marks another
//! with `priv`, the first configured domain.
//!
//! New domains get ids in increasing order, the next free one after the
//! last given out, wrapping from 63 back to 1 (as Xen's, which wraps at
//! `DOMID_FIRST_RESERVED`): a domain just destroyed does not lend its id
//! to the next one at once. Creating a driver domain
//! ([`DOMCTL_CDF_DRIVER`]) starts a new generation of
//! [`crate::hvm::HVM_PARAM_DRIVER_DOMAIN`].
//!
//! # Example: list all domains
//!
//! ```
//! use hypercall_abi::domctl::{Domctl, DOMCTL_GETDOMAININFO};
//! // Stand-in for guest::domctl; a real guest issues the hypercall.
//! fn call(op: &mut Domctl) -> Result<u64, hypercall_abi::Errno> {
//!     if op.domain > 2 { return Err(hypercall_abi::Errno::ESRCH) }
//!     op.info.domain = op.domain; Ok(0)
//! }
//! let mut next = 0u16;
//! let mut seen = 0;
//! loop {
//!     let mut op = Domctl::new(DOMCTL_GETDOMAININFO, next);
//!     if call(&mut op).is_err() { break } // -ESRCH: no more domains
//!     seen += 1;
//!     next = op.info.domain + 1;
//! }
//! assert_eq!(seen, 3);
//! ```

#[allow(unused_imports)] // used by intra-doc links
use crate::nr;
use core::mem::size_of;

/// Version of the [`Domctl`] layout; bumped on any change to it.
pub const DOMCTL_INTERFACE_VERSION: u32 = 1;

/// `XEN_DOMCTL_createdomain`: build and start a domain from
/// [`Domctl::create`].
pub const DOMCTL_CREATEDOMAIN: u32 = 1;
/// `XEN_DOMCTL_destroydomain`: end a domain and free its memory.
pub const DOMCTL_DESTROYDOMAIN: u32 = 2;
/// `XEN_DOMCTL_pausedomain`: stop scheduling a domain.
pub const DOMCTL_PAUSEDOMAIN: u32 = 3;
/// `XEN_DOMCTL_unpausedomain`: schedule a paused domain again.
pub const DOMCTL_UNPAUSEDOMAIN: u32 = 4;
/// `XEN_DOMCTL_getdomaininfo`: state of the first domain with an id
/// `>=` [`Domctl::domain`] (so a loop lists them all).
pub const DOMCTL_GETDOMAININFO: u32 = 5;
/// `XEN_DOMCTL_scheduler_op`: get or set the credit scheduler's weight
/// and cap of a domain ([`Domctl::sched`]).
pub const DOMCTL_SCHEDULER_OP: u32 = 16;

/// Longest domain name in bytes (the array holds a terminating NUL).
pub const DOMCTL_NAME_LEN: usize = 16;
/// Size of the command-line array (NUL-terminated, so 255 usable bytes).
pub const DOMCTL_CMDLINE_LEN: usize = 256;
/// Most vCPUs a domain may have.
pub const DOMCTL_MAX_VCPUS: u32 = 8;
/// Smallest and largest memory of a new domain, MiB.
pub const DOMCTL_MEM_MIB_RANGE: core::ops::RangeInclusive<u32> = 4..=1024;

/// [`CreateDomain::kernel`]: the embedded guest kernel as an ELF image.
pub const KERNEL_ELF: u32 = 0;
/// [`CreateDomain::kernel`]: the embedded guest kernel as an arm64 `Image`.
pub const KERNEL_IMAGE: u32 = 1;

/// [`DomainInfo::flags`]: the domain is being destroyed (`XEN_DOMINF_dying`).
pub const DOMINF_DYING: u32 = 1 << 0;
/// [`DomainInfo::flags`]: the domain has shut down; the reason is in
/// [`DomainInfo::shutdown_reason`] (`XEN_DOMINF_shutdown`).
pub const DOMINF_SHUTDOWN: u32 = 1 << 2;
/// [`DomainInfo::flags`]: paused by `domctl` (`XEN_DOMINF_paused`).
pub const DOMINF_PAUSED: u32 = 1 << 3;
/// [`DomainInfo::flags`]: every vCPU is blocked or down (`XEN_DOMINF_blocked`).
pub const DOMINF_BLOCKED: u32 = 1 << 4;
/// [`DomainInfo::flags`]: a vCPU is running on a CPU now (`XEN_DOMINF_running`).
pub const DOMINF_RUNNING: u32 = 1 << 5;

/// [`CreateDomain::flags`]: the new domain is the driver domain (it gets
/// the machine's devices and may list domains). Refused with `-EEXIST`
/// while another driver domain lives.
pub const DOMCTL_CDF_DRIVER: u32 = 1 << 0;

/// [`SchedCredit::op`]: set weight and cap (`XEN_DOMCTL_SCHEDOP_putinfo`).
pub const SCHEDOP_PUTINFO: u32 = 0;
/// [`SchedCredit::op`]: read weight and cap (`XEN_DOMCTL_SCHEDOP_getinfo`).
pub const SCHEDOP_GETINFO: u32 = 1;

/// What [`DOMCTL_CREATEDOMAIN`] builds (the fields of a `dom=` option of
/// the boot configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct CreateDomain {
    /// Name, ASCII letters, digits, `-` and `_`, NUL-terminated.
    pub name: [u8; DOMCTL_NAME_LEN],
    /// Memory, MiB, in [`DOMCTL_MEM_MIB_RANGE`].
    pub mem_mib: u32,
    /// vCPUs, `1..=DOMCTL_MAX_VCPUS`.
    pub vcpus: u32,
    /// Scheduler weight, `1..=65535` (0 means the default, 256).
    pub weight: u32,
    /// Cap, percent of one CPU, 0 = none, at most `100 * vcpus`.
    pub cap: u32,
    /// [`KERNEL_ELF`] or [`KERNEL_IMAGE`].
    pub kernel: u32,
    /// `DOMCTL_CDF_*` flags; other bits must be 0.
    pub flags: u32,
    /// The new domain's command line, NUL-terminated.
    pub cmdline: [u8; DOMCTL_CMDLINE_LEN],
}

impl Default for CreateDomain {
    fn default() -> Self {
        Self {
            name: [0; DOMCTL_NAME_LEN],
            mem_mib: 16,
            vcpus: 1,
            weight: 0,
            cap: 0,
            kernel: KERNEL_ELF,
            flags: 0,
            cmdline: [0; DOMCTL_CMDLINE_LEN],
        }
    }
}

impl CreateDomain {
    /// A request for `name` (truncated to fit is refused: returns `None`
    /// if `name` or `cmdline` is too long) with default sizes.
    pub fn new(name: &str, cmdline: &str) -> Option<Self> {
        let mut c = Self::default();
        copy_nul(&mut c.name, name.as_bytes())?;
        copy_nul(&mut c.cmdline, cmdline.as_bytes())?;
        Some(c)
    }
}

/// Copies `src` into `dst` with a terminating NUL; `None` if it does not fit.
fn copy_nul(dst: &mut [u8], src: &[u8]) -> Option<()> {
    if src.len() >= dst.len() || src.contains(&0) {
        return None;
    }
    dst[..src.len()].copy_from_slice(src);
    dst[src.len()..].fill(0);
    Some(())
}

/// The bytes of a NUL-terminated array up to its NUL, or `None` if it has
/// none (an unterminated string from a guest).
pub fn until_nul(a: &[u8]) -> Option<&[u8]> {
    a.iter().position(|&b| b == 0).map(|n| &a[..n])
}

/// What [`DOMCTL_GETDOMAININFO`] reports about a domain (56 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct DomainInfo {
    /// The domain's id.
    pub domain: u16,
    /// Padding.
    pub pad: u16,
    /// `DOMINF_*` state bits.
    pub flags: u32,
    /// [`crate::sched::ShutdownReason`] number, valid with [`DOMINF_SHUTDOWN`].
    pub shutdown_reason: u32,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// Memory, KiB.
    pub mem_kib: u64,
    /// CPU time used by all its vCPUs, ns.
    pub cpu_time_ns: u64,
    /// Scheduler weight.
    pub weight: u32,
    /// Scheduler cap (percent of one CPU, 0 = none).
    pub cap: u32,
    /// Name, NUL-terminated.
    pub name: [u8; DOMCTL_NAME_LEN],
}

/// Argument of [`DOMCTL_SCHEDULER_OP`] (Xen's `xen_domctl_sched_credit`
/// with the operation beside it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SchedCredit {
    /// [`SCHEDOP_PUTINFO`] or [`SCHEDOP_GETINFO`].
    pub op: u32,
    /// Weight, `1..=65535`.
    pub weight: u16,
    /// Cap, percent of one CPU, 0 = none, at most `100 *` the domain's vCPUs.
    pub cap: u16,
}

/// The `domctl` argument (376 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Domctl {
    /// `DOMCTL_*` command.
    pub cmd: u32,
    /// Must be [`DOMCTL_INTERFACE_VERSION`].
    pub interface_version: u32,
    /// Target domain (written with the new id by create).
    pub domain: u16,
    /// Padding; write 0.
    pub pad: [u16; 3],
    /// For [`DOMCTL_CREATEDOMAIN`].
    pub create: CreateDomain,
    /// Written by [`DOMCTL_GETDOMAININFO`].
    pub info: DomainInfo,
    /// For [`DOMCTL_SCHEDULER_OP`].
    pub sched: SchedCredit,
}

impl Domctl {
    /// A request for `cmd` on `domain`, every other field zero.
    pub fn new(cmd: u32, domain: u16) -> Self {
        Self {
            cmd,
            interface_version: DOMCTL_INTERFACE_VERSION,
            domain,
            ..Self::default()
        }
    }
}

const _: () = {
    assert!(size_of::<CreateDomain>() == 296);
    assert!(size_of::<DomainInfo>() == 56);
    assert!(size_of::<SchedCredit>() == 8);
    assert!(size_of::<Domctl>() == 376);
};
