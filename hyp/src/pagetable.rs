//! AArch64 translation tables with the 4 KiB granule: three levels (1, 2, 3)
//! covering a 39-bit input address space. One implementation serves the
//! monitor's own EL2 stage-1 map and every domain's stage-2 (P2M) map; only
//! the leaf attribute encoding differs between the two regimes.
//!
//! Memory holding the tables is reached through [`TableMemory`], so the same
//! code runs over real frames at EL2 and over a simulated memory in host tests.

/// Translation granule.
pub const PAGE_SIZE: u64 = 4096;
/// Input address bits covered (T0SZ = 64 - 39 = 25, starting at level 1).
pub const VA_BITS: u32 = 39;
const ENTRIES: usize = 512;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 3 << 8;
const XN: u64 = 1 << 54;

/// Where the tables live.
pub trait TableMemory {
    /// Allocates a zeroed, 4 KiB-aligned table; returns its physical address.
    fn alloc_table(&mut self) -> Option<u64>;
    /// Reads entry `idx` of the table at physical address `table`.
    fn read(&self, table: u64, idx: usize) -> u64;
    /// Writes entry `idx` of the table at physical address `table`.
    fn write(&mut self, table: u64, idx: usize, val: u64);
}

/// Which translation regime the tables are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// The monitor's own stage-1 map (MAIR_EL2 index 0 normal, 1 device).
    El2,
    /// A domain's stage-2 map (guest-physical to machine).
    Stage2,
}

/// Memory type of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    /// Normal memory, write-back cacheable, inner shareable.
    Normal,
    /// Device-nGnRE memory.
    Device,
}

/// What a leaf entry allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attrs {
    /// Memory type.
    pub mem: MemType,
    /// Writable (otherwise read-only).
    pub write: bool,
    /// Executable.
    pub exec: bool,
}

impl Attrs {
    /// Normal memory, read-write, executable.
    pub const RWX: Attrs = Attrs {
        mem: MemType::Normal,
        write: true,
        exec: true,
    };
    /// Normal memory, read-write, not executable.
    pub const RW: Attrs = Attrs {
        mem: MemType::Normal,
        write: true,
        exec: false,
    };
    /// Normal memory, read-only, not executable.
    pub const RO: Attrs = Attrs {
        mem: MemType::Normal,
        write: false,
        exec: false,
    };
    /// Device memory, read-write, never executable.
    pub const DEVICE: Attrs = Attrs {
        mem: MemType::Device,
        write: true,
        exec: false,
    };
}

/// Why a map or unmap request was refused. Nothing is changed by a refused
/// request, except tables allocated on the way, which stay empty and linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Address or size not a multiple of the page size, or size zero.
    Unaligned,
    /// The range leaves the 39-bit input space or wraps around.
    OutOfRange,
    /// Part of the range is already mapped (no silent overwrite).
    AlreadyMapped,
    /// Part of the range is not mapped (unmap).
    NotMapped,
    /// The range cuts a block mapping in two (unmap).
    SplitsBlock,
    /// No memory for another table.
    NoMemory,
}

fn block_size(level: u32) -> u64 {
    1 << (12 + 9 * (3 - level))
}

fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * (3 - level))) & 0x1ff) as usize
}

fn leaf(regime: Regime, pa: u64, level: u32, a: Attrs) -> u64 {
    let mut d = (pa & ADDR_MASK) | VALID | AF;
    if level == 3 {
        d |= TABLE_OR_PAGE;
    }
    match regime {
        Regime::El2 => {
            // AttrIndx; AP[1] is RES1 at EL2; AP[2] = read-only.
            d |= match a.mem {
                MemType::Normal => SH_INNER,
                MemType::Device => 1 << 2,
            };
            d |= 1 << 6;
            if !a.write {
                d |= 1 << 7;
            }
        }
        Regime::Stage2 => {
            // MemAttr[5:2]; S2AP[7:6]: 01 read-only, 11 read-write.
            d |= match a.mem {
                MemType::Normal => (0b1111 << 2) | SH_INNER,
                MemType::Device => 0b0001 << 2,
            };
            d |= if a.write { 0b11 << 6 } else { 0b01 << 6 };
        }
    }
    if !a.exec || a.mem == MemType::Device {
        d |= XN;
    }
    d
}

fn decode_leaf(regime: Regime, d: u64) -> Attrs {
    let (mem, write) = match regime {
        Regime::El2 => {
            let mem = if (d >> 2) & 7 == 0 {
                MemType::Normal
            } else {
                MemType::Device
            };
            (mem, d & (1 << 7) == 0)
        }
        Regime::Stage2 => {
            let mem = if (d >> 2) & 0xf == 0b1111 {
                MemType::Normal
            } else {
                MemType::Device
            };
            (mem, (d >> 6) & 0b11 == 0b11)
        }
    };
    Attrs {
        mem,
        write,
        exec: d & XN == 0,
    }
}

fn is_table(d: u64, level: u32) -> bool {
    level < 3 && d & (VALID | TABLE_OR_PAGE) == VALID | TABLE_OR_PAGE
}

fn check_range(va: u64, size: u64) -> Result<(), MapError> {
    if size == 0 || va % PAGE_SIZE != 0 || size % PAGE_SIZE != 0 {
        return Err(MapError::Unaligned);
    }
    let end = va.checked_add(size).ok_or(MapError::OutOfRange)?;
    if end > 1 << VA_BITS {
        return Err(MapError::OutOfRange);
    }
    Ok(())
}

/// A translation table tree: its root (a level-1 table) and regime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageTable {
    /// Physical address of the level-1 table.
    pub root: u64,
    /// Attribute encoding used for leaves.
    pub regime: Regime,
}

impl PageTable {
    /// Allocates an empty root table.
    pub fn new(mem: &mut impl TableMemory, regime: Regime) -> Result<Self, MapError> {
        Ok(Self {
            root: mem.alloc_table().ok_or(MapError::NoMemory)?,
            regime,
        })
    }

    /// Maps `[va, va+size)` to `[pa, pa+size)`, using 1 GiB and 2 MiB blocks
    /// where both addresses are aligned. Refuses to overwrite any existing
    /// mapping; on refusal, nothing that was mapped before changes, and the
    /// part of the range mapped by this call is removed again.
    pub fn map(
        &self,
        mem: &mut impl TableMemory,
        va: u64,
        pa: u64,
        size: u64,
        a: Attrs,
    ) -> Result<(), MapError> {
        check_range(va, size)?;
        if pa % PAGE_SIZE != 0 {
            return Err(MapError::Unaligned);
        }
        pa.checked_add(size)
            .filter(|e| *e <= ADDR_MASK + 1)
            .ok_or(MapError::OutOfRange)?;
        // Check first, so that a refused request changes nothing.
        if self.any_mapped(mem, va, size) {
            return Err(MapError::AlreadyMapped);
        }
        let mut off = 0;
        while off < size {
            match self.map_one(mem, va + off, pa + off, size - off, a) {
                Ok(step) => off += step,
                Err(e) => {
                    if off > 0 {
                        // Roll back what this call mapped.
                        let _ = self.unmap(mem, va, off);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn map_one(
        &self,
        mem: &mut impl TableMemory,
        va: u64,
        pa: u64,
        left: u64,
        a: Attrs,
    ) -> Result<u64, MapError> {
        let mut table = self.root;
        for level in 1..=3 {
            let bs = block_size(level);
            let idx = index(va, level);
            let d = mem.read(table, idx);
            let can_block = level == 3 || (va % bs == 0 && pa % bs == 0 && left >= bs);
            if can_block && d & VALID == 0 {
                mem.write(table, idx, leaf(self.regime, pa, level, a));
                return Ok(bs);
            }
            if d & VALID == 0 {
                let t = mem.alloc_table().ok_or(MapError::NoMemory)?;
                mem.write(table, idx, t | VALID | TABLE_OR_PAGE);
                table = t;
            } else if is_table(d, level) {
                table = d & ADDR_MASK;
            } else {
                return Err(MapError::AlreadyMapped);
            }
        }
        unreachable!("level 3 always maps or refuses")
    }

    /// Whether any page of `[va, va+size)` is mapped.
    pub fn any_mapped(&self, mem: &impl TableMemory, va: u64, size: u64) -> bool {
        let mut a = va;
        let end = va.saturating_add(size);
        while a < end {
            match self.walk(mem, a) {
                Walk::Leaf { .. } => return true,
                Walk::Hole { size } => a = (a & !(size - 1)).saturating_add(size),
            }
        }
        false
    }

    /// Removes the mappings of `[va, va+size)`. Every page must be mapped and
    /// blocks must be removed whole. Tables left empty are kept.
    pub fn unmap(&self, mem: &mut impl TableMemory, va: u64, size: u64) -> Result<(), MapError> {
        check_range(va, size)?;
        // Validate first so that a refused request changes nothing.
        let mut a = va;
        while a < va + size {
            match self.walk(mem, a) {
                Walk::Leaf { size: bs, .. } => {
                    if a % bs != 0 || a + bs > va + size {
                        return Err(MapError::SplitsBlock);
                    }
                    a += bs;
                }
                Walk::Hole { .. } => return Err(MapError::NotMapped),
            }
        }
        let mut a = va;
        while a < va + size {
            let (table, idx, bs) = self.leaf_slot(mem, a).expect("validated above");
            mem.write(table, idx, 0);
            a += bs;
        }
        Ok(())
    }

    fn leaf_slot(&self, mem: &impl TableMemory, va: u64) -> Option<(u64, usize, u64)> {
        let mut table = self.root;
        for level in 1..=3 {
            let idx = index(va, level);
            let d = mem.read(table, idx);
            if d & VALID == 0 {
                return None;
            }
            if is_table(d, level) {
                table = d & ADDR_MASK;
            } else {
                return Some((table, idx, block_size(level)));
            }
        }
        None
    }

    fn walk(&self, mem: &impl TableMemory, va: u64) -> Walk {
        let mut table = self.root;
        for level in 1..=3 {
            let bs = block_size(level);
            let d = mem.read(table, index(va, level));
            if d & VALID == 0 || (level == 3 && d & TABLE_OR_PAGE == 0) {
                return Walk::Hole { size: bs };
            }
            if is_table(d, level) {
                table = d & ADDR_MASK;
            } else {
                let pa = (d & ADDR_MASK & !(bs - 1)) | (va & (bs - 1));
                return Walk::Leaf {
                    pa,
                    attrs: decode_leaf(self.regime, d),
                    size: bs,
                };
            }
        }
        Walk::Hole { size: PAGE_SIZE }
    }

    /// Translates one address: the output address, the leaf's attributes
    /// and the size of the block or page that maps it.
    pub fn translate(&self, mem: &impl TableMemory, va: u64) -> Option<(u64, Attrs, u64)> {
        if va >= 1 << VA_BITS {
            return None;
        }
        match self.walk(mem, va) {
            Walk::Leaf { pa, attrs, size } => Some((pa, attrs, size)),
            Walk::Hole { .. } => None,
        }
    }

    /// Replaces every block mapping in `[va, va+size)` by tables of pages
    /// with the same output addresses and attributes, so that single pages
    /// can change permissions. The translation of every address is the
    /// same before and after (each block entry is cleared, then replaced by
    /// its table: the caller invalidates the TLBs afterwards). Stops at the
    /// first allocation failure, leaving what was split split.
    pub fn split_to_pages(
        &self,
        mem: &mut impl TableMemory,
        va: u64,
        size: u64,
    ) -> Result<(), MapError> {
        check_range(va, size)?;
        let mut a = va;
        while a < va + size {
            while let Some((table, idx, bs)) = self.leaf_slot(mem, a) {
                if bs == PAGE_SIZE {
                    break;
                }
                let d = mem.read(table, idx);
                let attrs = d & !ADDR_MASK & !TABLE_OR_PAGE;
                let base = d & ADDR_MASK & !(bs - 1);
                let step = bs / ENTRIES as u64;
                let t = mem.alloc_table().ok_or(MapError::NoMemory)?;
                let page = if step == PAGE_SIZE { TABLE_OR_PAGE } else { 0 };
                for i in 0..ENTRIES {
                    mem.write(t, i, (base + i as u64 * step) | attrs | page);
                }
                mem.write(table, idx, 0);
                mem.write(table, idx, t | VALID | TABLE_OR_PAGE);
            }
            a += PAGE_SIZE;
        }
        Ok(())
    }

    /// Makes the page mapping `va` writable or read-only. It must be a
    /// page (level 3), not part of a block.
    pub fn set_page_write(
        &self,
        mem: &mut impl TableMemory,
        va: u64,
        write: bool,
    ) -> Result<(), MapError> {
        let (table, idx, bs) = self.leaf_slot(mem, va).ok_or(MapError::NotMapped)?;
        if bs != PAGE_SIZE {
            return Err(MapError::SplitsBlock);
        }
        let d = mem.read(table, idx);
        let d = match (self.regime, write) {
            (Regime::Stage2, true) => d | 0b11 << 6,
            (Regime::Stage2, false) => (d & !(0b11 << 6)) | 0b01 << 6,
            (Regime::El2, true) => d & !(1 << 7),
            (Regime::El2, false) => d | 1 << 7,
        };
        mem.write(table, idx, d);
        Ok(())
    }

    /// Calls `f(table_pa)` for every table of the tree, root last.
    pub fn for_each_table(&self, mem: &impl TableMemory, f: &mut impl FnMut(u64)) {
        fn rec(mem: &impl TableMemory, t: u64, level: u32, f: &mut impl FnMut(u64)) {
            if level < 3 {
                for i in 0..ENTRIES {
                    let d = mem.read(t, i);
                    if is_table(d, level) {
                        rec(mem, d & ADDR_MASK, level + 1, f);
                    }
                }
            }
            f(t);
        }
        rec(mem, self.root, 1, f);
    }
}

enum Walk {
    Leaf { pa: u64, attrs: Attrs, size: u64 },
    Hole { size: u64 },
}

/// A simulated physical memory for host tests: tables are allocated at
/// increasing fake addresses.
#[cfg(test)]
pub mod sim {
    use super::*;
    use std::collections::BTreeMap;

    /// Tables by physical address, with an optional cap on their number.
    #[derive(Default)]
    pub struct SimMemory {
        /// The tables.
        pub tables: BTreeMap<u64, Box<[u64; ENTRIES]>>,
        /// Next address handed out.
        pub next: u64,
        /// Refuse allocation beyond this many tables.
        pub limit: Option<usize>,
    }

    impl TableMemory for SimMemory {
        fn alloc_table(&mut self) -> Option<u64> {
            if self.limit.is_some_and(|l| self.tables.len() >= l) {
                return None;
            }
            self.next += PAGE_SIZE;
            let pa = 0x8000_0000_0000 + self.next;
            self.tables.insert(pa, Box::new([0; ENTRIES]));
            Some(pa)
        }
        fn read(&self, table: u64, idx: usize) -> u64 {
            self.tables[&table][idx]
        }
        fn write(&mut self, table: u64, idx: usize, val: u64) {
            self.tables.get_mut(&table).unwrap()[idx] = val;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sim::SimMemory;
    use super::*;
    use proptest::prelude::*;

    const G: u64 = 1 << 30;
    const M2: u64 = 2 << 20;

    #[test]
    fn maps_with_blocks_and_pages() {
        let mut m = SimMemory::default();
        let pt = PageTable::new(&mut m, Regime::Stage2).unwrap();
        // 1 GiB + 2 MiB + 4 KiB, all aligned: one of each size.
        pt.map(&mut m, G, 0x4000_0000, G + M2 + PAGE_SIZE, Attrs::RWX)
            .unwrap();
        assert_eq!(pt.translate(&m, G).unwrap().2, G);
        assert_eq!(pt.translate(&m, 2 * G).unwrap().2, M2);
        assert_eq!(pt.translate(&m, 2 * G + M2).unwrap().2, PAGE_SIZE);
        assert_eq!(
            pt.translate(&m, 2 * G + M2 + 0x123).unwrap().0,
            0x4000_0000 + G + M2 + 0x123
        );
        assert!(pt.translate(&m, 2 * G + M2 + PAGE_SIZE).is_none());
    }

    #[test]
    fn attributes_round_trip_in_both_regimes() {
        for regime in [Regime::El2, Regime::Stage2] {
            for a in [Attrs::RWX, Attrs::RW, Attrs::RO, Attrs::DEVICE] {
                let mut m = SimMemory::default();
                let pt = PageTable::new(&mut m, regime).unwrap();
                pt.map(&mut m, 0x1000, 0x2000, 0x1000, a).unwrap();
                assert_eq!(pt.translate(&m, 0x1000).unwrap().1, a, "{regime:?}");
            }
        }
    }

    #[test]
    fn stage2_encoding_matches_the_architecture() {
        let mut m = SimMemory::default();
        let pt = PageTable::new(&mut m, Regime::Stage2).unwrap();
        pt.map(&mut m, 0, 0x4000_0000, PAGE_SIZE, Attrs::RW)
            .unwrap();
        let (t, i, _) = pt.leaf_slot(&m, 0).unwrap();
        let d = m.read(t, i);
        assert_eq!(d & 0b11, 0b11, "page descriptor");
        assert_eq!((d >> 2) & 0xf, 0b1111, "normal write-back");
        assert_eq!((d >> 6) & 0b11, 0b11, "S2AP read-write");
        assert_eq!((d >> 8) & 0b11, 0b11, "inner shareable");
        assert_ne!(d & AF, 0, "access flag");
        assert_ne!(d & XN, 0, "not executable");
        assert_eq!(d & ADDR_MASK, 0x4000_0000);
    }

    #[test]
    fn refuses_overlap_and_bad_arguments() {
        let mut m = SimMemory::default();
        let pt = PageTable::new(&mut m, Regime::El2).unwrap();
        pt.map(&mut m, M2, M2, M2, Attrs::RW).unwrap();
        assert_eq!(
            pt.map(&mut m, M2 + PAGE_SIZE, 0, PAGE_SIZE, Attrs::RW),
            Err(MapError::AlreadyMapped)
        );
        assert_eq!(
            pt.map(&mut m, 0, 0, 2 * M2, Attrs::RW),
            Err(MapError::AlreadyMapped)
        );
        // The refused requests left the first page unmapped.
        assert!(pt.translate(&m, 0).is_none());
        assert_eq!(
            pt.map(&mut m, 1, 0, PAGE_SIZE, Attrs::RW),
            Err(MapError::Unaligned)
        );
        assert_eq!(pt.map(&mut m, 0, 0, 0, Attrs::RW), Err(MapError::Unaligned));
        assert_eq!(
            pt.map(&mut m, 1 << VA_BITS, 0, PAGE_SIZE, Attrs::RW),
            Err(MapError::OutOfRange)
        );
        assert_eq!(
            pt.map(&mut m, u64::MAX & !0xfff, 0, PAGE_SIZE, Attrs::RW),
            Err(MapError::OutOfRange)
        );
    }

    #[test]
    fn unmap_rules() {
        let mut m = SimMemory::default();
        let pt = PageTable::new(&mut m, Regime::Stage2).unwrap();
        pt.map(&mut m, 0, 0, M2 + PAGE_SIZE, Attrs::RW).unwrap();
        assert_eq!(pt.unmap(&mut m, 0, PAGE_SIZE), Err(MapError::SplitsBlock));
        assert_eq!(
            pt.unmap(&mut m, 0, M2 + 2 * PAGE_SIZE),
            Err(MapError::NotMapped)
        );
        assert!(
            pt.translate(&m, 0).is_some(),
            "refused unmap changed nothing"
        );
        pt.unmap(&mut m, 0, M2 + PAGE_SIZE).unwrap();
        assert!(!pt.any_mapped(&m, 0, 1 << VA_BITS));
    }

    #[test]
    fn running_out_of_tables_rolls_back() {
        let mut m = SimMemory {
            limit: Some(3),
            ..Default::default()
        };
        let pt = PageTable::new(&mut m, Regime::Stage2).unwrap();
        // Pages in two different 1 GiB regions need 4 tables in all.
        let r = pt.map(&mut m, G - PAGE_SIZE, 0, 2 * PAGE_SIZE, Attrs::RW);
        assert_eq!(r, Err(MapError::NoMemory));
        assert!(!pt.any_mapped(&m, 0, 2 * G));
    }

    #[test]
    fn splitting_keeps_translations_and_allows_page_permissions() {
        let mut m = SimMemory::default();
        let pt = PageTable::new(&mut m, Regime::Stage2).unwrap();
        pt.map(&mut m, G, 0x8000_0000, G + 2 * M2, Attrs::RWX)
            .unwrap();
        let before: Vec<_> = (0..(G + 2 * M2) / PAGE_SIZE)
            .step_by(97)
            .map(|p| pt.translate(&m, G + p * PAGE_SIZE).unwrap().0)
            .collect();
        assert_eq!(
            pt.set_page_write(&mut m, G + 2 * G / 2, false),
            Err(MapError::SplitsBlock)
        );
        pt.split_to_pages(&mut m, G, G + 2 * M2).unwrap();
        let after: Vec<_> = (0..(G + 2 * M2) / PAGE_SIZE)
            .step_by(97)
            .map(|p| pt.translate(&m, G + p * PAGE_SIZE).unwrap())
            .collect();
        assert_eq!(after.iter().map(|t| t.0).collect::<Vec<_>>(), before);
        assert!(after.iter().all(|t| t.1 == Attrs::RWX && t.2 == PAGE_SIZE));
        pt.set_page_write(&mut m, G + M2 + PAGE_SIZE, false)
            .unwrap();
        assert!(!pt.translate(&m, G + M2 + PAGE_SIZE).unwrap().1.write);
        assert!(pt.translate(&m, G + M2).unwrap().1.write);
        pt.set_page_write(&mut m, G + M2 + PAGE_SIZE, true).unwrap();
        assert_eq!(pt.translate(&m, G + M2 + PAGE_SIZE).unwrap().1, Attrs::RWX);
        assert_eq!(pt.set_page_write(&mut m, 0, true), Err(MapError::NotMapped));
    }

    proptest! {
        /// Random sets of non-overlapping mappings translate exactly as
        /// requested, page by page, and nothing else is mapped.
        #[test]
        fn random_mappings_translate(reqs in prop::collection::vec((0u64..1024, 1u64..600, 0u64..4096, any::<bool>()), 1..12)) {
            let mut m = SimMemory::default();
            let pt = PageTable::new(&mut m, Regime::Stage2).unwrap();
            let mut done: Vec<(u64, u64, u64, bool)> = Vec::new();
            for (vp, n, pp, w) in reqs {
                let (va, size, pa) = (vp * M2 / 8, n * PAGE_SIZE, pp * M2);
                let a = Attrs { mem: MemType::Normal, write: w, exec: false };
                let overlaps = done.iter().any(|&(v, s, _, _)| va < v + s && v < va + size);
                let r = pt.map(&mut m, va, pa, size, a);
                prop_assert_eq!(r.is_ok(), !overlaps);
                if r.is_ok() { done.push((va, size, pa, w)); }
            }
            for &(va, size, pa, w) in &done {
                for off in (0..size).step_by(PAGE_SIZE as usize * 7) {
                    let (got, a, _) = pt.translate(&m, va + off).unwrap();
                    prop_assert_eq!(got, pa + off);
                    prop_assert_eq!(a.write, w);
                }
            }
            let total: u64 = done.iter().map(|d| d.1).sum();
            let mut mapped = 0;
            let mut a = 0;
            while a < 300 * M2 {
                if pt.translate(&m, a).is_some() { mapped += PAGE_SIZE; }
                a += PAGE_SIZE;
            }
            prop_assert_eq!(mapped, total);
        }
    }
}
