//! Scheduler benchmarks, printed as `BENCH` lines for scripts/bench (run
//! under `-icount shift=0`, where one counter ns is one instruction).
//!
//! `bench=switch`: two domains on one CPU each call `sched_op(yield)` N
//! times; every call switches to the other domain, so the loop's counter
//! delta over 2N is the cost of one domain-to-domain switch (the yield
//! hypercall included).
//!
//! `bench=timer`: `set_timer_op` deadlines taken while the vCPU computes
//! with interrupts enabled; the handler notes the counter, so the delay from
//! the deadline to the handler's first instruction is measured.

use crate::console::println;
use crate::{irq, time};
use core::sync::atomic::{AtomicU64, Ordering};
use hypercall_abi::guest;

const YIELDS: u64 = 5_000;
const TIMER_ROUNDS: u64 = 50;

/// Counter value in the timer handler (0: not taken yet).
pub static IRQ_AT: AtomicU64 = AtomicU64::new(0);

/// `bench=switch`.
pub fn switch() -> ! {
    // Let the other domain reach its loop too.
    for _ in 0..10 {
        let _ = guest::sched_yield();
    }
    let t0 = time::counter();
    for _ in 0..YIELDS {
        let _ = guest::sched_yield();
    }
    let t1 = time::counter();
    println!("guest: cntfrq {}", time::frequency());
    println!("BENCH vcpu_switch_ticks {} {}", t1 - t0, 2 * YIELDS);
    guest::poweroff()
}

/// `bench=timer`.
pub fn timer() -> ! {
    let freq = time::frequency();
    let mut total_ticks = 0u64;
    for _ in 0..TIMER_ROUNDS {
        IRQ_AT.store(0, Ordering::SeqCst);
        let now = time::counter();
        // 50 µs ahead, as a whole number of ticks.
        let deadline_ticks = now + freq / 20_000;
        let deadline_ns = (deadline_ticks as u128 * 1_000_000_000 / freq as u128) as u64;
        // The monitor fires at the first tick at or after the deadline.
        let fire_ticks = (deadline_ns as u128 * freq as u128).div_ceil(1_000_000_000) as u64;
        let _ = time::set_timer(deadline_ns);
        irq::enable();
        while IRQ_AT.load(Ordering::SeqCst) == 0 {
            core::hint::spin_loop();
        }
        irq::disable();
        total_ticks += IRQ_AT.load(Ordering::SeqCst).saturating_sub(fire_ticks);
    }
    println!("guest: cntfrq {freq}");
    println!("BENCH timer_virq_latency_ticks {total_ticks} {TIMER_ROUNDS}");
    guest::poweroff()
}
