//! `bench`: the cost of a null hypercall (`xen_version(XENVER_version)`),
//! timed with the virtual counter against an identical loop of `nop`s.
//! The host script turns the tick difference into instructions.

use crate::console::println;
use core::arch::asm;
use hypercall_abi::guest;
use hypercall_abi::nr::{HVC_IMM, XEN_VERSION};

/// Iterations of each loop.
const N: u64 = 20_000;

/// Ticks of CNTVCT_EL0 for `n` iterations of the hypercall loop.
fn time_hvc(n: u64) -> u64 {
    let (t0, t1): (u64, u64);
    // SAFETY: xen_version(XENVER_version) has no memory argument and no
    // effect; the registers the hypercall clobbers are declared.
    unsafe {
        asm!(
            "isb",
            "mrs {t0}, cntvct_el0",
            "2:",
            "mov x16, #{nr}",
            "mov x0, #0",
            "hvc #{imm}",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            "isb",
            "mrs {t1}, cntvct_el0",
            nr = const XEN_VERSION,
            imm = const HVC_IMM,
            n = inout(reg) n => _,
            t0 = out(reg) t0,
            t1 = out(reg) t1,
            out("x0") _, out("x1") _, out("x2") _, out("x3") _, out("x4") _,
            out("x16") _,
            options(nostack, nomem),
        );
    }
    t1 - t0
}

/// Ticks of CNTVCT_EL0 for `n` iterations of the same loop with `nop`.
fn time_nop(n: u64) -> u64 {
    let (t0, t1): (u64, u64);
    // SAFETY: only registers are touched, all declared.
    unsafe {
        asm!(
            "isb",
            "mrs {t0}, cntvct_el0",
            "2:",
            "mov x16, #{nr}",
            "mov x0, #0",
            "nop",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            "isb",
            "mrs {t1}, cntvct_el0",
            nr = const XEN_VERSION,
            n = inout(reg) n => _,
            t0 = out(reg) t0,
            t1 = out(reg) t1,
            out("x0") _, out("x1") _, out("x2") _, out("x3") _, out("x4") _,
            out("x16") _,
            options(nostack, nomem),
        );
    }
    t1 - t0
}

fn cntfrq() -> u64 {
    let f: u64;
    // SAFETY: reading the counter frequency has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack)) };
    f
}

/// Run both loops, print `BENCH null_hypercall_ticks <hvc> <nop> <N>`,
/// then power off.
pub fn run() -> ! {
    let hvc = time_hvc(N);
    let nop = time_nop(N);
    // Under the monitor's `bench-floor` option every hypercall is a bare
    // `eret` (x0 comes back unchanged: 0) until the monitor's first timer
    // tick; wait for real answers before printing.
    // SAFETY: xen_version(XENVER_version) has no memory argument.
    while unsafe { hypercall_abi::hvc::hypercall1(XEN_VERSION, 0) } == 0 {
        core::hint::spin_loop();
    }
    println!("BENCH null_hypercall_ticks {hvc} {nop} {N}");
    println!("guest: cntfrq {}", cntfrq());
    guest::poweroff()
}
