//! Raw hypercall and SMCCC instructions (aarch64 only).
//!
//! These are the only `unsafe` operations in the crate. They place the
//! hypercall number in `x16` and the arguments in `x0..x4`, execute
//! `hvc #0xEA1`, and return `x0` as `i64`. Registers `x0..x4` and `x16` are
//! treated as clobbered (Xen's rule); all other registers, the stack and
//! the condition flags are preserved by the monitor. The asm blocks are not
//! marked `nomem`: the monitor may read and write any guest memory the
//! arguments point to, so the compiler must not cache memory across them.
//!
//! Decode the `i64` with [`crate::result_from_raw`].

use crate::nr::HVC_IMM;
use core::arch::asm;

/// Hypercall `nr` with no arguments.
///
/// # Safety
///
/// The caller must uphold the contract of hypercall `nr`: in particular any
/// memory the monitor reads or writes on its behalf must be valid, and
/// hypercalls that change the guest's memory or execution state (shutdown,
/// page-table updates, grant mappings, ...) must be sound for the running
/// program.
#[inline(always)]
pub unsafe fn hypercall0(nr: u64) -> i64 {
    let ret: i64;
    // SAFETY: `hvc #0xEA1` traps to the monitor, which follows the
    // register contract declared here (x16 in, x0 out, x0-x4/x16
    // clobbered, stack untouched). Memory effects of `nr` are the caller's
    // responsibility (see `# Safety`).
    unsafe {
        asm!(
            "hvc #{imm}",
            imm = const HVC_IMM,
            inout("x16") nr => _,
            lateout("x0") ret,
            lateout("x1") _,
            lateout("x2") _,
            lateout("x3") _,
            lateout("x4") _,
            options(nostack),
        );
    }
    ret
}

/// Hypercall `nr` with one argument in `x0`.
///
/// # Safety
///
/// As for [`hypercall0`]; pointer arguments must point to memory valid for
/// the access hypercall `nr` makes.
#[inline(always)]
pub unsafe fn hypercall1(nr: u64, a0: u64) -> i64 {
    let ret: i64;
    // SAFETY: see `hypercall0`; a0 is passed in x0, which also returns the
    // result.
    unsafe {
        asm!(
            "hvc #{imm}",
            imm = const HVC_IMM,
            inout("x16") nr => _,
            inout("x0") a0 => ret,
            lateout("x1") _,
            lateout("x2") _,
            lateout("x3") _,
            lateout("x4") _,
            options(nostack),
        );
    }
    ret
}

/// Hypercall `nr` with arguments in `x0, x1`.
///
/// # Safety
///
/// As for [`hypercall1`].
#[inline(always)]
pub unsafe fn hypercall2(nr: u64, a0: u64, a1: u64) -> i64 {
    let ret: i64;
    // SAFETY: see `hypercall0`; arguments in x0-x1, result in x0.
    unsafe {
        asm!(
            "hvc #{imm}",
            imm = const HVC_IMM,
            inout("x16") nr => _,
            inout("x0") a0 => ret,
            inout("x1") a1 => _,
            lateout("x2") _,
            lateout("x3") _,
            lateout("x4") _,
            options(nostack),
        );
    }
    ret
}

/// Hypercall `nr` with arguments in `x0..x2`.
///
/// # Safety
///
/// As for [`hypercall1`].
#[inline(always)]
pub unsafe fn hypercall3(nr: u64, a0: u64, a1: u64, a2: u64) -> i64 {
    let ret: i64;
    // SAFETY: see `hypercall0`; arguments in x0-x2, result in x0.
    unsafe {
        asm!(
            "hvc #{imm}",
            imm = const HVC_IMM,
            inout("x16") nr => _,
            inout("x0") a0 => ret,
            inout("x1") a1 => _,
            inout("x2") a2 => _,
            lateout("x3") _,
            lateout("x4") _,
            options(nostack),
        );
    }
    ret
}

/// Hypercall `nr` with arguments in `x0..x3`.
///
/// # Safety
///
/// As for [`hypercall1`].
#[inline(always)]
pub unsafe fn hypercall4(nr: u64, a0: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let ret: i64;
    // SAFETY: see `hypercall0`; arguments in x0-x3, result in x0.
    unsafe {
        asm!(
            "hvc #{imm}",
            imm = const HVC_IMM,
            inout("x16") nr => _,
            inout("x0") a0 => ret,
            inout("x1") a1 => _,
            inout("x2") a2 => _,
            inout("x3") a3 => _,
            lateout("x4") _,
            options(nostack),
        );
    }
    ret
}

/// Hypercall `nr` with arguments in `x0..x4`.
///
/// # Safety
///
/// As for [`hypercall1`].
#[inline(always)]
pub unsafe fn hypercall5(nr: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    let ret: i64;
    // SAFETY: see `hypercall0`; arguments in x0-x4, result in x0.
    unsafe {
        asm!(
            "hvc #{imm}",
            imm = const HVC_IMM,
            inout("x16") nr => _,
            inout("x0") a0 => ret,
            inout("x1") a1 => _,
            inout("x2") a2 => _,
            inout("x3") a3 => _,
            inout("x4") a4 => _,
            options(nostack),
        );
    }
    ret
}

/// SMCCC call through `hvc #0`: function id in `w0`, arguments in
/// `x1..x3`, result `x0`. Used for PSCI (see [`crate::psci`]).
///
/// # Safety
///
/// The caller must uphold the contract of function `fid`; e.g. for
/// `CPU_ON` the entry point must be code that can run on a fresh vCPU, for
/// `CPU_OFF`/`SYSTEM_OFF` the call does not return.
#[inline(always)]
pub unsafe fn smccc_hvc0(fid: u32, a1: u64, a2: u64, a3: u64) -> u64 {
    let ret: u64;
    // SAFETY: `hvc #0` traps to the monitor's SMCCC handler, which follows
    // the register contract declared here. x0-x17 are marked clobbered
    // (SMCCC v1.0 rule); the stack is untouched.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") fid as u64 => ret,
            inout("x1") a1 => _,
            inout("x2") a2 => _,
            inout("x3") a3 => _,
            lateout("x4") _, lateout("x5") _, lateout("x6") _, lateout("x7") _,
            lateout("x8") _, lateout("x9") _, lateout("x10") _, lateout("x11") _,
            lateout("x12") _, lateout("x13") _, lateout("x14") _, lateout("x15") _,
            lateout("x16") _, lateout("x17") _,
            options(nostack),
        );
    }
    ret
}
