//! `test=mmu`: every operation the PV MMU forbids, each checked for its
//! documented error, for how much of its batch was done, and for leaving
//! the tables as they were. Runs with the MMU off (so that direct stores to
//! tables reach the monitor's stage-2 trap), then tries to turn it on badly.

use crate::console::println;
use crate::dt::BootInfo;
use crate::exceptions::expect;
use crate::paging::{msr_el1, AddrSpace, Batch, Pool, HEAP, POOL, SCTLR_MMU_CACHES};
use hypercall_abi::guest::{self, Hypervisor};
use hypercall_abi::mmu::{self, desc as d, MmuUpdate, MmuextOp, MMU_BATCH_MAX};
use hypercall_abi::multicall::MulticallEntry;
use hypercall_abi::{nr, Errno};

const VA: u64 = 0x4100_0000_0000;
const PAGE: u64 = 4096;

fn ro(pa: u64) -> u64 {
    d::page(pa, d::NORMAL | d::RO_EL1)
}
fn rw(pa: u64) -> u64 {
    d::page(pa, d::NORMAL | d::RW_EL1)
}
fn peek(ipa: u64) -> u64 {
    // SAFETY: guest RAM with the MMU off; reads are always allowed.
    unsafe { core::ptr::read_volatile(ipa as *const u64) }
}
fn name(r: Result<(), Errno>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(e) => e.name(),
    }
}

struct Checks {
    passed: u32,
    total: u32,
}

impl Checks {
    fn check(&mut self, what: &str, got: core::fmt::Arguments, ok: bool) {
        self.total += 1;
        if ok {
            self.passed += 1;
        }
        println!(
            "guest: check {what}: got {got} {}",
            if ok { "ok" } else { "FAIL" }
        );
    }
    /// A batch of updates: the expected error and number done.
    fn batch(&mut self, what: &str, reqs: &[MmuUpdate], want: (usize, Result<(), Errno>)) {
        let (done, r) = guest::mmu_update(reqs);
        let n = reqs.len();
        self.check(
            what,
            format_args!("{}, done {done}/{n}", name(r)),
            (done, r) == want,
        );
    }
}

/// The `test=mmu` mode.
pub fn run(info: &BootInfo) -> ! {
    let mut c = Checks {
        passed: 0,
        total: 0,
    };
    match checks(info, &mut c) {
        Ok(()) => {}
        Err(e) => println!("guest: check setup: FAIL ({e})"),
    }
    println!("guest: checks passed {}/{}", c.passed, c.total);
    if c.passed == c.total && c.total > 0 {
        guest::poweroff()
    } else {
        guest::crash()
    }
}

fn checks(info: &BootInfo, c: &mut Checks) -> Result<(), Errno> {
    let mut pool = Pool::new();
    let mut b = Batch::new(Hypervisor);
    // A tree R -> A -> B -> C mapping VA to a heap page, pinned at R.
    let data = HEAP + 100 * PAGE;
    let (e1, e2) = (HEAP + 101 * PAGE, HEAP + 102 * PAGE);
    let mut s = AddrSpace::new(&mut b, &mut pool)?;
    s.map_page(&mut b, &mut pool, VA, data, d::NORMAL | d::RW_EL1)?;
    b.flush().map_err(|e| e.errno)?;
    let (r, a) = (s.root, s.lookup(VA, 1).ok_or(Errno::EINVAL)?);
    let (bt, ct) = (
        s.lookup(VA, 2).ok_or(Errno::EINVAL)?,
        s.lookup(VA, 3).ok_or(Errno::EINVAL)?,
    );
    let slot = |i: u64| ct + 8 * i;

    // A table mapped writable, in the middle of a batch: the first request
    // is done, the bad one and the rest are not.
    c.batch(
        "map_table_writable",
        &[
            MmuUpdate::normal(slot(1), ro(e1)),
            MmuUpdate::normal(slot(2), rw(ct)),
            MmuUpdate::normal(slot(3), ro(e2)),
        ],
        (1, Err(Errno::EPERM)),
    );
    c.check(
        "map_table_writable_rest_untouched",
        format_args!(
            "{:#x} {:#x} {:#x}",
            peek(slot(1)),
            peek(slot(2)),
            peek(slot(3))
        ),
        peek(slot(1)) == ro(e1) && peek(slot(2)) == 0 && peek(slot(3)) == 0,
    );
    c.batch(
        "map_foreign_frame",
        &[MmuUpdate::normal(slot(2), ro(0x8000_0000))],
        (0, Err(Errno::EPERM)),
    );
    let beyond = info.ram_end() as u64;
    c.batch(
        "map_frame_past_ram_end",
        &[MmuUpdate::normal(slot(2), ro(beyond))],
        (0, Err(Errno::EPERM)),
    );
    c.batch(
        "reserved_bit",
        &[MmuUpdate::normal(slot(2), ro(e1) | d::CONTIGUOUS)],
        (0, Err(Errno::EINVAL)),
    );
    c.batch(
        "writable_block_over_tables",
        &[MmuUpdate::normal(
            bt + 8 * 5,
            d::block(POOL, d::NORMAL | d::RW_EL1),
        )],
        (0, Err(Errno::EPERM)),
    );
    c.batch(
        "update_outside_ram",
        &[MmuUpdate::normal(0x8000_0000, 0)],
        (0, Err(Errno::EPERM)),
    );

    // Bases and pins.
    let r1 = mmu::new_base(&mut Hypervisor, r, 9, false);
    c.check(
        "new_base_pinned_root",
        format_args!("{}", name(r1)),
        r1.is_ok(),
    );
    let r2 = mmu::unpin(&mut Hypervisor, r);
    c.check(
        "unpin_live_base",
        format_args!("{}", name(r2)),
        r2 == Err(Errno::EBUSY),
    );
    let r3 = mmu::new_base(&mut Hypervisor, data, 0, false);
    c.check(
        "ttbr_unvalidated_table",
        format_args!("{}", name(r3)),
        r3 == Err(Errno::EINVAL),
    );
    let r4 = mmu::new_base(&mut Hypervisor, a, 0, true);
    c.check(
        "ttbr_level1_table",
        format_args!("{}", name(r4)),
        r4 == Err(Errno::EINVAL),
    );
    let r5 = mmu::pin(&mut Hypervisor, data, 3);
    c.check(
        "pin_writable_frame",
        format_args!("{}", name(r5)),
        r5 == Err(Errno::EPERM),
    );
    let unvalidated = pool.alloc()?;
    let esr = expect(|| msr_el1!("ttbr1_el1", unvalidated));
    c.check(
        "msr_ttbr_unvalidated_table",
        format_args!("ESR {:#x}", esr.unwrap_or(0)),
        esr.is_some_and(|e| e >> 26 == 0),
    );

    // Request vectors: too many, and one that runs out of the guest's memory.
    let mut done: u32 = 0xa5a5;
    let one = [MmuUpdate::normal(slot(4), ro(e1))];
    // SAFETY: the monitor refuses the count before reading anything.
    let ret = unsafe {
        hypercall_abi::hvc::hypercall4(
            nr::MMU_UPDATE,
            one.as_ptr() as u64,
            MMU_BATCH_MAX as u64 + 1,
            core::ptr::from_mut(&mut done) as u64,
            mmu::DOMID_SELF,
        )
    };
    c.check(
        "request_count_overflow",
        format_args!("{ret}, pdone {done:#x}"),
        ret == Errno::EINVAL.to_raw() && done == 0xa5a5 && peek(slot(4)) == 0,
    );
    let at = info.ram_end() as u64 - 32;
    let two = [
        MmuUpdate::normal(slot(4), ro(e1)),
        MmuUpdate::normal(slot(5), ro(e2)),
    ];
    for (i, u) in two.iter().enumerate() {
        // SAFETY: the last 32 bytes of RAM, above the device tree, unused.
        unsafe {
            core::ptr::write_volatile((at + 16 * i as u64) as *mut u64, u.ptr);
            core::ptr::write_volatile((at + 16 * i as u64 + 8) as *mut u64, u.val);
        }
    }
    done = 0;
    // SAFETY: the vector's first two entries are valid; the third lies
    // past the end of RAM, which the monitor reports.
    let ret = unsafe {
        hypercall_abi::hvc::hypercall4(
            nr::MMU_UPDATE,
            at,
            3,
            core::ptr::from_mut(&mut done) as u64,
            mmu::DOMID_SELF,
        )
    };
    c.check(
        "request_vector_leaves_memory",
        format_args!("{ret}, done {done}/3"),
        ret == Errno::EFAULT.to_raw() && done == 2 && peek(slot(5)) == ro(e2),
    );

    // Direct stores into a protected table (MMU off: they reach stage 2).
    let good = ro(e2);
    // SAFETY: a 64-bit store into the level-3 table: it traps to the
    // monitor, which validates and emulates it.
    unsafe { crate::paging::store_table_entry(slot(6), good) };
    c.check(
        "direct_store_valid",
        format_args!("{:#x}", peek(slot(6))),
        peek(slot(6)) == good,
    );
    let esr = expect(|| {
        // SAFETY: as above; this descriptor is refused and the monitor
        // injects a permission fault, which `expect` catches.
        unsafe { crate::paging::store_table_entry(slot(7), rw(ct)) }
    });
    c.check(
        "direct_store_bad_descriptor",
        format_args!("ESR {:#x}, entry {:#x}", esr.unwrap_or(0), peek(slot(7))),
        esr.is_some_and(|e| e >> 26 == 0x25 && e & 0x3f == 0x0f) && peek(slot(7)) == 0,
    );

    // Stores the syndrome does not describe, decoded by the monitor: a pair
    // (`stp`), a pair with a refused second descriptor (all or nothing),
    // and a store with post-index writeback.
    let (p1, p2) = (ro(e1), ro(e2));
    // SAFETY: a 16-byte store into the level-3 table (MMU off): it traps,
    // the monitor validates and emulates both descriptors.
    unsafe {
        core::arch::asm!("stp {a}, {b}, [{p}]", a = in(reg) p1, b = in(reg) p2, p = in(reg) slot(9), options(nostack))
    };
    c.check(
        "direct_store_pair",
        format_args!("{:#x} {:#x}", peek(slot(9)), peek(slot(10))),
        peek(slot(9)) == p1 && peek(slot(10)) == p2,
    );
    let esr = expect(|| {
        // SAFETY: as above; the second descriptor maps a table writable, so
        // the monitor refuses the pair and injects a permission fault.
        unsafe {
            core::arch::asm!("stp {a}, {b}, [{p}]", a = in(reg) p1, b = in(reg) rw(ct), p = in(reg) slot(11), options(nostack))
        }
    });
    c.check(
        "direct_store_pair_refused",
        format_args!(
            "ESR {:#x}, entries {:#x} {:#x}",
            esr.unwrap_or(0),
            peek(slot(11)),
            peek(slot(12))
        ),
        esr.is_some_and(|e| e >> 26 == 0x25 && e & 0x3f == 0x0f)
            && peek(slot(11)) == 0
            && peek(slot(12)) == 0,
    );
    let mut base = slot(13);
    // SAFETY: as above, one descriptor; `base` moves on by 8.
    unsafe {
        core::arch::asm!("str {v}, [{p}], #8", v = in(reg) p2, p = inout(reg) base, options(nostack))
    };
    c.check(
        "direct_store_post_index",
        format_args!("{:#x}, base +{}", peek(slot(13)), base - slot(13)),
        peek(slot(13)) == p2 && base == slot(14),
    );

    // Memory attributes: index 1 of MAIR_EL1_PV is Device, which may not
    // be mapped executable; nor may MAIR turn index 0 into Device while
    // tables are in use.
    let dev_exec = d::page(e1, d::AP_RO | d::AF | 1 << d::ATTR_SHIFT | d::UXN);
    c.batch(
        "device_memory_executable",
        &[MmuUpdate::normal(slot(15), dev_exec)],
        (0, Err(Errno::EINVAL)),
    );
    c.batch(
        "device_memory_never_executable",
        &[MmuUpdate::normal(slot(15), dev_exec | d::PXN)],
        (1, Ok(())),
    );
    let esr = expect(|| msr_el1!("mair_el1", 0));
    c.check(
        "msr_mair_class_change_with_tables",
        format_args!("ESR {:#x}", esr.unwrap_or(0)),
        esr.is_some_and(|e| e >> 26 == 0),
    );

    // A batch longer than the monitor runs in one trap: continued
    // transparently (the guest sees one call that did them all).
    let vec = HEAP + 112 * PAGE;
    let n = MMU_BATCH_MAX as u64;
    for i in 0..n {
        let u = MmuUpdate::normal(slot(16 + i % 496), ro(if i < 512 { e1 } else { e2 }));
        // SAFETY: heap pages 112..116, unused by anything else.
        unsafe {
            core::ptr::write_volatile((vec + 16 * i) as *mut u64, u.ptr);
            core::ptr::write_volatile((vec + 16 * i + 8) as *mut u64, u.val);
        }
    }
    done = 0;
    // SAFETY: `n` valid requests at `vec`; `done` is written.
    let ret = unsafe {
        hypercall_abi::hvc::hypercall4(
            nr::MMU_UPDATE,
            vec,
            n,
            core::ptr::from_mut(&mut done) as u64,
            mmu::DOMID_SELF,
        )
    };
    let all = (16..512).all(|k| peek(slot(k)) == ro(e2));
    c.check(
        "long_batch_continued",
        format_args!("{ret}, done {done}/{n}, entries {all}"),
        ret == 0 && done as u64 == n && all,
    );
    let clear: [MmuUpdate; 496] =
        core::array::from_fn(|k| MmuUpdate::normal(slot(16 + k as u64), 0));
    let (k, rc) = guest::mmu_update(&clear);
    c.check(
        "long_batch_cleared",
        format_args!("{k}/496 {}", name(rc)),
        k == 496 && rc.is_ok(),
    );

    // A multicall: each entry's own result.
    let bad = [MmuUpdate::normal(slot(8), ro(0x9000_0000))];
    let flush = [MmuextOp::new(mmu::MMUEXT_TLB_FLUSH_LOCAL, 0, 0)];
    let mut calls = [
        MulticallEntry::new(
            nr::MMU_UPDATE,
            [bad.as_ptr() as u64, 1, 0, mmu::DOMID_SELF, 0, 0],
        ),
        MulticallEntry::new(
            nr::MMUEXT_OP,
            [flush.as_ptr() as u64, 1, 0, mmu::DOMID_SELF, 0, 0],
        ),
        MulticallEntry::new(nr::MULTICALL, [0; 6]),
    ];
    let r6 = guest::multicall(&mut calls);
    c.check(
        "multicall_results",
        format_args!(
            "{} [{}, {}, {}]",
            name(r6),
            calls[0].result,
            calls[1].result,
            calls[2].result
        ),
        r6.is_ok() && calls[0].result == -1 && calls[1].result == 0 && calls[2].result == -38,
    );

    // Translation registers the monitor refuses.
    let esr = expect(|| msr_el1!("tcr_el1", (mmu::TCR_EL1_PV & !0x3f) | 25));
    c.check(
        "msr_tcr_39bit",
        format_args!("ESR {:#x}", esr.unwrap_or(0)),
        esr.is_some(),
    );
    let esr = expect(|| msr_el1!("mair_el1", 0x44));
    c.check(
        "msr_mair_noncacheable",
        format_args!("ESR {:#x}", esr.unwrap_or(0)),
        esr.is_some(),
    );
    let sctlr = crate::paging::mrs_el1!("sctlr_el1");
    let esr = expect(|| msr_el1!("sctlr_el1", sctlr | SCTLR_MMU_CACHES));
    c.check(
        "mmu_on_without_tcr",
        format_args!("ESR {:#x}", esr.unwrap_or(0)),
        esr.is_some(),
    );

    // Nothing refused left a reference behind: tear the tree down, then
    // every one of its frames can take any type again.
    let mut idle = AddrSpace::new(&mut b, &mut pool)?;
    idle.map_page(&mut b, &mut pool, VA, e1, d::NORMAL | d::RO_EL1)?;
    b.flush().map_err(|e| e.errno)?;
    mmu::new_base(&mut Hypervisor, idle.root, 0, false)?;
    let clear = [1, 4, 5, 6, 9, 10, 13, 15].map(|i| MmuUpdate::normal(slot(i), 0));
    let (n, r7) = guest::mmu_update(&clear);
    let r8 = s.destroy(&mut b, &mut pool);
    let free_again = [(r, 3), (a, 3), (bt, 3), (ct, 2), (data, 3)]
        .iter()
        .all(|&(f, l)| {
            mmu::pin(&mut Hypervisor, f, l)
                .and_then(|_| mmu::unpin(&mut Hypervisor, f))
                .is_ok()
        });
    c.check(
        "state_unchanged_by_refusals",
        format_args!(
            "clear {n}/{} {}, destroy {}, frames free again {free_again}",
            clear.len(),
            name(r7),
            name(r8)
        ),
        n == clear.len() && r7.is_ok() && r8.is_ok() && free_again,
    );
    Ok(())
}
