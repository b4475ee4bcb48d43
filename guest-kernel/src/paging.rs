//! Address spaces built only through the monitor's PV MMU (`mmu_update`
//! batches and `mmuext_op`), and the `mmu` mode: the kernel maps itself,
//! turns its MMU on, then creates, runs, switches between and destroys
//! EL0 task address spaces.
//!
//! Layout in guest RAM (at least 16 MiB at 0x4000_0000): the kernel image
//! from 0x4008_0000; table frames in [`POOL`] (mapped read-only with one
//! 2 MiB block, as tables must be); kernel heap pages in [`HEAP`]; the
//! device tree in the last 2 MiB (read-only block). TTBR0 holds the
//! identity map (shared with every task through one level-1 table), TTBR1
//! an alias of the first heap pages at [`HIGH`].

use crate::console::println;
use crate::dt::BootInfo;
use crate::tasks;
use core::arch::asm;
use hypercall_abi::guest::{self, Hypervisor};
use hypercall_abi::mmu::{self, desc as d, MmuBatch, MmuUpdate};
use hypercall_abi::Errno;

/// Frames for translation tables.
pub const POOL: u64 = 0x4060_0000;
const POOL_FRAMES: u64 = 512;
/// Kernel heap: 2 MiB of pages, mapped read-write.
pub const HEAP: u64 = 0x4080_0000;
const HEAP_PAGES: u64 = 512;
/// The device tree's 2 MiB, mapped read-only.
const DTB_BLOCK: u64 = 0x40e0_0000;
/// TTBR1 alias of the first [`HIGH_PAGES`] heap pages.
pub const HIGH: u64 = 0xffff_0000_0000_0000;
const HIGH_PAGES: u64 = 16;
/// Where tasks live (level-0 index 1, so the kernel's level-1 table can be
/// shared at index 0).
pub const TASK_VA: u64 = 0x0000_0080_0000_0000;
const PAGE: u64 = 4096;

/// A batch of updates sent 64 at a time.
pub type Batch = MmuBatch<Hypervisor, 64>;

/// The frames of [`POOL`]: handed out in order, recycled when freed.
pub struct Pool {
    next: u64,
    free: [u64; 64],
    nfree: usize,
}

impl Pool {
    /// Nothing allocated.
    pub const fn new() -> Self {
        Self {
            next: 0,
            free: [0; 64],
            nfree: 0,
        }
    }
    /// A zeroed table frame (fresh, or freed after all its entries were
    /// cleared).
    pub fn alloc(&mut self) -> Result<u64, Errno> {
        if self.nfree > 0 {
            self.nfree -= 1;
            return Ok(self.free[self.nfree]);
        }
        if self.next == POOL_FRAMES {
            return Err(Errno::ENOMEM);
        }
        self.next += 1;
        Ok(POOL + (self.next - 1) * PAGE)
    }
    /// Returns a frame whose entries are all clear.
    pub fn free(&mut self, f: u64) {
        if self.nfree < self.free.len() {
            self.free[self.nfree] = f;
            self.nfree += 1;
        }
    }
}

fn err(e: mmu::BatchError) -> Errno {
    e.errno
}

/// Bytes of VA a level-`level` table maps.
const fn span(level: u8) -> u64 {
    1 << (12 + 9 * (4 - level as u32))
}

const fn va_base(va: u64, level: u8) -> u64 {
    va & !(span(level) - 1) & 0x0000_ffff_ffff_ffff
}

/// One address space: a pinned level-0 root and the tables under it.
pub struct AddrSpace {
    /// The root (guest-physical).
    pub root: u64,
    /// Tables by (level, VA base, address); `owned` false for shared ones.
    tables: [(u8, u64, u64, bool); 24],
    ntables: usize,
    /// Entries set, so that they can be cleared again (if `tracked`).
    entries: [u64; 32],
    nentries: usize,
    tracked: bool,
}

impl AddrSpace {
    /// A new, empty, pinned root.
    pub fn new(b: &mut Batch, pool: &mut Pool) -> Result<Self, Errno> {
        let root = pool.alloc()?;
        mmu::pin(b.submitter(), root, 0)?;
        Ok(Self {
            root,
            tables: [(0, 0, 0, false); 24],
            ntables: 0,
            entries: [0; 32],
            nentries: 0,
            tracked: true,
        })
    }

    /// The table of `level` that covers `va`, if there is one.
    pub fn lookup(&self, va: u64, level: u8) -> Option<u64> {
        if level == 0 {
            return Some(self.root);
        }
        let base = va_base(va, level);
        self.tables[..self.ntables]
            .iter()
            .find(|t| t.0 == level && t.1 == base)
            .map(|t| t.2)
    }

    fn set(&mut self, b: &mut Batch, ptr: u64, val: u64) -> Result<(), Errno> {
        b.push(MmuUpdate::normal(ptr, val)).map_err(err)?;
        if self.nentries < self.entries.len() {
            self.entries[self.nentries] = ptr;
            self.nentries += 1;
        } else {
            self.tracked = false;
        }
        Ok(())
    }

    fn remember(&mut self, level: u8, va: u64, t: u64, owned: bool) -> Result<(), Errno> {
        let slot = self.tables.get_mut(self.ntables).ok_or(Errno::ENOMEM)?;
        *slot = (level, va_base(va, level), t, owned);
        self.ntables += 1;
        Ok(())
    }

    /// The level-`level` table covering `va`, linked in (and its parents)
    /// if it did not exist yet.
    fn table(&mut self, b: &mut Batch, pool: &mut Pool, va: u64, level: u8) -> Result<u64, Errno> {
        if let Some(t) = self.lookup(va, level) {
            return Ok(t);
        }
        let parent = self.table(b, pool, va, level - 1)?;
        let t = pool.alloc()?;
        self.remember(level, va, t, true)?;
        self.set(b, parent + 8 * d::index(va, level as u32 - 1), d::table(t))?;
        Ok(t)
    }

    /// Queues a page mapping `va` to the frame `pa`.
    pub fn map_page(
        &mut self,
        b: &mut Batch,
        pool: &mut Pool,
        va: u64,
        pa: u64,
        attrs: u64,
    ) -> Result<(), Errno> {
        let t = self.table(b, pool, va, 3)?;
        self.set(b, t + 8 * d::index(va, 3), d::page(pa, attrs))
    }

    /// Queues a 2 MiB block mapping `va` to `pa`.
    pub fn map_block(
        &mut self,
        b: &mut Batch,
        pool: &mut Pool,
        va: u64,
        pa: u64,
        attrs: u64,
    ) -> Result<(), Errno> {
        let t = self.table(b, pool, va, 2)?;
        self.set(b, t + 8 * d::index(va, 2), d::block(pa, attrs))
    }

    /// Queues a link to another space's level-`level` table for `va`.
    pub fn share(
        &mut self,
        b: &mut Batch,
        pool: &mut Pool,
        va: u64,
        level: u8,
        table: u64,
    ) -> Result<(), Errno> {
        let parent = self.table(b, pool, va, level - 1)?;
        self.remember(level, va, table, false)?;
        self.set(
            b,
            parent + 8 * d::index(va, level as u32 - 1),
            d::table(table),
        )
    }

    /// Clears every entry in one batch, unpins the root, and gives the
    /// tables back to the pool. The space must not be a TTBR base.
    pub fn destroy(self, b: &mut Batch, pool: &mut Pool) -> Result<(), Errno> {
        if !self.tracked {
            return Err(Errno::EINVAL);
        }
        for &e in self.entries[..self.nentries].iter().rev() {
            b.push(MmuUpdate::normal(e, 0)).map_err(err)?;
        }
        b.flush().map_err(err)?;
        mmu::unpin(b.submitter(), self.root)?;
        for t in &self.tables[..self.ntables] {
            if t.3 {
                pool.free(t.2);
            }
        }
        pool.free(self.root);
        Ok(())
    }

    /// Updates queued for this space so far.
    pub fn updates(&self) -> usize {
        self.nentries
    }
}

fn image_range() -> (u64, u64) {
    extern "C" {
        static __image_start: u8;
        static __image_end: u8;
    }
    (
        core::ptr::addr_of!(__image_start) as u64,
        core::ptr::addr_of!(__image_end) as u64,
    )
}

/// Builds the kernel's TTBR0 space (identity map of the image, heap, table
/// pool and device tree) and its TTBR1 space (the heap alias).
pub fn kernel_spaces(b: &mut Batch, pool: &mut Pool) -> Result<(AddrSpace, AddrSpace), Errno> {
    let (start, end) = image_range();
    if end > POOL {
        return Err(Errno::ENOMEM);
    }
    let mut k = AddrSpace::new(b, pool)?;
    for pa in (start..end).step_by(PAGE as usize) {
        k.map_page(b, pool, pa, pa, d::NORMAL | d::UXN)?;
    }
    for i in 0..HEAP_PAGES {
        let pa = HEAP + i * PAGE;
        k.map_page(b, pool, pa, pa, d::NORMAL | d::RW_EL1)?;
    }
    k.map_block(b, pool, POOL, POOL, d::NORMAL | d::RO_EL1)?;
    k.map_block(b, pool, DTB_BLOCK, DTB_BLOCK, d::NORMAL | d::RO_EL1)?;
    let mut h = AddrSpace::new(b, pool)?;
    for i in 0..HIGH_PAGES {
        h.map_page(
            b,
            pool,
            HIGH + i * PAGE,
            HEAP + i * PAGE,
            d::NORMAL | d::RW_EL1,
        )?;
    }
    b.flush().map_err(err)?;
    Ok((k, h))
}

/// Writes an EL1 translation register (trapped and checked by the monitor).
macro_rules! msr_el1 {
    ($reg:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the monitor checks every write of this register (TVM);
        // the values used keep this kernel's own mappings in place.
        unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) v, options(nostack)) }
    }};
}
pub(crate) use msr_el1;

/// Reads a system register.
macro_rules! mrs_el1 {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading a system register has no side effects.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack)) };
        v
    }};
}
pub(crate) use mrs_el1;

/// A direct store of a descriptor: one `str` of a 64-bit register without
/// writeback, the only form the monitor emulates when it hits a protected
/// table (the syndrome then names the register).
///
/// # Safety
///
/// `addr` must be an 8-byte aligned address of this guest's RAM that the
/// current translation lets it store to (or that traps to the monitor).
pub unsafe fn store_table_entry(addr: u64, val: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { asm!("str {v}, [{a}]", v = in(reg) val, a = in(reg) addr, options(nostack)) };
}

/// SCTLR_EL1 bits M, C and I.
pub const SCTLR_MMU_CACHES: u64 = 1 | 1 << 2 | 1 << 12;

/// Invalidates this vCPU's TLB entries (EL1 may do that itself).
pub fn local_tlb_flush() {
    // SAFETY: TLB maintenance only.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
}

/// Loads MAIR, TCR, TTBR0 (by hypercall), TTBR1 (by a trapped `msr`) and
/// turns the MMU and caches on.
pub fn enable(k: &AddrSpace, h: &AddrSpace) -> Result<(), Errno> {
    msr_el1!("mair_el1", mmu::MAIR_EL1_PV);
    msr_el1!("tcr_el1", mmu::TCR_EL1_PV);
    mmu::new_base(&mut Hypervisor, k.root, 0, false)?;
    msr_el1!("ttbr1_el1", h.root);
    local_tlb_flush();
    let sctlr = mrs_el1!("sctlr_el1");
    msr_el1!("sctlr_el1", sctlr | SCTLR_MMU_CACHES);
    Ok(())
}

/// Copies the task code into `frame` and makes it visible to instruction
/// fetch.
fn install_code(frame: u64) {
    let code = tasks::code();
    for (i, &byte) in code.iter().enumerate() {
        // SAFETY: `frame` is a heap page, mapped read-write for EL1.
        unsafe { core::ptr::write_volatile((frame + i as u64) as *mut u8, byte) };
    }
    // SAFETY: cache maintenance only.
    unsafe {
        asm!(
            "dc cvau, {0}", "dsb ish", "ic ialluis", "dsb ish", "isb",
            in(reg) frame, options(nostack)
        )
    };
}

fn check(what: core::fmt::Arguments, ok: bool) -> bool {
    println!("guest: mmu: {what}: {}", if ok { "ok" } else { "FAIL" });
    ok
}

const NTASKS: usize = 3;

/// The `mmu` mode.
pub fn run(info: &BootInfo) -> ! {
    match run_inner(info) {
        Ok(true) => {
            println!("guest: mmu: done");
            guest::poweroff()
        }
        Ok(false) => guest::crash(),
        Err(e) => {
            println!("guest: mmu: FAIL: {e}");
            guest::crash()
        }
    }
}

fn run_inner(info: &BootInfo) -> Result<bool, Errno> {
    if info.ram_size < 16 << 20 {
        println!("guest: mmu: needs at least 16 MiB of RAM");
        return Ok(false);
    }
    let mut pool = Pool::new();
    let mut b = Batch::new(Hypervisor);
    let (k, h) = kernel_spaces(&mut b, &mut pool)?;
    let (sent, calls) = b.stats();
    println!(
        "guest: mmu: kernel address space: {} updates in {} mmu_update calls, {} tables",
        sent, calls, pool.next
    );
    enable(&k, &h)?;
    let mut ok = check(
        format_args!("MMU on, running from the kernel's own tables"),
        mrs_el1!("sctlr_el1") & 1 == 1,
    );
    // The TTBR1 alias and the identity map reach the same frame.
    let magic = 0x5eed_0000_1234_abcd;
    // SAFETY: heap page 0, mapped read-write at both addresses.
    let seen = unsafe {
        core::ptr::write_volatile(HEAP as *mut u64, magic);
        core::ptr::read_volatile(HIGH as *const u64)
    };
    ok &= check(format_args!("TTBR1 alias of the heap"), seen == magic);

    // Task address spaces: the kernel's level-1 table shared at index 0
    // (EL1-only mappings), code and stack pages of the task's own.
    let k_l1 = k.lookup(0, 1).ok_or(Errno::EINVAL)?;
    let mut spaces: [Option<AddrSpace>; NTASKS] = [None, None, None];
    for (i, slot) in spaces.iter_mut().enumerate() {
        let (code, stack) = (
            HEAP + (16 + 2 * i as u64) * PAGE,
            HEAP + (17 + 2 * i as u64) * PAGE,
        );
        install_code(code);
        let mut t = AddrSpace::new(&mut b, &mut pool)?;
        t.share(&mut b, &mut pool, 0, 1, k_l1)?;
        t.map_page(&mut b, &mut pool, TASK_VA, code, d::NORMAL | d::RX_EL0)?;
        t.map_page(
            &mut b,
            &mut pool,
            TASK_VA + PAGE,
            stack,
            d::NORMAL | d::RW_EL0,
        )?;
        b.flush().map_err(err)?;
        println!(
            "guest: mmu: task {i}: address space at {:#x}, {} updates in one batch",
            t.root,
            t.updates()
        );
        *slot = Some(t);
    }
    for round in 0..2u64 {
        for (i, t) in spaces.iter().enumerate() {
            let t = t.as_ref().ok_or(Errno::EINVAL)?;
            mmu::new_base(&mut Hypervisor, t.root, i as u16 + 1, false)?;
            let arg = 100 * (round + 1) + i as u64;
            let exit = tasks::run(TASK_VA, TASK_VA + 2 * PAGE, arg);
            let good = exit.esr >> 26 == 0x15 && exit.x0 == 2 * arg;
            ok &= check(
                format_args!("task {i} round {round}: back by svc with x0 = {}", exit.x0),
                good,
            );
        }
    }
    mmu::new_base(&mut Hypervisor, k.root, 0, false)?;
    // Each task wrote its argument to its own stack page at the same VA.
    for i in 0..NTASKS as u64 {
        let stack = HEAP + (17 + 2 * i) * PAGE;
        // SAFETY: a heap page, mapped read-write for EL1.
        let v = unsafe { core::ptr::read_volatile((stack + PAGE - 16) as *const u64) };
        ok &= check(
            format_args!("task stacks are separate frames"),
            v == 200 + i,
        );
    }
    // Destroy them: clear every entry in one batch each, unpin, flush.
    let first_l3 = spaces[0]
        .as_ref()
        .and_then(|t| t.lookup(TASK_VA, 3))
        .ok_or(Errno::EINVAL)?;
    for t in spaces.iter_mut() {
        if let Some(t) = t.take() {
            t.destroy(&mut b, &mut pool)?;
        }
    }
    mmu::flush_tlb(&mut Hypervisor)?;
    // A released table is ordinary memory again: it can be pinned as
    // another level and released.
    let again =
        mmu::pin(&mut Hypervisor, first_l3, 1).and_then(|_| mmu::unpin(&mut Hypervisor, first_l3));
    ok &= check(
        format_args!("task address spaces destroyed, their tables free again"),
        again.is_ok(),
    );
    let (sent, calls) = b.stats();
    println!("guest: mmu: {sent} updates in {calls} mmu_update calls in all");
    Ok(ok)
}
