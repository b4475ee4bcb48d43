//! `kmain`: report what the guest booted with, then do what the first
//! known word of the command line asks.

use crate::console::{self, println};
use crate::dt;
use crate::{bench, tests};
use core::arch::asm;
use hypercall_abi::guest;

/// What the command line asks for.
#[derive(Clone, Copy)]
enum Command {
    Hello,
    Checks(&'static [tests::Check]),
    Fault(fn() -> !),
    Bench,
    Spin,
    Work(&'static str),
    Timer,
    Mgr(&'static str),
    Idle,
    Run(fn(&dt::BootInfo) -> !),
}

impl Command {
    fn parse(word: &'static str) -> Option<Command> {
        Some(match word {
            "hello" => Command::Hello,
            "test=enosys" => Command::Checks(tests::ENOSYS_CHECKS),
            "test=efault" => Command::Checks(tests::EFAULT_CHECKS),
            "test=einval" => Command::Checks(tests::EINVAL_CHECKS),
            "test=s2fault" => Command::Fault(tests::s2fault),
            "test=undef" => Command::Fault(tests::undef),
            "test=smc" => Command::Fault(tests::smc),
            "test=panic" => Command::Fault(tests::panic),
            "bench" => Command::Bench,
            "spin" => Command::Spin,
            "timer" => Command::Timer,
            "bench=switch" => Command::Fault(crate::bench_sched::switch),
            "bench=timer" => Command::Fault(crate::bench_sched::timer),
            "idle" => Command::Idle,
            w if w.starts_with("mgr=") => Command::Mgr(&w[4..]),
            w if w.starts_with("kill=") => Command::Run(crate::mgr::kill),
            w if w.starts_with("work=") => Command::Work(&w[5..]),
            "mmu" => Command::Run(crate::paging::run),
            "test=mmu" => Command::Run(crate::mmu_checks::run),
            "test=devices" => Command::Run(crate::dev_checks::run),
            "bench=mmu" => Command::Run(crate::mmu_bench::run),
            "ring=front" => Command::Run(crate::ring_test::front),
            "ring=back" => Command::Run(crate::ring_test::back),
            "test=pvio" => Command::Run(crate::pv_checks::run),
            "test=vcpu-restart" => Command::Run(crate::smp::restart_checks),
            "bench=pv" => Command::Run(crate::pv_bench::run),
            "driver" => Command::Run(crate::driver::run),
            "echo" => Command::Run(crate::echo::run),
            "blk=rw" => Command::Run(crate::blk_test::rw),
            "blk=bad" => Command::Run(crate::blk_test::bad),
            "blk=bench" => Command::Run(crate::blk_test::bench),
            "blk=image" => Command::Run(crate::blk_test::image),
            "blk=until-gone" => Command::Run(crate::blk_test::until_gone),
            "blk=reconnect" => Command::Run(crate::blk_test::reconnect),
            "virtio=direct" => Command::Run(crate::virtio_direct::run),
            "net=serve" => Command::Run(crate::net_test::serve),
            "net=ping" => Command::Run(crate::net_test::ping_mode),
            "net=bad" => Command::Run(crate::net_test::bad),
            _ => return None,
        })
    }
}

fn current_el() -> u64 {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects.
    unsafe { asm!("mrs {}, CurrentEL", out(reg) el, options(nomem, nostack)) };
    (el >> 2) & 3
}

/// Called by the boot code with the boot `x0` (device tree address).
#[no_mangle]
extern "C" fn kmain(dtb: usize) -> ! {
    console::init_logger();
    crate::heap::init();
    println!(
        "guest: booted at EL{}, device tree at {dtb:#x}",
        current_el()
    );
    let info = match dt::parse(dtb) {
        Ok(info) => info,
        Err(e) => {
            println!("guest: no valid device tree at {dtb:#x}: {e}");
            guest::crash()
        }
    };
    println!(
        "guest: memory {:#x}..{:#x} ({} MiB)",
        info.ram_base,
        info.ram_end(),
        info.ram_size >> 20
    );
    let hyp = info.hypervisor.unwrap_or("none");
    match guest::xen_version() {
        Ok((major, minor)) => println!("guest: hypervisor {hyp} abi {major}.{minor}"),
        Err(e) => println!("guest: hypervisor {hyp} abi unknown (xen_version: {e})"),
    }
    println!("guest: command line \"{}\"", info.bootargs);

    let command = info.bootargs.split_whitespace().find_map(Command::parse);
    match command {
        Some(Command::Hello) => hello(),
        None if info.bootargs.trim().is_empty() => hello(),
        Some(Command::Checks(checks)) => tests::run_checks(&info, checks),
        Some(Command::Fault(f)) => f(),
        Some(Command::Bench) => bench::run(),
        Some(Command::Spin) => spin(),
        Some(Command::Work(arg)) => crate::work::run(&info, arg),
        Some(Command::Timer) => crate::work::timer(),
        Some(Command::Mgr(arg)) => crate::mgr::run(arg),
        Some(Command::Idle) => crate::mgr::idle(),
        Some(Command::Run(f)) => f(&info),
        None => {
            println!("guest: unknown command line");
            guest::crash()
        }
    }
}

/// `hello`: a few rounds of work and yields, then a clean power-off.
/// `spin`: compute without ever yielding, with interrupts masked (as the
/// guest runs from boot), so that only the monitor's timer can take the CPU
/// away; prints progress and a checksum, then powers off.
fn spin() -> ! {
    let mut x: u64 = 1;
    for i in 1..=4 {
        for _ in 0..3_000_000u64 {
            x = core::hint::black_box(
                x.wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407),
            );
        }
        println!("guest: spin {i}/4");
    }
    println!("guest: spin done, checksum {x:#x}");
    guest::poweroff()
}

fn hello() -> ! {
    println!("guest: hello, world");
    for i in 1..=3 {
        println!("guest: working {i}");
        if let Err(e) = guest::sched_yield() {
            log::warn!("guest: sched_yield failed: {e}");
        }
    }
    println!("guest: done, powering off");
    guest::poweroff()
}
