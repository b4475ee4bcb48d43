//! Interrupts. The guest has no interrupt controller: the monitor signals a
//! virtual IRQ while something is pending for the vCPU. Until event channels
//! exist, that is only the `set_timer_op` timer, acknowledged by the next
//! `set_timer_op` call.

use crate::smp;
use crate::time;
use core::sync::atomic::{AtomicU64, Ordering};

/// Timer interrupts taken, per vCPU.
pub static TIMER_IRQS: [AtomicU64; smp::MAX_VCPUS] = [const { AtomicU64::new(0) }; smp::MAX_VCPUS];

/// Called from the IRQ vector.
pub fn handle() {
    crate::bench_sched::IRQ_AT.store(time::counter(), Ordering::SeqCst);
    let me = smp::vcpu_index();
    if let Some(c) = TIMER_IRQS.get(me) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    // Acknowledge (no new deadline).
    let _ = time::set_timer(0);
}

/// Lets interrupts in (PSTATE.I clear).
pub fn enable() {
    // SAFETY: unmasking IRQs; the vector table is installed.
    unsafe { core::arch::asm!("msr daifclr, #2", options(nomem, nostack)) };
}

/// Masks interrupts.
pub fn disable() {
    // SAFETY: masking IRQs has no memory effects.
    unsafe { core::arch::asm!("msr daifset, #2", options(nomem, nostack)) };
}

/// Waits for an interrupt (the monitor blocks the vCPU until one is due).
/// Call it with IRQs masked, after checking what the interrupt would
/// change, then let the interrupt in with [`take`]: `wfi` wakes for a
/// pending interrupt even while masked, but with IRQs unmasked an
/// interrupt taken between the check and the `wfi` is handled there, and
/// the `wfi` then sleeps until an interrupt that may never come.
pub fn wait() {
    // SAFETY: waiting has no memory effects.
    unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
}

/// Lets a pending interrupt be taken (unmask, then mask again).
pub fn take() {
    // SAFETY: unmasking then masking IRQs; the vector table is installed.
    unsafe {
        core::arch::asm!(
            "msr daifclr, #2",
            "isb",
            "msr daifset, #2",
            options(nomem, nostack)
        )
    };
}
