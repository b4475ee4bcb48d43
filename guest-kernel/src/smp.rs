//! Secondary vCPUs, started with PSCI `CPU_ON` as on any Arm machine.

use core::sync::atomic::{AtomicUsize, Ordering};
use hypercall_abi::{guest, psci};

/// Most vCPUs this kernel drives.
pub const MAX_VCPUS: usize = 8;
const STACK: usize = 16 * 1024;

core::arch::global_asm!(
    r#"
    .section .text.boot, "ax"
    .global secondary_vcpu_entry
secondary_vcpu_entry:
    // x0 = vCPU index (the CPU_ON context). MMU off, IRQs masked.
    adrp    x1, secondary_stacks
    add     x1, x1, :lo12:secondary_stacks
    add     x2, x0, #1
    mov     x3, #{stack}
    madd    x1, x2, x3, x1
    mov     sp, x1
    adrp    x1, guest_vectors
    add     x1, x1, :lo12:guest_vectors
    msr     vbar_el1, x1
    isb
    mov     x29, xzr
    mov     x30, xzr
    bl      secondary_main
1:  wfe
    b       1b

    .section .bss.secondary_stacks, "aw", %nobits
    .balign 16
    .global secondary_stacks
secondary_stacks:
    .space  {stack} * {n}
    .text
"#,
    stack = const STACK,
    n = const MAX_VCPUS,
);

/// What secondary vCPUs run (a `fn(usize)` as an address).
static ENTRY: AtomicUsize = AtomicUsize::new(0);

/// This vCPU's index (MPIDR_EL1.Aff0, as the monitor sets it).
pub fn vcpu_index() -> usize {
    let v: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack)) };
    (v & 0xff) as usize
}

/// Lets this vCPU use FP/SIMD registers (CPACR_EL1.FPEN).
pub fn enable_fp() {
    // SAFETY: only changes whether FP/SIMD instructions trap at EL1/EL0.
    unsafe {
        core::arch::asm!(
            "mrs {t}, cpacr_el1",
            "orr {t}, {t}, #(3 << 20)",
            "msr cpacr_el1, {t}",
            "isb",
            t = out(reg) _,
            options(nomem, nostack)
        )
    };
}

/// Starts vCPUs `1..n` running `f(index)`; each stops (PSCI `CPU_OFF`) when
/// `f` returns. Returns how many started.
pub fn start(n: usize, f: fn(usize)) -> usize {
    ENTRY.store(f as usize, Ordering::SeqCst);
    let mut started = 0;
    for i in 1..n.min(MAX_VCPUS) {
        let r = cpu_on(i);
        if r == psci::SUCCESS {
            started += 1;
        } else {
            crate::console::println!("guest: vcpu {i}: CPU_ON failed ({r})");
        }
    }
    started
}

/// PSCI `CPU_ON` of vCPU `i` (`1..MAX_VCPUS`) at the secondary entry,
/// which runs what [`ENTRY`] holds.
fn cpu_on(i: usize) -> i32 {
    extern "C" {
        fn secondary_vcpu_entry();
    }
    // SAFETY: the entry sets up its own stack (one per index) and vectors;
    // it runs with the MMU off like the boot vCPU did.
    unsafe { guest::psci_cpu_on(i as u64, secondary_vcpu_entry as *const () as u64, i as u64) }
}

#[no_mangle]
extern "C" fn secondary_main(idx: usize) -> ! {
    let f = ENTRY.load(Ordering::SeqCst);
    if f != 0 {
        // SAFETY: `start` stored a `fn(usize)` here.
        let f: fn(usize) = unsafe { core::mem::transmute(f) };
        f(idx);
    }
    guest::psci_cpu_off();
    loop {
        core::hint::spin_loop();
    }
}

/// Round the boot vCPU is in (`test=vcpu-restart`).
static ROUND: AtomicUsize = AtomicUsize::new(0);
/// Last round vCPU 1 saw at its entry.
static SEEN: AtomicUsize = AtomicUsize::new(0);

/// vCPU 1's work in `test=vcpu-restart`: say which round started it, then
/// spin until taken down from outside.
fn restart_spinner(_idx: usize) {
    SEEN.store(ROUND.load(Ordering::SeqCst), Ordering::SeqCst);
    loop {
        core::hint::spin_loop();
    }
}

/// `test=vcpu-restart [rounds=N]`: the boot vCPU takes vCPU 1 down with
/// `VCPUOP_down` while it spins (on another CPU when there is one) and at
/// once starts it again with PSCI `CPU_ON`, N times. Each restart must
/// begin at the entry with the new round's state, not resume where the
/// vCPU was taken down (its registers may still be in the other CPU when
/// `CPU_ON` comes).
pub fn restart_checks(info: &crate::dt::BootInfo) -> ! {
    let rounds: usize = info
        .bootargs
        .split_whitespace()
        .find_map(|w| w.strip_prefix("rounds="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut t = crate::tally::Tally::new("vcpu-restart");
    ENTRY.store(restart_spinner as fn(usize) as usize, Ordering::SeqCst);
    let (mut started, mut on_errors, mut down_errors) = (0usize, 0usize, 0usize);
    for r in 1..=rounds {
        if r > 1 && guest::vcpu_op(hypercall_abi::vcpu::VCPUOP_DOWN, 1).is_err() {
            down_errors += 1;
        }
        ROUND.store(r, Ordering::SeqCst);
        if cpu_on(1) != psci::SUCCESS {
            on_errors += 1;
            continue;
        }
        // Wait (system time, up to 2 s) for vCPU 1 to report this round.
        let until = crate::time::now_ns() + 2_000_000_000;
        while SEEN.load(Ordering::SeqCst) != r && crate::time::now_ns() < until {
            let _ = guest::sched_yield();
        }
        if SEEN.load(Ordering::SeqCst) == r {
            started += 1;
        }
    }
    t.check(
        "down",
        down_errors == 0,
        format_args!("{down_errors} VCPUOP_down refused"),
    );
    t.check(
        "cpu_on",
        on_errors == 0,
        format_args!("{on_errors} CPU_ON refused"),
    );
    t.check(
        "restarts",
        started == rounds,
        format_args!("{started}/{rounds} began at the entry with their round"),
    );
    let _ = guest::vcpu_op(hypercall_abi::vcpu::VCPUOP_DOWN, 1);
    crate::console::println!("guest: vcpu-restart checks passed {}/{}", t.ok, t.all);
    guest::poweroff()
}
