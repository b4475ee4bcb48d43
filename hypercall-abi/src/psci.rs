//! SMCCC and PSCI function ids a guest may call with `hvc #0` (or
//! `smc #0`, which the monitor traps and handles the same way).
//!
//! This is *not* the hypercall convention: it follows the Arm SMC Calling
//! Convention (SMCCC) and the Power State Coordination Interface (PSCI).
//!
//! | register | value |
//! |---|---|
//! | `w0` | function id (32 bits; the monitor ignores bits 63:32 of `x0`) |
//! | `x1..x3` | arguments |
//! | `x0` | result: a status code (sign-extended to 64 bits) or a value |
//!
//! Ids with bit 30 set (`0xC4..`) are the SMC64 forms taking 64-bit
//! arguments; the `0x84..` forms take 32-bit arguments. All functions here
//! return their result in `x0` only. The monitor preserves `x1..x17`
//! (SMCCC ≥ 1.1 rule); the raw calls in this crate nevertheless assume the
//! older SMCCC v1.0 rule (`x0..x17` clobbered) so they work anywhere.
//!
//! Main calls for a guest kernel:
//!
//! * [`PSCI_VERSION`] → `major << 16 | minor` (e.g. `0x0001_0001` for 1.1).
//! * [`CPU_ON`]`(target_mpidr, entry_ipa, context_id)`: start a vCPU at
//!   `entry_ipa` (a guest *physical* address, MMU off, EL1h, all
//!   interrupts masked) with `x0 = context_id`. Returns
//!   [`SUCCESS`], [`ALREADY_ON`], [`ON_PENDING`], [`INVALID_PARAMETERS`]
//!   (unknown MPIDR) or [`INVALID_ADDRESS`].
//! * [`CPU_OFF`]: stop the calling vCPU; does not return on success
//!   ([`DENIED`] otherwise).
//! * [`AFFINITY_INFO`]`(target_mpidr, lowest_affinity_level = 0)` →
//!   [`AFFINITY_ON`], [`AFFINITY_OFF`], [`AFFINITY_ON_PENDING`].
//! * [`SYSTEM_OFF`] / [`SYSTEM_RESET`]: same effect as a `sched_op`
//!   shutdown with reason poweroff / reboot; do not return.
//! * [`PSCI_FEATURES`]`(fid)` → [`SUCCESS`] (or feature flags ≥ 0) if `fid`
//!   is implemented, [`NOT_SUPPORTED`] otherwise.
//!
//! An unknown function id returns [`NOT_SUPPORTED`] (`-1`, which is also
//! SMCCC's "unknown function" value).

/// `SMCCC_VERSION` (SMCCC ≥ 1.1): returns `major << 16 | minor`.
pub const SMCCC_VERSION: u32 = 0x8000_0000;
/// `SMCCC_ARCH_FEATURES` (SMCCC ≥ 1.1): is an arch function implemented.
pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;

/// `PSCI_VERSION`: returns `major << 16 | minor`.
pub const PSCI_VERSION: u32 = 0x8400_0000;
/// `CPU_SUSPEND`, SMC32 form.
pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
/// `CPU_SUSPEND`, SMC64 form: `(power_state, entry_ipa, context_id)`.
pub const CPU_SUSPEND: u32 = 0xC400_0001;
/// `CPU_OFF`: power down the calling vCPU.
pub const CPU_OFF: u32 = 0x8400_0002;
/// `CPU_ON`, SMC32 form.
pub const CPU_ON_32: u32 = 0x8400_0003;
/// `CPU_ON`, SMC64 form: `(target_mpidr, entry_ipa, context_id)`.
pub const CPU_ON: u32 = 0xC400_0003;
/// `AFFINITY_INFO`, SMC32 form.
pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
/// `AFFINITY_INFO`, SMC64 form: `(target_mpidr, lowest_affinity_level)`.
pub const AFFINITY_INFO: u32 = 0xC400_0004;
/// `MIGRATE`, SMC32 form (trusted-OS migration; not supported by guests'
/// monitors in practice).
pub const MIGRATE_32: u32 = 0x8400_0005;
/// `MIGRATE`, SMC64 form.
pub const MIGRATE: u32 = 0xC400_0005;
/// `MIGRATE_INFO_TYPE`: returns 2 ("no trusted OS present or migration not
/// required") from a monitor.
pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
/// `MIGRATE_INFO_UP_CPU`, SMC32 form.
pub const MIGRATE_INFO_UP_CPU_32: u32 = 0x8400_0007;
/// `MIGRATE_INFO_UP_CPU`, SMC64 form.
pub const MIGRATE_INFO_UP_CPU: u32 = 0xC400_0007;
/// `SYSTEM_OFF`: power off the whole guest.
pub const SYSTEM_OFF: u32 = 0x8400_0008;
/// `SYSTEM_RESET`: reboot the whole guest.
pub const SYSTEM_RESET: u32 = 0x8400_0009;
/// `PSCI_FEATURES` (PSCI ≥ 1.0): `(fid)` → ≥ 0 if implemented.
pub const PSCI_FEATURES: u32 = 0x8400_000A;
/// `CPU_FREEZE` (PSCI ≥ 1.0).
pub const CPU_FREEZE: u32 = 0x8400_000B;
/// `CPU_DEFAULT_SUSPEND`, SMC64 form (PSCI ≥ 1.0).
pub const CPU_DEFAULT_SUSPEND: u32 = 0xC400_000C;
/// `NODE_HW_STATE`, SMC64 form (PSCI ≥ 1.0).
pub const NODE_HW_STATE: u32 = 0xC400_000D;
/// `SYSTEM_SUSPEND`, SMC64 form (PSCI ≥ 1.0).
pub const SYSTEM_SUSPEND: u32 = 0xC400_000E;
/// `PSCI_SET_SUSPEND_MODE` (PSCI ≥ 1.0).
pub const PSCI_SET_SUSPEND_MODE: u32 = 0x8400_000F;
/// `PSCI_STAT_RESIDENCY`, SMC64 form (PSCI ≥ 1.0).
pub const PSCI_STAT_RESIDENCY: u32 = 0xC400_0010;
/// `PSCI_STAT_COUNT`, SMC64 form (PSCI ≥ 1.0).
pub const PSCI_STAT_COUNT: u32 = 0xC400_0011;
/// `SYSTEM_RESET2`, SMC64 form (PSCI ≥ 1.1).
pub const SYSTEM_RESET2: u32 = 0xC400_0012;

/// Status `SUCCESS`.
pub const SUCCESS: i32 = 0;
/// Status `NOT_SUPPORTED` (also SMCCC's unknown-function value).
pub const NOT_SUPPORTED: i32 = -1;
/// Status `INVALID_PARAMETERS`.
pub const INVALID_PARAMETERS: i32 = -2;
/// Status `DENIED`.
pub const DENIED: i32 = -3;
/// Status `ALREADY_ON`: `CPU_ON` of a running vCPU.
pub const ALREADY_ON: i32 = -4;
/// Status `ON_PENDING`: `CPU_ON` of a vCPU already being started.
pub const ON_PENDING: i32 = -5;
/// Status `INTERNAL_FAILURE`.
pub const INTERNAL_FAILURE: i32 = -6;
/// Status `NOT_PRESENT`.
pub const NOT_PRESENT: i32 = -7;
/// Status `DISABLED`.
pub const DISABLED: i32 = -8;
/// Status `INVALID_ADDRESS`: bad entry point.
pub const INVALID_ADDRESS: i32 = -9;

/// `AFFINITY_INFO` result: the vCPU is on.
pub const AFFINITY_ON: i32 = 0;
/// `AFFINITY_INFO` result: the vCPU is off.
pub const AFFINITY_OFF: i32 = 1;
/// `AFFINITY_INFO` result: the vCPU is being turned on.
pub const AFFINITY_ON_PENDING: i32 = 2;

/// The affinity fields of an MPIDR (Aff3 in bits 39:32, Aff2..Aff0 in bits
/// 23:0); `CPU_ON`/`AFFINITY_INFO` targets are compared under this mask.
pub const MPIDR_AFFINITY_MASK: u64 = 0xFF_00FF_FFFF;

/// Encode a PSCI version (`major << 16 | minor`).
pub const fn encode_psci_version(major: u16, minor: u16) -> u32 {
    ((major as u32) << 16) | minor as u32
}

/// The PSCI version a monitor implementing this ABI reports for
/// [`PSCI_VERSION`]: 1.1.
pub const MONITOR_PSCI_VERSION: u32 = encode_psci_version(1, 1);

/// Monitor side: the `x0` value for status `code` (sign-extended).
pub const fn status_to_x0(code: i32) -> u64 {
    code as i64 as u64
}

/// Guest side: the status in an `x0` result (its low 32 bits, signed).
pub const fn status_from_x0(x0: u64) -> i32 {
    x0 as u32 as i32
}

/// Name of a PSCI status code (`"DENIED"`), or `None` if it has none.
pub const fn status_name(code: i32) -> Option<&'static str> {
    Some(match code {
        SUCCESS => "SUCCESS",
        NOT_SUPPORTED => "NOT_SUPPORTED",
        INVALID_PARAMETERS => "INVALID_PARAMETERS",
        DENIED => "DENIED",
        ALREADY_ON => "ALREADY_ON",
        ON_PENDING => "ON_PENDING",
        INTERNAL_FAILURE => "INTERNAL_FAILURE",
        NOT_PRESENT => "NOT_PRESENT",
        DISABLED => "DISABLED",
        INVALID_ADDRESS => "INVALID_ADDRESS",
        _ => return None,
    })
}

/// Name of an SMCCC/PSCI function id (`"CPU_ON"`), for logs, or `None`.
pub const fn function_name(fid: u32) -> Option<&'static str> {
    Some(match fid {
        SMCCC_VERSION => "SMCCC_VERSION",
        SMCCC_ARCH_FEATURES => "SMCCC_ARCH_FEATURES",
        PSCI_VERSION => "PSCI_VERSION",
        CPU_SUSPEND_32 | CPU_SUSPEND => "CPU_SUSPEND",
        CPU_OFF => "CPU_OFF",
        CPU_ON_32 | CPU_ON => "CPU_ON",
        AFFINITY_INFO_32 | AFFINITY_INFO => "AFFINITY_INFO",
        MIGRATE_32 | MIGRATE => "MIGRATE",
        MIGRATE_INFO_TYPE => "MIGRATE_INFO_TYPE",
        MIGRATE_INFO_UP_CPU_32 | MIGRATE_INFO_UP_CPU => "MIGRATE_INFO_UP_CPU",
        SYSTEM_OFF => "SYSTEM_OFF",
        SYSTEM_RESET => "SYSTEM_RESET",
        PSCI_FEATURES => "PSCI_FEATURES",
        CPU_FREEZE => "CPU_FREEZE",
        CPU_DEFAULT_SUSPEND => "CPU_DEFAULT_SUSPEND",
        NODE_HW_STATE => "NODE_HW_STATE",
        SYSTEM_SUSPEND => "SYSTEM_SUSPEND",
        PSCI_SET_SUSPEND_MODE => "PSCI_SET_SUSPEND_MODE",
        PSCI_STAT_RESIDENCY => "PSCI_STAT_RESIDENCY",
        PSCI_STAT_COUNT => "PSCI_STAT_COUNT",
        SYSTEM_RESET2 => "SYSTEM_RESET2",
        _ => return None,
    })
}
