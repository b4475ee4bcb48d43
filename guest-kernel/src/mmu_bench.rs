//! `bench=mmu`: the cost per descriptor of `mmu_update` in batches of 1,
//! 16 and 512, and of direct stores that trap (MMU off, so that they reach
//! the monitor's stage-2 trap). Prints `BENCH <name>_ticks <ticks>
//! <entries> <overhead ticks>`; the host script turns ticks into
//! instructions per entry.

use crate::console::println;
use crate::dt::BootInfo;
use crate::paging::{AddrSpace, Batch, Pool, HEAP};
use core::arch::asm;
use hypercall_abi::guest::{self, Hypervisor};
use hypercall_abi::mmu::{desc as d, MmuUpdate};

const VA: u64 = 0x4200_0000_0000;
const PAGE: u64 = 4096;
/// Entries per measurement: 8 passes over the 512 entries of one table.
const N: u64 = 4096;

fn ticks() -> u64 {
    let t: u64;
    // SAFETY: reading the virtual counter has no side effects.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) t, options(nomem, nostack)) };
    t
}

/// The descriptor pass `p` writes: alternately one of two read-only pages,
/// so every update changes the entry.
fn val(p: u64) -> u64 {
    d::page(HEAP + (200 + (p & 1)) * PAGE, d::NORMAL | d::RO_EL1)
}

/// The `bench=mmu` mode.
pub fn run(_: &BootInfo) -> ! {
    let mut pool = Pool::new();
    let mut b = Batch::new(Hypervisor);
    let setup = AddrSpace::new(&mut b, &mut pool).and_then(|mut s| {
        s.map_page(
            &mut b,
            &mut pool,
            VA,
            HEAP + 199 * PAGE,
            d::NORMAL | d::RO_EL1,
        )?;
        b.flush().map_err(|e| e.errno)?;
        s.lookup(VA, 3).ok_or(hypercall_abi::Errno::EINVAL)
    });
    let table = match setup {
        Ok(t) => t,
        Err(e) => {
            println!("guest: bench: setup failed: {e}");
            guest::crash()
        }
    };
    let mut reqs = [[MmuUpdate::default(); 512]; 2];
    for (p, pass) in reqs.iter_mut().enumerate() {
        for (i, r) in pass.iter_mut().enumerate() {
            *r = MmuUpdate::normal(table + 8 * i as u64, val(p as u64));
        }
    }
    for size in [1usize, 16, 512] {
        let t0 = ticks();
        let mut bad = 0;
        for p in 0..N / 512 {
            for chunk in reqs[(p & 1) as usize].chunks(size) {
                let (done, r) = guest::mmu_update(chunk);
                bad += (done != chunk.len() || r.is_err()) as u32;
            }
        }
        let t = ticks() - t0;
        if bad > 0 {
            println!("guest: bench: {bad} batches failed");
            guest::crash()
        }
        println!("BENCH pt_update_batched_{size}_ticks {t} {N} 0");
    }
    // Direct stores: the same loop into the table (each store traps) and
    // into an ordinary page (the loop's own cost).
    let plain = HEAP + 198 * PAGE;
    let stores = |base: u64| {
        let t0 = ticks();
        for p in 0..N / 512 {
            let v = val(p);
            for i in 0..512 {
                // SAFETY: a 64-bit store into guest RAM (MMU off): into the
                // table it traps and the monitor validates and emulates it.
                unsafe { crate::paging::store_table_entry(base + 8 * i, v) };
            }
        }
        ticks() - t0
    };
    let trapped = stores(table);
    let loop_only = stores(plain);
    // SAFETY: the table's last entry, read with the MMU off.
    let last = unsafe { core::ptr::read_volatile((table + 8 * 511) as *const u64) };
    if last != val(N / 512 - 1) {
        println!("guest: bench: trapped stores were not emulated ({last:#x})");
        guest::crash()
    }
    println!("BENCH pt_update_trapped_ticks {trapped} {N} {loop_only}");
    let f: u64;
    // SAFETY: reading the counter frequency has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack)) };
    println!("guest: cntfrq {f}");
    guest::poweroff()
}
