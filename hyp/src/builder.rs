//! The domain builder: gives a new domain its memory, its stage-2 (P2M) map,
//! its kernel and its device tree, as Xen on Arm lays out a domU.
//!
//! Guest-physical layout: RAM at [`GUEST_RAM_BASE`]; the device tree in the
//! last 2 MiB of RAM; the grant-table window at [`GUEST_GNTTAB_BASE`]
//! (reserved in the tree for later use, not mapped).

use crate::config::DomainConfig;
use crate::frames::Frames;
use crate::loader::{self, LoadError};
use crate::pagetable::{Attrs, MapError, PageTable, Regime, TableMemory, PAGE_SIZE};
use alloc::vec::Vec;
use platform::devtree::MemRange;
use platform::guest_dt::{build_guest_dt, GuestDtConfig, GuestDtError, PassDevice};

/// Guest-physical base of RAM (Xen's GUEST_RAM0_BASE).
pub const GUEST_RAM_BASE: u64 = 0x4000_0000;
/// Guest-physical base of the grant-table window (Xen's GUEST_GNTTAB_BASE).
pub const GUEST_GNTTAB_BASE: u64 = 0x3800_0000;
/// Size of the grant-table window.
pub const GUEST_GNTTAB_SIZE: u64 = 0x100_0000;
/// PPI of the event-channel upcall (INTID 31).
pub const GUEST_EVTCHN_PPI: u32 = 15;
/// Space reserved for the device tree at the top of RAM.
pub const DTB_SPACE: u64 = 0x20_0000;
/// Frames per RAM chunk (2 MiB: one stage-2 block).
const CHUNK_FRAMES: u64 = 512;

/// Physical memory as the builder needs it.
pub trait Phys: TableMemory {
    /// Writes bytes at a machine address.
    fn write_bytes(&mut self, pa: u64, data: &[u8]);
    /// Zeroes `len` bytes at a machine address.
    fn zero(&mut self, pa: u64, len: u64);
}

/// Why a domain could not be built. Whatever was allocated is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// Not enough free frames: `needed` and `free`, in frames.
    NoMemory { needed: u64, free: u64 },
    /// The kernel image is not loadable into this domain.
    Kernel(LoadError),
    /// The kernel overlaps the space for the device tree.
    KernelTooBig,
    /// The device tree could not be built.
    DeviceTree(GuestDtError),
    /// A stage-2 mapping failed.
    Map(MapError),
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoMemory { needed, free } => {
                write!(
                    f,
                    "not enough memory: {} KiB needed, {} KiB free",
                    needed * 4,
                    free * 4
                )
            }
            Self::Kernel(e) => write!(f, "kernel image: {e:?}"),
            Self::KernelTooBig => write!(f, "kernel overlaps the device tree at the top of RAM"),
            Self::DeviceTree(e) => write!(f, "device tree: {e:?}"),
            Self::Map(e) => write!(f, "stage-2 map: {e:?}"),
        }
    }
}

/// A built domain's memory.
#[derive(Debug)]
pub struct DomainMemory {
    /// The stage-2 map.
    pub p2m: PageTable,
    /// Guest RAM (guest-physical base, size).
    pub ram: (u64, u64),
    /// Machine RAM chunks owned by the domain: (address, frames).
    pub chunks: Vec<(u64, u64)>,
    /// Frames holding stage-2 tables.
    pub tables: Vec<u64>,
    /// Kernel entry point (guest-physical).
    pub entry: u64,
    /// Device tree (guest-physical).
    pub dtb: u64,
    /// A driver domain's DMA window: (machine address, frames), mapped at
    /// the same guest-physical address.
    pub dma: Option<(u64, u64)>,
}

impl DomainMemory {
    /// Machine address of guest RAM address `ipa`, without a table walk:
    /// RAM is mapped chunk after chunk, each but the last 2 MiB.
    pub fn ram_pa(&self, ipa: u64) -> Option<u64> {
        ram_pa(self.ram, &self.chunks, ipa)
    }

    /// Frames owned, tables and DMA window included.
    pub fn frames(&self) -> u64 {
        self.chunks.iter().map(|c| c.1).sum::<u64>()
            + self.tables.len() as u64
            + self.dma.map_or(0, |d| d.1)
    }
}

/// Machine address of guest RAM address `ipa` of a domain whose RAM is
/// `ram` (guest-physical base, size), made of `chunks` (as
/// [`DomainMemory::chunks`]).
#[inline(always)]
pub fn ram_pa(ram: (u64, u64), chunks: &[(u64, u64)], ipa: u64) -> Option<u64> {
    let off = ipa.checked_sub(ram.0).filter(|o| *o < ram.1)?;
    let (pa, n) = *chunks.get((off / (CHUNK_FRAMES * PAGE_SIZE)) as usize)?;
    let o = off % (CHUNK_FRAMES * PAGE_SIZE);
    (o < n * PAGE_SIZE).then_some(pa + o)
}

/// Tables allocated from the frame allocator.
struct FrameTables<'a, P: Phys> {
    phys: &'a mut P,
    frames: &'a mut Frames,
    tables: &'a mut Vec<u64>,
}

impl<P: Phys> TableMemory for FrameTables<'_, P> {
    fn alloc_table(&mut self) -> Option<u64> {
        let pa = self.frames.alloc(1)?;
        self.phys.zero(pa, PAGE_SIZE);
        self.tables.push(pa);
        Some(pa)
    }
    fn read(&self, table: u64, idx: usize) -> u64 {
        self.phys.read(table, idx)
    }
    fn write(&mut self, table: u64, idx: usize, val: u64) {
        self.phys.write(table, idx, val)
    }
}

/// What a driver domain gets beyond RAM: devices (MMIO pages mapped at
/// their machine address as Device memory) and a DMA window (machine RAM
/// the caller allocated, mapped at guest-physical == machine-physical).
#[derive(Clone, Debug, Default)]
pub struct Passthrough {
    /// The devices and the VIRQs their interrupts arrive on.
    pub devices: Vec<PassDevice>,
    /// The DMA window (machine address, bytes), owned by the domain from
    /// now on (freed with it).
    pub dma: Option<(u64, u64)>,
}

/// Builds a domain from `cfg` and its kernel `image`.
pub fn build(
    phys: &mut impl Phys,
    frames: &mut Frames,
    cfg: &DomainConfig,
    image: &[u8],
) -> Result<DomainMemory, BuildError> {
    build_with(phys, frames, cfg, image, &Passthrough::default())
}

/// Builds a domain, with devices and a DMA window if it is the driver
/// domain. On error nothing is left allocated (the DMA window included).
pub fn build_with(
    phys: &mut impl Phys,
    frames: &mut Frames,
    cfg: &DomainConfig,
    image: &[u8],
    pass: &Passthrough,
) -> Result<DomainMemory, BuildError> {
    let give_back = |frames: &mut Frames| {
        if let Some((pa, len)) = pass.dma {
            frames.free(pa, len / PAGE_SIZE);
        }
    };
    let ram = (GUEST_RAM_BASE, (cfg.mem_mib as u64) << 20);
    let overlaps = |b: u64, l: u64| b < ram.0 + ram.1 && ram.0 < b + l;
    if pass
        .dma
        .is_some_and(|(b, l)| overlaps(b, l) || b % PAGE_SIZE != 0 || l % PAGE_SIZE != 0)
        || pass
            .devices
            .iter()
            .any(|d| overlaps(d.reg.base, d.reg.size))
    {
        give_back(frames);
        return Err(BuildError::Map(MapError::AlreadyMapped));
    }
    match build_inner(phys, frames, cfg, image, pass, ram) {
        Ok(m) => Ok(m),
        Err(e) => {
            give_back(frames);
            Err(e)
        }
    }
}

fn build_inner(
    phys: &mut impl Phys,
    frames: &mut Frames,
    cfg: &DomainConfig,
    image: &[u8],
    pass: &Passthrough,
    ram: (u64, u64),
) -> Result<DomainMemory, BuildError> {
    let plan = loader::plan(cfg.kernel, image, ram).map_err(BuildError::Kernel)?;
    let dtb_ipa = ram.0 + ram.1 - DTB_SPACE;
    if plan.extent.1 > dtb_ipa {
        return Err(BuildError::KernelTooBig);
    }
    let dt = build_guest_dt(&GuestDtConfig {
        ram: &[MemRange {
            base: ram.0,
            size: ram.1,
        }],
        bootargs: &cfg.args,
        vcpus: cfg.vcpus.max(1) as u32,
        xen_version: hypercall_abi::version::decode_version(crate::hypercall::VERSION),
        grant_table: MemRange {
            base: GUEST_GNTTAB_BASE,
            size: GUEST_GNTTAB_SIZE,
        },
        evtchn_ppi: GUEST_EVTCHN_PPI,
        domain_name: &cfg.name,
        passthrough: &pass.devices,
        dma_window: pass.dma.map(|(base, size)| MemRange { base, size }),
    })
    .map_err(BuildError::DeviceTree)?;
    if dt.len() as u64 > DTB_SPACE {
        return Err(BuildError::DeviceTree(GuestDtError::NoRam));
    }

    let ram_frames = ram.1 / PAGE_SIZE;
    // Worst case for tables: a root, one level-2 and one level-3 table per GiB.
    let needed = ram_frames + 1 + 2 * ram.1.div_ceil(1 << 30);
    if frames.free_frames() < needed {
        return Err(BuildError::NoMemory {
            needed,
            free: frames.free_frames(),
        });
    }
    let mut mem = DomainMemory {
        p2m: PageTable {
            root: 0,
            regime: Regime::Stage2,
        },
        ram,
        chunks: Vec::new(),
        tables: Vec::new(),
        entry: plan.entry,
        dtb: dtb_ipa,
        dma: None,
    };
    match populate(phys, frames, &mut mem, &plan, image, &dt, pass) {
        Ok(()) => Ok(mem),
        Err(e) => {
            release(phys, frames, mem);
            Err(e)
        }
    }
}

fn populate(
    phys: &mut impl Phys,
    frames: &mut Frames,
    mem: &mut DomainMemory,
    plan: &loader::LoadPlan,
    image: &[u8],
    dt: &[u8],
    pass: &Passthrough,
) -> Result<(), BuildError> {
    let free = frames.free_frames();
    let mut tm = FrameTables {
        phys,
        frames,
        tables: &mut mem.tables,
    };
    mem.p2m = PageTable::new(&mut tm, Regime::Stage2)
        .map_err(|_| BuildError::NoMemory { needed: 1, free })?;
    let mut ipa = mem.ram.0;
    while ipa < mem.ram.0 + mem.ram.1 {
        let n = CHUNK_FRAMES.min((mem.ram.0 + mem.ram.1 - ipa) / PAGE_SIZE);
        let free = tm.frames.free_frames();
        let pa = tm
            .frames
            .alloc(n)
            .ok_or(BuildError::NoMemory { needed: n, free })?;
        mem.chunks.push((pa, n));
        // Scrub: a domain never sees what an earlier one left behind.
        tm.phys.zero(pa, n * PAGE_SIZE);
        mem.p2m
            .map(&mut tm, ipa, pa, n * PAGE_SIZE, Attrs::RWX)
            .map_err(BuildError::Map)?;
        ipa += n * PAGE_SIZE;
    }
    // Devices: each register window's page, at its machine address.
    for d in &pass.devices {
        let page = d.reg.base & !(PAGE_SIZE - 1);
        let end = (d.reg.base + d.reg.size).next_multiple_of(PAGE_SIZE);
        if mem.p2m.any_mapped(tm.phys, page, end - page) {
            continue; // several transports share a page
        }
        mem.p2m
            .map(&mut tm, page, page, end - page, Attrs::DEVICE)
            .map_err(BuildError::Map)?;
    }
    if let Some((pa, len)) = pass.dma {
        // Owned from here on: released (scrubbed) with the domain.
        mem.dma = Some((pa, len / PAGE_SIZE));
        tm.phys.zero(pa, len);
        mem.p2m
            .map(&mut tm, pa, pa, len, Attrs::RW)
            .map_err(BuildError::Map)?;
    }
    for s in &plan.segments {
        copy_in(
            phys,
            mem,
            s.dest,
            &image[s.file_off..s.file_off + s.file_len],
        );
    }
    copy_in(phys, mem, mem.dtb, dt);
    Ok(())
}

/// Copies `data` to guest-physical `ipa` through the domain's P2M.
fn copy_in(phys: &mut impl Phys, mem: &DomainMemory, ipa: u64, data: &[u8]) {
    let mut off = 0usize;
    while off < data.len() {
        let a = ipa + off as u64;
        let (pa, _, _) = mem
            .p2m
            .translate(phys, a)
            .expect("inside RAM: checked by the load plan");
        let n = ((PAGE_SIZE - (a % PAGE_SIZE)) as usize).min(data.len() - off);
        phys.write_bytes(pa, &data[off..off + n]);
        off += n;
    }
}

/// Maps the domain's RAM with pages instead of blocks (same addresses and
/// attributes), with tables from `frames`, so that single pages can be
/// made read-only (the PV MMU's page tables). The caller flushes the
/// domain's TLB entries afterwards.
pub fn split_ram(
    phys: &mut impl Phys,
    frames: &mut Frames,
    mem: &mut DomainMemory,
) -> Result<(), BuildError> {
    let mut tm = FrameTables {
        phys,
        frames,
        tables: &mut mem.tables,
    };
    mem.p2m
        .split_to_pages(&mut tm, mem.ram.0, mem.ram.1)
        .map_err(BuildError::Map)
}

/// Scrubs and frees everything a domain owns.
pub fn release(phys: &mut impl Phys, frames: &mut Frames, mem: DomainMemory) {
    if let Some((pa, n)) = mem.dma {
        phys.zero(pa, n * PAGE_SIZE);
        frames.free(pa, n);
    }
    for (pa, n) in mem.chunks {
        phys.zero(pa, n * PAGE_SIZE);
        frames.free(pa, n);
    }
    for t in mem.tables {
        phys.zero(t, PAGE_SIZE);
        frames.free(t, 1);
    }
}

#[cfg(test)]
pub mod sim {
    //! Simulated machine memory for host tests.
    use super::*;
    use std::collections::HashMap;

    /// Pages created on first touch.
    #[derive(Default)]
    pub struct SimPhys {
        /// Page contents by page address.
        pub pages: HashMap<u64, Box<[u8; 4096]>>,
    }

    impl SimPhys {
        fn page(&mut self, pa: u64) -> &mut [u8; 4096] {
            self.pages
                .entry(pa & !0xfff)
                .or_insert_with(|| Box::new([0; 4096]))
        }
        /// Reads bytes (untouched memory reads as zero).
        pub fn read_bytes(&self, pa: u64, len: usize) -> Vec<u8> {
            (0..len as u64)
                .map(|i| {
                    self.pages
                        .get(&((pa + i) & !0xfff))
                        .map_or(0, |p| p[((pa + i) & 0xfff) as usize])
                })
                .collect()
        }
    }

    impl TableMemory for SimPhys {
        fn alloc_table(&mut self) -> Option<u64> {
            None
        }
        fn read(&self, table: u64, idx: usize) -> u64 {
            u64::from_le_bytes(
                self.read_bytes(table + idx as u64 * 8, 8)
                    .try_into()
                    .unwrap(),
            )
        }
        fn write(&mut self, table: u64, idx: usize, val: u64) {
            self.write_bytes(table + idx as u64 * 8, &val.to_le_bytes());
        }
    }

    impl Phys for SimPhys {
        fn write_bytes(&mut self, pa: u64, data: &[u8]) {
            for (i, b) in data.iter().enumerate() {
                let a = pa + i as u64;
                self.page(a)[(a & 0xfff) as usize] = *b;
            }
        }
        fn zero(&mut self, pa: u64, len: u64) {
            let mut a = pa;
            while a < pa + len {
                self.pages.remove(&a);
                a += PAGE_SIZE;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sim::SimPhys;
    use super::*;
    use crate::config::KernelFormat;
    use crate::memmap::Range;
    use crate::pagetable::VA_BITS;

    fn image(len: usize) -> Vec<u8> {
        let mut b: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        b[8..16].copy_from_slice(&0x8_0000u64.to_le_bytes());
        b[16..24].copy_from_slice(&(len as u64 + 0x1000).to_le_bytes());
        b[24..32].copy_from_slice(&2u64.to_le_bytes());
        b[56..60].copy_from_slice(&loader::IMAGE_MAGIC_VALUE.to_le_bytes());
        b
    }

    fn cfg(mem: u32) -> DomainConfig {
        crate::config::parse(&format!(
            "dom=t,mem={mem},kernel=image,args=\"hello there\""
        ))
        .unwrap()
        .domains[0]
            .clone()
    }

    fn machine(mib: u64) -> (SimPhys, Frames) {
        let mut f = Frames::new();
        f.add(Range {
            start: 0x8000_0000,
            end: 0x8000_0000 + (mib << 20),
        });
        (SimPhys::default(), f)
    }

    #[test]
    fn maps_exactly_its_own_frames() {
        let (mut phys, mut frames) = machine(64);
        let img = image(10_000);
        let m = build(&mut phys, &mut frames, &cfg(6), &img).unwrap();
        assert_eq!(m.entry, GUEST_RAM_BASE + 0x8_0000);
        // Every page of RAM maps into a chunk the domain owns, read-write.
        let mut seen = std::collections::HashSet::new();
        for ipa in (m.ram.0..m.ram.0 + m.ram.1).step_by(4096) {
            let (pa, a, _) = m.p2m.translate(&phys, ipa).unwrap();
            assert!(a.write);
            assert!(m.chunks.iter().any(|&(c, n)| pa >= c && pa < c + n * 4096));
            assert!(seen.insert(pa), "two guest pages share a frame");
        }
        // Nothing else is mapped: not below RAM, not above it.
        assert!(!m.p2m.any_mapped(&phys, 0, m.ram.0));
        let top = m.ram.0 + m.ram.1;
        assert!(!m.p2m.any_mapped(&phys, top, (1 << VA_BITS) - top));
        // No page-table frame is reachable through the P2M.
        for t in &m.tables {
            assert!(!seen.contains(t));
        }
        // The kernel is where the Image header says, byte for byte.
        let (pa, _, _) = m.p2m.translate(&phys, m.entry).unwrap();
        assert_eq!(phys.read_bytes(pa, 100), img[..100].to_vec());
        // The device tree is valid and carries the command line.
        let (pa, _, _) = m.p2m.translate(&phys, m.dtb).unwrap();
        let dt = phys.read_bytes(pa, 4096);
        let fdt = fdt::Fdt::new(&dt).unwrap();
        assert_eq!(fdt.chosen().bootargs(), Some("hello there"));
        assert_eq!(fdt.memory().regions().next().unwrap().size, Some(6 << 20));
    }

    #[test]
    fn split_ram_keeps_the_map_and_is_released_with_the_domain() {
        let (mut phys, mut frames) = machine(64);
        let free = frames.free_frames();
        let mut mem = build(&mut phys, &mut frames, &cfg(16), &image(4096)).unwrap();
        let before: Vec<_> = (0..16 << 20)
            .step_by(0x3_3000)
            .map(|o| mem.p2m.translate(&phys, GUEST_RAM_BASE + o).unwrap().0)
            .collect();
        let tables = mem.tables.len();
        split_ram(&mut phys, &mut frames, &mut mem).unwrap();
        assert_eq!(mem.tables.len(), tables + 8, "one level-3 table per 2 MiB");
        let after: Vec<_> = (0..16 << 20)
            .step_by(0x3_3000)
            .map(|o| mem.p2m.translate(&phys, GUEST_RAM_BASE + o).unwrap())
            .collect();
        assert_eq!(after.iter().map(|t| t.0).collect::<Vec<_>>(), before);
        assert!(after.iter().all(|t| t.2 == PAGE_SIZE));
        for o in (0..16u64 << 20).step_by(0x1_1008) {
            let ipa = GUEST_RAM_BASE + o;
            assert_eq!(mem.ram_pa(ipa), mem.p2m.translate(&phys, ipa).map(|t| t.0));
        }
        assert_eq!(mem.ram_pa(GUEST_RAM_BASE + (16 << 20)), None);
        assert_eq!(mem.ram_pa(GUEST_RAM_BASE - 8), None);
        release(&mut phys, &mut frames, mem);
        assert_eq!(frames.free_frames(), free);
    }

    #[test]
    fn release_returns_every_frame_scrubbed() {
        let (mut phys, mut frames) = machine(64);
        let before = frames.free_frames();
        let m = build(&mut phys, &mut frames, &cfg(8), &image(5000)).unwrap();
        assert!(frames.free_frames() < before);
        let chunks = m.chunks.clone();
        release(&mut phys, &mut frames, m);
        assert_eq!(frames.free_frames(), before);
        for (pa, n) in chunks {
            assert!(phys
                .read_bytes(pa, (n * 4096) as usize)
                .iter()
                .all(|&b| b == 0));
        }
    }

    #[test]
    fn refusals_leave_nothing_allocated() {
        let (mut phys, mut frames) = machine(16);
        let before = frames.free_frames();
        let e = build(&mut phys, &mut frames, &cfg(32), &image(5000)).unwrap_err();
        assert!(matches!(e, BuildError::NoMemory { .. }), "{e:?}");
        assert_eq!(frames.free_frames(), before);
        let mut c = cfg(8);
        c.kernel = KernelFormat::Elf;
        assert!(matches!(
            build(&mut phys, &mut frames, &c, &image(5000)),
            Err(BuildError::Kernel(_))
        ));
        // A kernel reaching into the device-tree space.
        let mut big = image(4096);
        big[16..24].copy_from_slice(&((4u64 << 20) - 0x8_0000 - 0x1000).to_le_bytes());
        assert_eq!(
            build(&mut phys, &mut frames, &cfg(4), &big).unwrap_err(),
            BuildError::KernelTooBig
        );
        assert_eq!(frames.free_frames(), before);
    }

    #[test]
    fn driver_domain_gets_devices_and_an_identity_dma_window() {
        let (mut phys, mut frames) = machine(64);
        let before = frames.free_frames();
        let dma_frames = 256;
        let dma = frames.alloc(dma_frames).unwrap();
        let pass = Passthrough {
            devices: vec![
                PassDevice {
                    compatible: "virtio,mmio",
                    reg: MemRange {
                        base: 0x0a00_3e00,
                        size: 0x200,
                    },
                    virq: 16,
                },
                PassDevice {
                    compatible: "virtio,mmio",
                    reg: MemRange {
                        base: 0x0a00_3c00,
                        size: 0x200,
                    },
                    virq: 17,
                },
            ],
            dma: Some((dma, dma_frames * PAGE_SIZE)),
        };
        let m = build_with(&mut phys, &mut frames, &cfg(8), &image(5000), &pass).unwrap();
        let (pa, a, _) = m.p2m.translate(&phys, 0x0a00_3e10).unwrap();
        assert_eq!(
            (pa, a.mem, a.exec),
            (0x0a00_3e10, crate::pagetable::MemType::Device, false)
        );
        let (pa, a, _) = m.p2m.translate(&phys, dma + 0x1234).unwrap();
        assert_eq!(
            (pa, a.mem, a.write, a.exec),
            (dma + 0x1234, crate::pagetable::MemType::Normal, true, false)
        );
        assert!(
            m.p2m.translate(&phys, 0x0a00_5000).is_none(),
            "only the devices' page"
        );
        release(&mut phys, &mut frames, m);
        assert_eq!(frames.free_frames(), before, "the DMA window goes back too");

        // A device inside guest RAM is refused, and the window given back.
        let dma = frames.alloc(dma_frames).unwrap();
        let bad = Passthrough {
            devices: vec![PassDevice {
                compatible: "virtio,mmio",
                reg: MemRange {
                    base: GUEST_RAM_BASE + 0x1000,
                    size: 0x200,
                },
                virq: 16,
            }],
            dma: Some((dma, dma_frames * PAGE_SIZE)),
        };
        let e = build_with(&mut phys, &mut frames, &cfg(8), &image(5000), &bad).unwrap_err();
        assert!(matches!(e, BuildError::Map(_)));
        assert_eq!(frames.free_frames(), before);
    }
}
