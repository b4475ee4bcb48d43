//! Event channels on the guest side: the shared-info page, the upcall
//! handler on the EL1 IRQ vector, per-port handlers, and waiting.
//!
//! The monitor raises the vCPU's virtual IRQ while
//! `evtchn_upcall_pending` is set. `irq_entry` (the IRQ vector at EL1)
//! saves the caller-saved registers and calls [`guest_irq`], which runs
//! [`SharedInfo::take_pending`] (clear `evtchn_upcall_pending`, swap the
//! selector, clear and dispatch each pending unmasked port) and then makes
//! the null hypercall so that the monitor drops the line (the
//! acknowledgement scheme of `hypercall_abi::event_channel`).
//!
//! The kernel runs with IRQs masked; [`wait`] unmasks them only around a
//! yield, so handlers run at a known point.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use hypercall_abi::errno::Errno;
use hypercall_abi::evtchn_guest as ev;
use hypercall_abi::guest;
use hypercall_abi::memory::GUEST_MAGIC_BASE;
use hypercall_abi::shared_info::SharedInfo;

core::arch::global_asm!(
    r#"
    .text
    .global irq_entry
irq_entry:
    sub     sp, sp, #176
    stp     x0, x1, [sp]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x30, [sp, #144]
    mrs     x0, elr_el1
    mrs     x1, spsr_el1
    stp     x0, x1, [sp, #160]
    bl      guest_irq
    ldp     x0, x1, [sp, #160]
    msr     elr_el1, x0
    msr     spsr_el1, x1
    ldp     x0, x1, [sp]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x30, [sp, #144]
    add     sp, sp, #176
    eret
"#
);

/// The shared-info page, once mapped.
static SHARED: AtomicUsize = AtomicUsize::new(0);
/// Ports with a counter (and optional handler) here.
pub const PORTS: usize = 64;
/// Events seen per port.
static COUNT: [AtomicU32; PORTS] = [const { AtomicU32::new(0) }; PORTS];
/// Handler per port (`fn(u32)` as usize; 0: none).
static HANDLER: [AtomicUsize; PORTS] = [const { AtomicUsize::new(0) }; PORTS];
/// Upcalls taken.
pub static UPCALLS: AtomicU32 = AtomicU32::new(0);
/// Counter value at the last upcall entry (for the wake-up benchmark).
pub static LAST_UPCALL_AT: AtomicU64 = AtomicU64::new(0);

/// Maps the shared-info page at the first page of the magic window.
pub fn init() -> Result<&'static SharedInfo, Errno> {
    let s = ev::map_shared_info(GUEST_MAGIC_BASE >> 12)?;
    SHARED.store(s as *const SharedInfo as usize, Ordering::Release);
    Ok(s)
}

/// The shared-info page (after [`init`]).
pub fn shared() -> Option<&'static SharedInfo> {
    let a = SHARED.load(Ordering::Acquire);
    // SAFETY: only `init` stores a non-zero value: the address of the
    // shared-info page the monitor keeps mapped for the domain's lifetime.
    (a != 0).then(|| unsafe { &*(a as *const SharedInfo) })
}

/// Runs `f(port)` for each event on `port` (in the upcall handler).
pub fn set_handler(port: u32, f: fn(u32)) {
    if let Some(h) = HANDLER.get(port as usize) {
        h.store(f as usize, Ordering::Release);
    }
}

/// Events seen so far on `port`.
pub fn count(port: u32) -> u32 {
    COUNT
        .get(port as usize)
        .map_or(0, |c| c.load(Ordering::Acquire))
}

fn counter() -> u64 {
    let t: u64;
    // SAFETY: reading the virtual counter has no side effects.
    unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) t, options(nomem, nostack)) };
    t
}

/// The upcall: called by `irq_entry` with IRQs masked.
#[no_mangle]
extern "C" fn guest_irq() {
    let Some(s) = shared() else {
        // No event channels yet: the only interrupt is the monitor's own
        // one-shot timer line (see `crate::irq`).
        crate::irq::handle();
        return;
    };
    LAST_UPCALL_AT.store(counter(), Ordering::Relaxed);
    UPCALLS.fetch_add(1, Ordering::Relaxed);
    {
        s.take_pending(crate::smp::vcpu_index(), |port| {
            if let Some(c) = COUNT.get(port as usize) {
                c.fetch_add(1, Ordering::AcqRel);
            }
            let h = HANDLER
                .get(port as usize)
                .map_or(0, |h| h.load(Ordering::Acquire));
            if h != 0 {
                // SAFETY: only `set_handler` stores non-zero values, each a
                // `fn(u32)` cast to usize.
                let f: fn(u32) = unsafe { core::mem::transmute::<usize, fn(u32)>(h) };
                f(port);
            }
        });
    }
    // Acknowledge: any hypercall makes the monitor re-evaluate the line.
    let _ = guest::xen_version();
}

/// Unmasks IRQs, yields once (taking any pending upcall on return), masks
/// them again.
pub fn yield_with_irqs() {
    // SAFETY: unmasking IRQs lets `irq_entry` run, which preserves all
    // registers the interrupted code uses.
    unsafe { core::arch::asm!("msr daifclr, #2", options(nostack)) };
    let _ = guest::sched_yield();
    // SAFETY: masking IRQs again.
    unsafe { core::arch::asm!("msr daifset, #2", options(nostack)) };
}

/// Waits until `port` has seen more than `seen` events, or `give_up()`
/// (checked every 16 yields) says to stop. Returns the new count, or
/// `None` if it gave up.
pub fn wait(port: u32, seen: u32, mut give_up: impl FnMut() -> bool) -> Option<u32> {
    let mut n = 0u32;
    loop {
        let c = count(port);
        if c != seen {
            return Some(c);
        }
        yield_with_irqs();
        n = n.wrapping_add(1);
        if n % 16 == 0 && give_up() {
            return None;
        }
    }
}

/// The port of `VIRQ_TIMER` once [`bind_timer`] has bound it (0: none).
static TIMER_PORT: AtomicU32 = AtomicU32::new(0);

/// Binds `VIRQ_TIMER` (after the domain's fixed ports are allocated), so
/// that [`sleep`] can bound its waits with a one-shot timer.
pub fn bind_timer() -> Result<u32, Errno> {
    let p = ev::bind_virq(hypercall_abi::event_channel::VIRQ_TIMER, 0)?;
    ev::unmask(p)?;
    TIMER_PORT.store(p, Ordering::Release);
    Ok(p)
}

/// Sleeps (`sched_op(block)`, IRQs masked, so nothing is missed) until an
/// event is pending or `timeout_ns` has passed, then takes the upcall.
/// Without a bound timer it yields once instead.
pub fn sleep(timeout_ns: u64) {
    if TIMER_PORT.load(Ordering::Acquire) == 0 {
        yield_with_irqs();
        return;
    }
    let _ = crate::time::set_timer(crate::time::now_ns() + timeout_ns);
    let _ = guest::sched_block();
    // SAFETY: unmasking IRQs lets `irq_entry` take the pending upcall; it
    // preserves all registers the interrupted code uses.
    unsafe { core::arch::asm!("msr daifclr, #2", "isb", options(nostack)) };
    // SAFETY: masking IRQs again.
    unsafe { core::arch::asm!("msr daifset, #2", options(nostack)) };
}

/// Like [`wait`], but sleeps between checks instead of yielding (checks
/// `give_up()` at least every 10 ms).
pub fn wait_sleeping(port: u32, seen: u32, mut give_up: impl FnMut() -> bool) -> Option<u32> {
    loop {
        let c = count(port);
        if c != seen {
            return Some(c);
        }
        sleep(10_000_000);
        let c = count(port);
        if c != seen {
            return Some(c);
        }
        if give_up() {
            return None;
        }
    }
}
