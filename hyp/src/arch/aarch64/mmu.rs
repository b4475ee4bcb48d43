//! The monitor's own EL2 stage-1 translation: an identity map of RAM
//! (text read-only and executable, everything else never executable) and of
//! the devices the monitor drives, built from a static pool before there is
//! a heap, then switched on with the caches.

use crate::memmap::Range;
use crate::pagetable::{Attrs, MapError, MemType, PageTable, Regime, TableMemory, PAGE_SIZE};
use core::cell::UnsafeCell;

const POOL_TABLES: usize = 48;

#[repr(C, align(4096))]
struct Pool([[u64; 512]; POOL_TABLES]);

/// Tables for the EL2 map, in .bss.
pub struct BootTables {
    pool: UnsafeCell<Pool>,
    used: UnsafeCell<usize>,
}

// SAFETY: used by the boot CPU only, before any other CPU runs Rust code.
unsafe impl Sync for BootTables {}

/// The one pool.
pub static BOOT_TABLES: BootTables = BootTables {
    pool: UnsafeCell::new(Pool([[0; 512]; POOL_TABLES])),
    used: UnsafeCell::new(0),
};

/// Access to the pool as `TableMemory`.
pub struct PoolMemory(&'static BootTables);

impl PoolMemory {
    /// The boot pool. Only the boot CPU calls this, once.
    pub fn take() -> Self {
        Self(&BOOT_TABLES)
    }
    fn table(&self, pa: u64) -> *mut u64 {
        pa as *mut u64
    }
}

impl TableMemory for PoolMemory {
    fn alloc_table(&mut self) -> Option<u64> {
        // SAFETY: single-threaded boot; `used` and the pool are ours alone.
        unsafe {
            let used = &mut *self.0.used.get();
            if *used == POOL_TABLES {
                return None;
            }
            let t = (*self.0.pool.get()).0[*used].as_mut_ptr() as u64;
            *used += 1;
            Some(t)
        }
    }
    fn read(&self, table: u64, idx: usize) -> u64 {
        // SAFETY: `table` is one of the pool's tables, idx < 512.
        unsafe { self.table(table).add(idx).read_volatile() }
    }
    fn write(&mut self, table: u64, idx: usize, val: u64) {
        // SAFETY: as in `read`.
        unsafe { self.table(table).add(idx).write_volatile(val) }
    }
}

/// Maps device registers, page by page, skipping pages already mapped (two
/// devices may share a page).
pub fn map_device(
    pt: &PageTable,
    mem: &mut PoolMemory,
    base: u64,
    size: u64,
) -> Result<(), MapError> {
    let start = base & !(PAGE_SIZE - 1);
    let end = (base + size).div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let mut a = start;
    while a < end {
        match pt.map(mem, a, a, PAGE_SIZE, Attrs::DEVICE) {
            Ok(()) | Err(MapError::AlreadyMapped) => {}
            Err(e) => return Err(e),
        }
        a += PAGE_SIZE;
    }
    Ok(())
}

/// Maps RAM: the monitor's text read-only and executable, the rest of its
/// image and all other RAM read-write and never executable.
pub fn map_ram(
    pt: &PageTable,
    mem: &mut PoolMemory,
    ram: &[Range],
    image: (u64, u64, u64),
) -> Result<(), MapError> {
    let (start, text_end, end) = image;
    let img = Range { start, end };
    let rest =
        crate::memmap::free_ranges(ram, &[img], PAGE_SIZE).map_err(|_| MapError::NoMemory)?;
    for r in &rest {
        pt.map(mem, r.start, r.start, r.size(), Attrs::RW)?;
    }
    let text = Attrs {
        mem: MemType::Normal,
        write: false,
        exec: true,
    };
    pt.map(mem, start, start, text_end - start, text)?;
    let mut guards: heapless::Vec<Range, { super::MAX_CPUS }> = heapless::Vec::new();
    for g in super::stack_guards() {
        let _ = guards.push(Range {
            start: g,
            end: g + PAGE_SIZE,
        });
    }
    let data = Range {
        start: text_end,
        end,
    };
    let pieces =
        crate::memmap::free_ranges(&[data], &guards, PAGE_SIZE).map_err(|_| MapError::NoMemory)?;
    for r in &pieces {
        pt.map(mem, r.start, r.start, r.size(), Attrs::RW)?;
    }
    Ok(())
}

/// Creates the root table.
pub fn new_table(mem: &mut PoolMemory) -> Result<PageTable, MapError> {
    PageTable::new(mem, Regime::El2)
}

/// Switches the EL2 MMU and caches on with `root`.
pub fn enable(root: u64) {
    // MAIR: index 0 normal write-back RW-allocate, index 1 device nGnRE.
    crate::msr!("mair_el2", 0x04_ff);
    // TCR_EL2: T0SZ=25 (39 bits), inner/outer WB RA WA, inner shareable,
    // 4 KiB granule, 40-bit physical addresses, RES1 bits 31 and 23.
    let tcr: u64 = 25 | (1 << 8) | (1 << 10) | (3 << 12) | (2 << 16) | (1 << 23) | (1 << 31);
    crate::msr!("tcr_el2", tcr);
    crate::msr!("ttbr0_el2", root);
    // SAFETY: invalidating EL2 TLB entries and barriers only.
    unsafe { core::arch::asm!("dsb ish", "tlbi alle2", "dsb ish", "isb", options(nostack)) };
    // M (MMU), C (data cache), I (instruction cache), SA (stack alignment),
    // WXN (writable means never executable).
    let sctlr = crate::mrs!("sctlr_el2") | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12) | (1 << 19);
    crate::msr!("sctlr_el2", sctlr);
    super::isb();
}
