//! Time: the virtual counter (which the monitor offsets to count from its
//! own boot, Xen's "system time") and the one-shot timer of `set_timer_op`.

use core::arch::asm;
use hypercall_abi::{hvc, nr, result_from_raw, Errno};

/// The virtual counter.
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: reading the virtual counter has no side effects.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// Counter frequency, Hz.
pub fn frequency() -> u64 {
    let v: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// System time, ns since the monitor booted.
pub fn now_ns() -> u64 {
    (counter() as u128 * 1_000_000_000 / frequency().max(1) as u128) as u64
}

/// `set_timer_op(deadline)`: a timer interrupt at system time `deadline_ns`
/// (0 cancels); also acknowledges a timer interrupt already taken.
pub fn set_timer(deadline_ns: u64) -> Result<(), Errno> {
    // SAFETY: set_timer_op takes a plain value and touches no guest memory.
    result_from_raw(unsafe { hvc::hypercall1(nr::SET_TIMER_OP, deadline_ns) }).map(|_| ())
}
