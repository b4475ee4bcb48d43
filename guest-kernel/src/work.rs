//! CPU-bound work for scheduler tests, and the timer test.
//!
//! `work=MS`: every vCPU of the domain computes in units until system time
//! MS (ms since the monitor booted), never yielding, with interrupts masked,
//! with a pattern in all FP/SIMD registers that it checks as it goes (the
//! monitor must keep them across switches). Then the boot vCPU prints the
//! units done, which a test compares across domains of different weights.
//!
//! `timer`: arms `set_timer_op` deadlines and waits for them with `wfi`,
//! checking that the interrupt comes, and not before its deadline.

use crate::console::println;
use crate::dt::BootInfo;
use crate::{irq, smp, time};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use hypercall_abi::guest;

static UNITS: [AtomicU64; smp::MAX_VCPUS] = [const { AtomicU64::new(0) }; smp::MAX_VCPUS];
static FP_BAD: AtomicUsize = AtomicUsize::new(0);
static DONE: AtomicUsize = AtomicUsize::new(0);
static UNTIL_NS: AtomicU64 = AtomicU64::new(0);

/// Loads `seed + k` into both halves of `v<k>`, for k in 0..32.
fn fp_fill(seed: u64) {
    // SAFETY: writes only FP/SIMD registers, which this soft-float kernel's
    // compiled code never uses.
    unsafe {
        core::arch::asm!(
            ".arch_extension simd",
            ".irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
            "add {t}, {s}, #\\n",
            "dup v\\n\\().2d, {t}",
            ".endr",
            s = in(reg) seed,
            t = out(reg) _,
            options(nomem, nostack)
        )
    };
}

/// Whether every `v<k>` still holds `seed + k` in both halves.
fn fp_check(seed: u64) -> bool {
    let mut buf = [0u64; 64];
    // SAFETY: stores the 32 128-bit registers into `buf` (512 bytes).
    unsafe {
        core::arch::asm!(
            ".arch_extension simd",
            ".irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
            "str q\\n, [{p}, #(\\n * 16)]",
            ".endr",
            p = in(reg) buf.as_mut_ptr(),
            options(nostack)
        )
    };
    (0..32).all(|k| buf[2 * k] == seed + k as u64 && buf[2 * k + 1] == seed + k as u64)
}

fn worker(i: usize) {
    smp::enable_fp();
    let seed = time::counter().wrapping_mul(0x9e37_79b9) ^ ((i as u64) << 48);
    fp_fill(seed);
    let until = UNTIL_NS.load(Ordering::SeqCst);
    let mut units = 0u64;
    let mut x = seed | 1;
    while time::now_ns() < until {
        for _ in 0..2000 {
            x = core::hint::black_box(
                x.wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407),
            );
        }
        units += 1;
        if units % 64 == 0 && !fp_check(seed) {
            FP_BAD.fetch_add(1, Ordering::SeqCst);
            fp_fill(seed);
        }
    }
    if !fp_check(seed) {
        FP_BAD.fetch_add(1, Ordering::SeqCst);
    }
    UNITS[i].store(units, Ordering::SeqCst);
    DONE.fetch_add(1, Ordering::SeqCst);
}

/// `work=MS`.
pub fn run(info: &BootInfo, arg: &str) -> ! {
    let Ok(ms) = arg.parse::<u64>() else {
        println!("guest: work: bad duration \"{arg}\"");
        guest::crash()
    };
    UNTIL_NS.store(ms * 1_000_000, Ordering::SeqCst);
    let n = info.vcpus.min(smp::MAX_VCPUS);
    let started = 1 + smp::start(n, worker);
    println!("guest: work until {ms} ms on {started} vcpu(s)");
    worker(0);
    while DONE.load(Ordering::SeqCst) < started {
        let _ = guest::sched_yield();
    }
    let total: u64 = UNITS.iter().map(|u| u.load(Ordering::SeqCst)).sum();
    for (i, u) in UNITS.iter().take(started).enumerate() {
        println!("guest: work vcpu {i}: {} units", u.load(Ordering::SeqCst));
    }
    let bad = FP_BAD.load(Ordering::SeqCst);
    if bad == 0 {
        println!("guest: work fp registers intact on {started} vcpu(s)");
    } else {
        println!("guest: work FAIL: fp registers changed {bad} time(s)");
    }
    println!("guest: work total {total} units");
    guest::poweroff()
}

/// `timer`: five one-shot deadlines, each waited for with `wfi`.
pub fn timer() -> ! {
    // An event-channel call first: the monitor then keeps event state for
    // every domain, but this one never binds VIRQ_TIMER, so its timer must
    // still come as its own interrupt line.
    let r = hypercall_abi::evtchn_guest::status(hypercall_abi::event_channel::DOMID_SELF, 1);
    println!(
        "guest: timer: event-channel status of port 1: {:?}",
        r.map(|s| s.status)
    );
    let mut ok = 0;
    const ROUNDS: u64 = 5;
    for round in 1..=ROUNDS {
        let before = irq::TIMER_IRQS[0].load(Ordering::SeqCst);
        let deadline = time::now_ns() + round * 2_000_000;
        if let Err(e) = time::set_timer(deadline) {
            println!("guest: timer FAIL: set_timer_op: {e}");
            continue;
        }
        let mut waits = 0;
        // Check, then wait, with IRQs masked; take the interrupt after.
        while irq::TIMER_IRQS[0].load(Ordering::SeqCst) == before && waits < 1000 {
            irq::wait();
            irq::take();
            waits += 1;
        }
        let woke = time::now_ns();
        let got = irq::TIMER_IRQS[0].load(Ordering::SeqCst) - before;
        if got == 1 && woke >= deadline {
            ok += 1;
            println!(
                "guest: timer round {round}: interrupt {} us after the deadline, {waits} wfi",
                (woke - deadline) / 1000
            );
        } else {
            println!("guest: timer FAIL round {round}: {got} interrupt(s), woke at {woke} for {deadline}");
        }
    }
    // A cancelled timer never fires.
    let before = irq::TIMER_IRQS[0].load(Ordering::SeqCst);
    let _ = time::set_timer(time::now_ns() + 1_000_000);
    let _ = time::set_timer(0);
    let until = time::now_ns() + 5_000_000;
    while time::now_ns() < until {
        let _ = guest::sched_yield();
    }
    irq::enable();
    irq::disable();
    let cancelled_ok = irq::TIMER_IRQS[0].load(Ordering::SeqCst) == before;
    println!(
        "guest: timer cancel: {}",
        if cancelled_ok {
            "no interrupt"
        } else {
            "FAIL: an interrupt came"
        }
    );
    // SCHEDOP_poll with no ports and a timeout sleeps until the timeout;
    // too many ports is refused.
    let poll = |nr: u32, timeout: u64| {
        let ports = [0u32; 1];
        let arg = hypercall_abi::sched::SchedPoll {
            ports: ports.as_ptr() as u64,
            nr_ports: nr,
            pad: 0,
            timeout,
        };
        // SAFETY: `arg` and `ports` are live for the call; the monitor only
        // reads them.
        let r = unsafe {
            hypercall_abi::hvc::hypercall2(
                hypercall_abi::nr::SCHED_OP,
                hypercall_abi::sched::SCHEDOP_POLL,
                core::ptr::from_ref(&arg) as u64,
            )
        };
        hypercall_abi::result_from_raw(r)
    };
    let deadline = time::now_ns() + 3_000_000;
    let r = poll(0, deadline);
    let woke = time::now_ns();
    let poll_ok = r == Ok(0) && woke >= deadline;
    println!(
        "guest: timer poll: {r:?} {} us after its timeout {}",
        woke.saturating_sub(deadline) / 1000,
        if poll_ok { "ok" } else { "FAIL" }
    );
    let r = poll(129, 0);
    let refused_ok = r == Err(hypercall_abi::Errno::EINVAL);
    println!(
        "guest: timer poll of 129 ports: {r:?} {}",
        if refused_ok { "ok" } else { "FAIL" }
    );
    let passed = ok + cancelled_ok as u64 + poll_ok as u64 + refused_ok as u64;
    println!("guest: timer checks passed {}/{}", passed, ROUNDS + 3);
    guest::poweroff()
}
