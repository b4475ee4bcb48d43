//! Bringing up the secondary CPUs: PSCI `CPU_ON` (QEMU virt), the spin
//! table (Raspberry Pi 4 firmware and QEMU raspi4b's boot stub), or the
//! parking slots of boot.S (cores a loader started at the image's entry).

use super::{idle, Monitor, MONITOR, SGI_KICK};
use crate::arch::{self, cache, el1, firmware, mmu, stage2};
use crate::println;
use core::sync::atomic::{AtomicU64, Ordering};
use platform::devtree::CpuEnable;

/// Root of the EL2 translation table, for secondaries to switch their MMU on
/// with (read with the MMU off: cleaned to the point of coherency).
static EL2_ROOT: AtomicU64 = AtomicU64::new(0);
/// Physical counter at boot, every CPU's CNTVOFF_EL2.
static BOOT_CNT: AtomicU64 = AtomicU64::new(0);
/// Secondary CPUs that have come online.
static ONLINE: AtomicU64 = AtomicU64::new(0);

/// Records what secondaries need before they can take the monitor lock.
pub(super) fn publish(root: u64, boot_cnt: u64) {
    EL2_ROOT.store(root, Ordering::Relaxed);
    BOOT_CNT.store(boot_cnt, Ordering::Relaxed);
    cache::clean_to_poc(EL2_ROOT.as_ptr() as u64, 8);
    cache::clean_to_poc(BOOT_CNT.as_ptr() as u64, 8);
}

/// Starts every CPU of the device tree other than the boot CPU and waits
/// (up to a second) until they are online, so that domains start spread
/// over every CPU.
pub(super) fn start_secondaries() {
    let n = release_secondaries();
    let freq = crate::arch::timer::frequency();
    let until = crate::arch::timer::now() + freq;
    while ONLINE.load(Ordering::Acquire) < n && crate::arch::timer::now() < until {
        core::hint::spin_loop();
    }
    let up = ONLINE.load(Ordering::Acquire);
    if up < n {
        println!("hyp: {} of {} secondary cpu(s) came online in time", up, n);
    }
}

/// Releases the secondaries; how many.
fn release_secondaries() -> u64 {
    let mut g = MONITOR.lock();
    let Some(m) = g.as_mut() else { return 0 };
    let entry = arch::secondary_start as *const () as u64;
    for i in 1..m.cpus.len() {
        let mpidr = m.cpus[i].mpidr;
        // SAFETY: boot CPU only; secondaries read the table with their MMU
        // off, hence the clean below.
        unsafe {
            let t = core::ptr::addr_of_mut!(arch::cpu_mpidr);
            (*t)[i] = mpidr;
            cache::clean_to_poc(t as u64, core::mem::size_of_val(&*t) as u64);
        }
        match m.cpus[i].enable {
            CpuEnable::Psci => {
                let r = firmware::smc(firmware::PSCI_CPU_ON, mpidr, entry, 0) as i64;
                if r != 0 {
                    println!("hyp: cpu {i} (MPIDR {mpidr:#x}): PSCI CPU_ON failed ({r})");
                }
            }
            CpuEnable::SpinTable { release_addr } => {
                // Firmware's spin table (kernel8.img entered at EL2), and
                // boot.S's parking slot (every core entered the image).
                // SAFETY: the tree names this RAM word as the CPU's release
                // address; it is mapped at EL2 and reserved from the heap.
                unsafe { core::ptr::write_volatile(release_addr as *mut u64, entry) };
                cache::clean_to_poc(release_addr, 8);
                park_release(mpidr, entry);
                arch::sev();
            }
            CpuEnable::Unknown => {
                park_release(mpidr, entry);
                arch::sev();
            }
        }
    }
    m.cpus.len() as u64 - 1
}

/// Writes `entry` into boot.S's parking slot of `mpidr`.
fn park_release(mpidr: u64, entry: u64) {
    let slot = (mpidr & 0xff) as usize;
    if slot >= arch::MAX_CPUS {
        return;
    }
    // SAFETY: boot CPU only; a parked core polls its slot with its MMU off.
    unsafe {
        let t = core::ptr::addr_of_mut!(arch::secondary_entry);
        core::ptr::write_volatile(&mut (*t)[slot], entry);
        cache::clean_to_poc(t as u64, core::mem::size_of_val(&*t) as u64);
    }
}

/// Entered from boot.S's `secondary_start` on CPU `idx`, MMU off.
#[no_mangle]
extern "C" fn rust_secondary_main(idx: usize) -> ! {
    mmu::enable(EL2_ROOT.load(Ordering::Relaxed));
    el1::init_cpu();
    el1::set_cntvoff(BOOT_CNT.load(Ordering::Relaxed));
    stage2::init_cpu();
    let mut g = MONITOR.lock();
    let Some(m) = g.as_mut() else { super::hang() };
    online(m, idx);
    let run = m.resume(idx);
    drop(g);
    if run {
        // SAFETY: `resume` loaded a vCPU: TPIDR_EL2 points at its registers.
        unsafe { arch::guest_restore() }
    }
    idle(idx)
}

fn online(m: &mut Monitor, idx: usize) {
    m.gic.init_cpu();
    m.gic.enable(m.timer_intid);
    m.gic.enable(SGI_KICK);
    if let Some(c) = m.cpus.get_mut(idx) {
        c.online = true;
        c.resched = true;
        println!("hyp: cpu {} (MPIDR {:#x}) online", idx, c.mpidr);
    }
    ONLINE.fetch_add(1, Ordering::Release);
}
