//! Machine description read from the flattened device tree the loader passes.
//!
//! The tree is read with the `fdt` crate. This runs in the monitor before its
//! MMU and heap are up, so nothing here allocates (`fdt` 0.1.5 does not
//! either) and nothing panics. `fdt` 0.1.5 does panic on malformed input
//! (truncated tokens or properties, name offsets past the strings block,
//! non-UTF-8 names, `FDT_NOP` inside a node, properties after subnodes), so
//! the whole blob is first checked once (`check_blob`); after that the
//! `fdt` calls made here are known to be safe. `fdt` helpers that panic on
//! an absent node or a short property (`chosen()`, `cpus()`, `memory()`,
//! `root()`, `cell_sizes()`, `reg()`, `Chosen::bootargs()`) and `find_node()`
//! (which recurses forever through a self-referencing alias) are not used.
//!
//! Addresses in `reg` are translated to CPU physical addresses through the
//! `ranges` of every ancestor bus (`fdt` 0.1.5 does not translate). A bus
//! without `ranges` is not translatable, and devices behind it are skipped.

use core::fmt;
use fdt::{node::FdtNode, Fdt};

/// FDT header magic.
pub const FDT_MAGIC: u32 = 0xd00d_feed;

// Structure-block tokens and header size, shared with the writer.
pub(crate) const FDT_BEGIN_NODE: u32 = 1;
pub(crate) const FDT_END_NODE: u32 = 2;
pub(crate) const FDT_PROP: u32 = 3;
pub(crate) const FDT_NOP: u32 = 4;
pub(crate) const FDT_END: u32 = 9;

pub(crate) const HEADER_LEN: usize = 40;
/// Deepest node nesting accepted (the root counts as depth 1).
pub const MAX_DEPTH: usize = 16;

/// A physical address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemRange {
    pub base: u64,
    pub size: u64,
}

impl MemRange {
    pub const fn new(base: u64, size: u64) -> Self {
        Self { base, size }
    }

    /// One past the last byte (saturating at `u64::MAX`).
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether `addr` lies inside the range.
    pub const fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr - self.base < self.size
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicVersion {
    V2,
    V3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GicInfo {
    pub version: GicVersion,
    pub gicd: MemRange,
    pub gicc: Option<MemRange>,
    /// GICv3: the first redistributor region.
    pub gicr: Option<MemRange>,
    pub gich: Option<MemRange>,
    pub gicv: Option<MemRange>,
    /// INTID of the virtual-interface maintenance interrupt.
    pub maintenance_intid: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UartKind {
    /// "arm,pl011"
    Pl011,
    /// Something else (only reported when the tree has no enabled PL011 and
    /// `/chosen/stdout-path` names another device).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UartInfo {
    pub base: u64,
    pub size: u64,
    pub compatible: UartKind,
    pub intid: Option<u32>,
}

/// Generic timer interrupts as GIC INTIDs (a PPI n is INTID 16+n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerInfo {
    pub sec_phys_intid: u32,
    pub phys_intid: u32,
    pub virt_intid: u32,
    pub hyp_intid: u32,
    pub frequency: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsciMethod {
    Smc,
    Hvc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuEnable {
    Psci,
    SpinTable { release_addr: u64 },
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuInfo {
    pub mpidr: u64,
    pub enable: CpuEnable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineInfo {
    /// Root `model` (truncated to 64 bytes at a character boundary).
    pub model: heapless::String<64>,
    /// Root's first `compatible` string (truncated like `model`).
    pub compatible: heapless::String<64>,
    /// All reg entries of all `/memory` nodes, as the tree states them
    /// (a firmware-filled tree may contain zero sizes).
    pub memory: heapless::Vec<MemRange, 8>,
    /// `/memreserve/` entries and enabled `/reserved-memory` children with a
    /// non-empty `reg`.
    pub reserved: heapless::Vec<MemRange, 16>,
    pub uart: Option<UartInfo>,
    pub gic: Option<GicInfo>,
    pub timer: Option<TimerInfo>,
    pub psci: Option<PsciMethod>,
    pub cpus: heapless::Vec<CpuInfo, 16>,
    /// `/chosen/bootargs`, "" if none.
    pub bootargs: heapless::String<512>,
    /// Broadcom PM/watchdog block (used to power off a Raspberry Pi 4).
    pub power: Option<MemRange>,
    /// `virtio,mmio` transports (QEMU virt has 32, most of them empty):
    /// register window and interrupt INTID.
    pub virtio_mmio: heapless::Vec<(MemRange, u32), 32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtError {
    /// Shorter than its header or its `totalsize`.
    Truncated,
    /// No FDT magic.
    BadMagic,
    /// Unsupported version (needs 16 or 17 compatible).
    BadVersion,
    /// Header offsets/sizes inconsistent.
    BadHeader,
    /// Malformed structure block (bad token, nesting, lengths).
    BadStructure,
    /// A property name offset outside the strings block.
    BadStringOffset,
    /// Nodes nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A property that must be well formed is not.
    BadProperty(&'static str),
    /// More entries than the fixed-size table holds.
    TooMany(&'static str),
    /// `/chosen/bootargs` longer than 512 bytes.
    BootargsTooLong,
    /// A `reg` address cannot be translated to a CPU address.
    NotTranslatable,
    /// Path does not name a node.
    NotFound,
}

impl fmt::Display for DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtError::Truncated => f.write_str("device tree truncated"),
            DtError::BadMagic => f.write_str("not a device tree (bad magic)"),
            DtError::BadVersion => f.write_str("unsupported device tree version"),
            DtError::BadHeader => f.write_str("inconsistent device tree header"),
            DtError::BadStructure => f.write_str("malformed device tree structure block"),
            DtError::BadStringOffset => f.write_str("property name outside strings block"),
            DtError::TooDeep => f.write_str("device tree nested too deeply"),
            DtError::BadProperty(p) => write!(f, "malformed property {p}"),
            DtError::TooMany(what) => write!(f, "too many {what} entries"),
            DtError::BootargsTooLong => f.write_str("bootargs longer than 512 bytes"),
            DtError::NotTranslatable => f.write_str("address not translatable"),
            DtError::NotFound => f.write_str("node not found"),
        }
    }
}

// ---------------------------------------------------------------------------
// Low-level reading

fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be64(b: &[u8], off: usize) -> Option<u64> {
    let hi = be32(b, off)? as u64;
    let lo = be32(b, off.checked_add(4)?)? as u64;
    Some((hi << 32) | lo)
}

/// Reads a number of `cells` (1 or 2) big-endian cells.
fn read_cells(b: &[u8], off: usize, cells: u32) -> Option<u64> {
    match cells {
        0 => Some(0),
        1 => be32(b, off).map(u64::from),
        2 => be64(b, off),
        _ => None,
    }
}

fn align4(x: usize) -> Option<usize> {
    x.checked_add(3).map(|v| v & !3)
}

/// NUL-terminated UTF-8 string at `off` (without the NUL).
fn cstr_at(b: &[u8], off: usize) -> Option<&str> {
    let rest = b.get(off..)?;
    let n = rest.iter().position(|&c| c == 0)?;
    core::str::from_utf8(&rest[..n]).ok()
}

/// The first string of a string(-list) value.
fn first_str(v: &[u8]) -> &[u8] {
    v.split(|&c| c == 0).next().unwrap_or(v)
}

/// Reads an FDT header's magic and `totalsize`; `None` if `header` is not the
/// start of a device tree.
pub fn total_size(header: &[u8]) -> Option<usize> {
    if be32(header, 0)? != FDT_MAGIC {
        return None;
    }
    let size = be32(header, 4)? as usize;
    if size < HEADER_LEN {
        return None;
    }
    Some(size)
}

// ---------------------------------------------------------------------------
// Validation: everything `fdt` 0.1.5 would otherwise panic on.

/// Checks the header, the structure block, the property names and the
/// reservation map, then hands the blob (cut to `totalsize`) to `fdt`.
fn check_blob(dtb: &[u8]) -> Result<Fdt<'_>, DtError> {
    if dtb.len() < 8 {
        return Err(DtError::Truncated);
    }
    if be32(dtb, 0) != Some(FDT_MAGIC) {
        return Err(DtError::BadMagic);
    }
    if dtb.len() < HEADER_LEN {
        return Err(DtError::Truncated);
    }
    let h = |i: usize| be32(dtb, i * 4).unwrap_or(0) as usize;
    let (total, off_struct, off_strings, off_rsv, version, last_comp) =
        (h(1), h(2), h(3), h(4), h(5), h(6));
    // `fdt` takes the structure block's size from the header whatever the
    // version, so a version-16 blob must carry a valid `size_dt_struct` too.
    let (size_strings, size_struct) = (h(8), h(9));
    if total < HEADER_LEN {
        return Err(DtError::BadHeader);
    }
    if total > dtb.len() {
        return Err(DtError::Truncated);
    }
    if version < 16 || last_comp > 17 {
        return Err(DtError::BadVersion);
    }
    let blob = &dtb[..total];
    let block = |off: usize, len: usize| -> Result<&[u8], DtError> {
        let end = off.checked_add(len).ok_or(DtError::BadHeader)?;
        if off < HEADER_LEN || end > total {
            return Err(DtError::BadHeader);
        }
        Ok(&blob[off..end])
    };
    if off_struct % 4 != 0 || off_rsv % 8 != 0 {
        return Err(DtError::BadHeader);
    }
    let (structs, strings) = (
        block(off_struct, size_struct)?,
        block(off_strings, size_strings)?,
    );
    let rsvmap = block(off_rsv, 0).map(|_| &blob[off_rsv..])?;
    check_structure(structs, strings)?;
    // The reservation map must be terminated inside the blob.
    let mut off = 0;
    loop {
        let a = be64(rsvmap, off).ok_or(DtError::BadHeader)?;
        let s = be64(rsvmap, off + 8).ok_or(DtError::BadHeader)?;
        if a == 0 && s == 0 {
            break;
        }
        off += 16;
    }
    Fdt::new(blob).map_err(|_| DtError::BadHeader)
}

/// Checks the whole token stream once: one root, balanced nesting no deeper
/// than [`MAX_DEPTH`], UTF-8 node and property names, property values and
/// names in bounds, properties before subnodes, `FDT_NOP` only outside the
/// root (`fdt` 0.1.5 mis-parses it elsewhere).
fn check_structure(b: &[u8], strings: &[u8]) -> Result<(), DtError> {
    let mut off = 0usize;
    let mut depth = 0usize;
    let mut root_done = false;
    // Whether the current node has had a subnode (so no more properties).
    let mut after_child = false;
    loop {
        let tok = be32(b, off).ok_or(DtError::BadStructure)?;
        off += 4;
        match tok {
            FDT_BEGIN_NODE => {
                if root_done {
                    return Err(DtError::BadStructure);
                }
                let name = cstr_at(b, off).ok_or(DtError::BadStructure)?;
                off = align4(off + name.len() + 1).ok_or(DtError::BadStructure)?;
                if off > b.len() {
                    return Err(DtError::BadStructure);
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(DtError::TooDeep);
                }
                after_child = false;
            }
            FDT_END_NODE => {
                depth = depth.checked_sub(1).ok_or(DtError::BadStructure)?;
                root_done = depth == 0;
                after_child = true;
            }
            FDT_PROP => {
                if depth == 0 || after_child {
                    return Err(DtError::BadStructure);
                }
                let len = be32(b, off).ok_or(DtError::BadStructure)? as usize;
                let nameoff = be32(b, off + 4).ok_or(DtError::BadStructure)? as usize;
                off += 8;
                let end = off.checked_add(len).ok_or(DtError::BadStructure)?;
                if end > b.len() {
                    return Err(DtError::BadStructure);
                }
                cstr_at(strings, nameoff).ok_or(DtError::BadStringOffset)?;
                off = align4(end).ok_or(DtError::BadStructure)?;
            }
            FDT_NOP if depth == 0 => {}
            FDT_END if depth == 0 && root_done => return Ok(()),
            _ => return Err(DtError::BadStructure),
        }
    }
}

// ---------------------------------------------------------------------------
// Nodes and properties (through `fdt`)

type Node<'b, 'a> = FdtNode<'b, 'a>;

/// Depth-first walk; `f` sees the path from the root to each node.
fn walk<'b, 'a>(
    fdt: &'b Fdt<'a>,
    mut f: impl FnMut(&[Node<'b, 'a>]) -> Result<(), DtError>,
) -> Result<(), DtError> {
    fn visit<'b, 'a, F>(
        stack: &mut heapless::Vec<Node<'b, 'a>, MAX_DEPTH>,
        node: Node<'b, 'a>,
        f: &mut F,
    ) -> Result<(), DtError>
    where
        F: FnMut(&[Node<'b, 'a>]) -> Result<(), DtError>,
    {
        stack.push(node).map_err(|_| DtError::TooDeep)?;
        f(stack)?;
        for child in node.children() {
            visit(stack, child, f)?;
        }
        stack.pop();
        Ok(())
    }
    let root = fdt.all_nodes().next().ok_or(DtError::BadStructure)?;
    visit(&mut heapless::Vec::new(), root, &mut f)
}

fn prop<'a>(node: Node<'_, 'a>, name: &str) -> Option<&'a [u8]> {
    node.property(name).map(|p| p.value)
}

fn prop_u32(node: Node<'_, '_>, name: &str) -> Option<u32> {
    prop(node, name)?.try_into().ok().map(u32::from_be_bytes)
}

/// First string of a string(-list) property.
fn prop_str<'a>(node: Node<'_, 'a>, name: &str) -> Option<&'a [u8]> {
    prop(node, name).map(first_str)
}

/// Whether a string of `compatible` satisfies `pred`. (`fdt`'s
/// `Compatible::all` stops at the first non-UTF-8 string and reads the last
/// `compatible` property rather than the first.)
fn is_compatible(node: Node<'_, '_>, mut pred: impl FnMut(&[u8]) -> bool) -> bool {
    prop(node, "compatible").is_some_and(|v| {
        let v = v.strip_suffix(&[0]).unwrap_or(v);
        v.split(|&c| c == 0).any(&mut pred)
    })
}

fn is_enabled(node: Node<'_, '_>) -> bool {
    matches!(prop_str(node, "status"), None | Some(b"okay" | b"ok"))
}

fn address_cells(node: Node<'_, '_>) -> u32 {
    prop_u32(node, "#address-cells").unwrap_or(2)
}

fn size_cells(node: Node<'_, '_>) -> u32 {
    prop_u32(node, "#size-cells").unwrap_or(1)
}

// ---------------------------------------------------------------------------
// Address translation

/// Translates a bus address seen by the last node of `path` (i.e. an address
/// in its parent's address space) up to a CPU physical address, through the
/// `ranges` of every ancestor bus.
fn translate(path: &[Node<'_, '_>], mut addr: u64) -> Result<u64, DtError> {
    if path.len() < 2 {
        return Ok(addr);
    }
    // path[i] for i in 1..len-1 are the buses between the root and the node.
    for i in (1..path.len() - 1).rev() {
        let bus = path[i];
        let bus_parent = path[i - 1];
        let ranges = prop(bus, "ranges").ok_or(DtError::NotTranslatable)?;
        if ranges.is_empty() {
            continue;
        }
        let ca = address_cells(bus);
        let sc = size_cells(bus);
        let pa = address_cells(bus_parent);
        if !(1..=2).contains(&ca) || !(1..=2).contains(&pa) || !(1..=2).contains(&sc) {
            return Err(DtError::NotTranslatable);
        }
        let entry = ((ca + pa + sc) * 4) as usize;
        if ranges.len() % entry != 0 {
            return Err(DtError::BadProperty("ranges"));
        }
        let mut found = None;
        for e in ranges.chunks_exact(entry) {
            let child = read_cells(e, 0, ca).ok_or(DtError::BadProperty("ranges"))?;
            let parent =
                read_cells(e, (ca * 4) as usize, pa).ok_or(DtError::BadProperty("ranges"))?;
            let size = read_cells(e, ((ca + pa) * 4) as usize, sc)
                .ok_or(DtError::BadProperty("ranges"))?;
            if MemRange::new(child, size).contains(addr) {
                found = Some(
                    parent
                        .checked_add(addr - child)
                        .ok_or(DtError::NotTranslatable)?,
                );
                break;
            }
        }
        addr = found.ok_or(DtError::NotTranslatable)?;
    }
    Ok(addr)
}

/// Entry `index` of the `reg` of the last node of `path`, translated to a CPU
/// physical address. `Ok(None)` if there is no such entry.
fn reg_entry(path: &[Node<'_, '_>], index: usize) -> Result<Option<MemRange>, DtError> {
    let [.., parent, node] = path else {
        return Ok(None);
    };
    let Some(reg) = prop(*node, "reg") else {
        return Ok(None);
    };
    let ac = address_cells(*parent);
    let sc = size_cells(*parent);
    if !(1..=2).contains(&ac) || sc > 2 {
        return Err(DtError::BadProperty("#address-cells"));
    }
    let entry = ((ac + sc) * 4) as usize;
    if reg.len() % entry != 0 {
        return Err(DtError::BadProperty("reg"));
    }
    let Some(off) = index.checked_mul(entry) else {
        return Ok(None);
    };
    if off >= reg.len() {
        return Ok(None);
    }
    let base = read_cells(reg, off, ac).ok_or(DtError::BadProperty("reg"))?;
    let size = read_cells(reg, off + (ac * 4) as usize, sc).ok_or(DtError::BadProperty("reg"))?;
    let base = translate(path, base)?;
    Ok(Some(MemRange::new(base, size)))
}

// ---------------------------------------------------------------------------
// Paths

/// Whether `component` (from a path) names the node called `name`: exact, or
/// without a unit address when `component` has none.
fn name_matches(name: &[u8], component: &[u8]) -> bool {
    if name == component {
        return true;
    }
    if component.contains(&b'@') {
        return false;
    }
    name.split(|&c| c == b'@').next() == Some(component)
}

/// Whether `path` (absolute, e.g. "/soc/serial@7e201000") names the last node
/// of `stack`.
fn path_matches(stack: &[Node<'_, '_>], path: &[u8]) -> bool {
    if path.first() != Some(&b'/') {
        return false;
    }
    let mut comps = path.split(|&c| c == b'/').filter(|c| !c.is_empty());
    for node in stack.iter().skip(1) {
        match comps.next() {
            Some(c) if name_matches(node.name.as_bytes(), c) => {}
            _ => return false,
        }
    }
    comps.next().is_none()
}

type PathBuf = heapless::Vec<u8, 256>;

/// Resolves a `stdout-path`-style reference: drops ":options" and expands a
/// leading alias. `None` if it cannot be resolved.
fn resolve_path(fdt: &Fdt<'_>, path: &[u8]) -> Option<PathBuf> {
    let path = first_str(path);
    let path = path.split(|&c| c == b':').next().unwrap_or(path);
    let mut out = PathBuf::new();
    if path.first() == Some(&b'/') {
        out.extend_from_slice(path).ok()?;
        return Some(out);
    }
    let (alias, rest) = match path.iter().position(|&c| c == b'/') {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, &[][..]),
    };
    if alias.is_empty() {
        return None;
    }
    let alias = core::str::from_utf8(alias).ok()?;
    let target = first_str(fdt.aliases()?.resolve(alias)?.as_bytes());
    if target.first() != Some(&b'/') {
        return None;
    }
    out.extend_from_slice(target).ok()?;
    out.extend_from_slice(rest).ok()?;
    Some(out)
}

// ---------------------------------------------------------------------------
// Interrupts

/// Decodes a 3-cell GIC interrupt specifier to an INTID.
fn gic_intid(kind: u32, num: u32) -> Option<u32> {
    match kind {
        0 if num < 988 => Some(32 + num),
        1 if num < 16 => Some(16 + num),
        _ => None,
    }
}

/// INTID of the `index`th 3-cell specifier of `interrupts`.
fn interrupt(node: Node<'_, '_>, index: usize) -> Option<u32> {
    let v = prop(node, "interrupts")?;
    if v.len() % 12 != 0 {
        return None;
    }
    let off = index.checked_mul(12)?;
    gic_intid(be32(v, off)?, be32(v, off + 4)?)
}

// ---------------------------------------------------------------------------
// The machine description

fn push_truncated<const N: usize>(s: &mut heapless::String<N>, v: &[u8]) {
    let text = match core::str::from_utf8(v) {
        Ok(t) => t,
        Err(e) => core::str::from_utf8(&v[..e.valid_up_to()]).unwrap_or(""),
    };
    for ch in text.chars() {
        if s.push(ch).is_err() {
            break;
        }
    }
}

const GIC_V2_COMPATIBLE: [&str; 3] = ["arm,cortex-a15-gic", "arm,gic-400", "arm,cortex-a7-gic"];
const POWER_COMPATIBLE: [&str; 3] = ["brcm,bcm2835-pm", "brcm,bcm2711-pm", "brcm,bcm2835-pm-wdt"];

fn gic_info(path: &[Node<'_, '_>], v3: bool) -> Result<Option<GicInfo>, DtError> {
    let node = path[path.len() - 1];
    let reg = |i: usize| reg_entry(path, i);
    let Some(gicd) = reg(0)? else {
        return Ok(None);
    };
    let maintenance_intid = interrupt(node, 0);
    if v3 {
        let nr = prop_u32(node, "#redistributor-regions").unwrap_or(1).max(1) as usize;
        let c = 1 + nr; // GICC, GICH, GICV follow all redistributor regions.
        Ok(Some(GicInfo {
            version: GicVersion::V3,
            gicd,
            gicr: reg(1)?,
            gicc: reg(c)?,
            gich: reg(c + 1)?,
            gicv: reg(c + 2)?,
            maintenance_intid,
        }))
    } else {
        Ok(Some(GicInfo {
            version: GicVersion::V2,
            gicd,
            gicc: reg(1)?,
            gicr: None,
            gich: reg(2)?,
            gicv: reg(3)?,
            maintenance_intid,
        }))
    }
}

fn timer_info(node: Node<'_, '_>) -> Option<TimerInfo> {
    Some(TimerInfo {
        sec_phys_intid: interrupt(node, 0)?,
        phys_intid: interrupt(node, 1)?,
        virt_intid: interrupt(node, 2)?,
        hyp_intid: interrupt(node, 3)?,
        frequency: prop_u32(node, "clock-frequency"),
    })
}

fn cpu_info(cpus: Node<'_, '_>, cpu: Node<'_, '_>) -> Option<CpuInfo> {
    let ac = address_cells(cpus);
    let reg = prop(cpu, "reg")?;
    if !(1..=2).contains(&ac) || reg.len() < (ac * 4) as usize {
        return None;
    }
    let mpidr = read_cells(reg, 0, ac)?;
    let method = prop_str(cpu, "enable-method").or_else(|| prop_str(cpus, "enable-method"));
    let enable = match method {
        Some(b"psci") => CpuEnable::Psci,
        // A 4- or 8-byte value; `as_usize` is lossless on the 64-bit targets.
        Some(b"spin-table") => match cpu.property("cpu-release-addr").and_then(|p| p.as_usize()) {
            Some(a) => CpuEnable::SpinTable {
                release_addr: a as u64,
            },
            None => CpuEnable::Unknown,
        },
        _ => CpuEnable::Unknown,
    };
    Some(CpuInfo { mpidr, enable })
}

/// Parses the machine description out of a flattened device tree.
/// Removes `FDT_NOP` tokens from a tree in place, shrinking its structure
/// block (the header's `size_dt_struct` is updated; the freed tail is filled
/// with `FDT_END`). Loaders and firmware that edit a tree (QEMU, the
/// Raspberry Pi firmware) leave NOPs where they deleted or moved things, and
/// the `fdt` crate cannot read them inside nodes. Returns how many were removed.
pub fn strip_nops(blob: &mut [u8]) -> Result<usize, DtError> {
    let be = |b: &[u8], o: usize| -> Result<u32, DtError> {
        Ok(u32::from_be_bytes(
            b.get(o..o + 4)
                .ok_or(DtError::Truncated)?
                .try_into()
                .unwrap(),
        ))
    };
    if be(blob, 0)? != FDT_MAGIC {
        return Err(DtError::BadMagic);
    }
    let total = (be(blob, 4)? as usize).min(blob.len());
    let off = be(blob, 8)? as usize;
    let size = be(blob, 36)? as usize;
    let end = off
        .checked_add(size)
        .filter(|&e| e <= total)
        .ok_or(DtError::BadHeader)?;
    let (mut r, mut w, mut removed) = (off, off, 0);
    while r < end {
        let tok = be(blob, r)?;
        let len = match tok {
            FDT_BEGIN_NODE => {
                // NUL-terminated name, padded to 4 bytes.
                let name = blob.get(r + 4..end).ok_or(DtError::Truncated)?;
                let n = name
                    .iter()
                    .position(|&c| c == 0)
                    .ok_or(DtError::BadStructure)?;
                4 + (n + 1).div_ceil(4) * 4
            }
            FDT_PROP => 12 + (be(blob, r + 4)? as usize).div_ceil(4) * 4,
            FDT_END_NODE | FDT_END => 4,
            FDT_NOP => {
                r += 4;
                removed += 1;
                continue;
            }
            _ => return Err(DtError::BadStructure),
        };
        if r + len > end {
            return Err(DtError::Truncated);
        }
        blob.copy_within(r..r + len, w);
        w += len;
        r += len;
        if tok == FDT_END {
            break;
        }
    }
    for i in (w..end).step_by(4) {
        blob[i..i + 4].copy_from_slice(&FDT_END.to_be_bytes());
    }
    blob[36..40].copy_from_slice(&((w - off) as u32).to_be_bytes());
    Ok(removed)
}

pub fn parse(dtb: &[u8]) -> Result<MachineInfo, DtError> {
    let fdt = check_blob(dtb)?;
    let mut info = MachineInfo {
        model: heapless::String::new(),
        compatible: heapless::String::new(),
        memory: heapless::Vec::new(),
        reserved: heapless::Vec::new(),
        uart: None,
        gic: None,
        timer: None,
        psci: None,
        cpus: heapless::Vec::new(),
        bootargs: heapless::String::new(),
        power: None,
        virtio_mmio: heapless::Vec::new(),
    };

    // /memreserve/ (addresses and sizes are 64-bit on the 64-bit targets).
    for r in fdt.memory_reservations() {
        if r.size() != 0 {
            info.reserved
                .push(MemRange::new(r.address() as u64, r.size() as u64))
                .map_err(|_| DtError::TooMany("reserved"))?;
        }
    }

    // Root properties and /chosen.
    let root = fdt.all_nodes().next().ok_or(DtError::BadStructure)?;
    if let Some(m) = prop_str(root, "model") {
        push_truncated(&mut info.model, m);
    }
    if let Some(c) = prop_str(root, "compatible") {
        push_truncated(&mut info.compatible, c);
    }
    let mut stdout = None;
    if let Some(chosen) = root.children().find(|n| n.name == "chosen") {
        if let Some(args) = prop_str(chosen, "bootargs") {
            let s = core::str::from_utf8(args).map_err(|_| DtError::BadProperty("bootargs"))?;
            info.bootargs
                .push_str(s)
                .map_err(|_| DtError::BootargsTooLong)?;
        }
        let sp = prop(chosen, "stdout-path").or_else(|| prop(chosen, "linux,stdout-path"));
        stdout = sp.and_then(|sp| resolve_path(&fdt, sp));
    }

    // Devices.
    let mut uart_chosen: Option<UartInfo> = None;
    let mut uart_first: Option<UartInfo> = None;
    let mut uart_other: Option<UartInfo> = None;
    walk(&fdt, |stack| {
        let node = stack[stack.len() - 1];
        let depth = stack.len();
        let enabled = is_enabled(node);
        let is_stdout = stdout.as_ref().is_some_and(|p| path_matches(stack, p));

        // Memory.
        if depth == 2
            && (prop_str(node, "device_type") == Some(b"memory")
                || name_matches(node.name.as_bytes(), b"memory"))
            && enabled
        {
            let mut i = 0;
            while let Some(r) = reg_entry(stack, i)? {
                info.memory
                    .push(r)
                    .map_err(|_| DtError::TooMany("memory"))?;
                i += 1;
            }
        }

        // Reserved memory.
        if depth == 3 && stack[1].name == "reserved-memory" && enabled {
            let mut i = 0;
            while let Ok(Some(r)) = reg_entry(stack, i) {
                if r.size != 0 {
                    info.reserved
                        .push(r)
                        .map_err(|_| DtError::TooMany("reserved"))?;
                }
                i += 1;
            }
        }

        // CPUs ("disabled" CPUs are offline but startable; "fail" ones are not).
        if depth == 3
            && stack[1].name == "cpus"
            && prop_str(node, "device_type") == Some(b"cpu")
            && !prop_str(node, "status").is_some_and(|s| s.starts_with(b"fail"))
        {
            if let Some(cpu) = cpu_info(stack[1], node) {
                info.cpus.push(cpu).map_err(|_| DtError::TooMany("cpus"))?;
            }
        }

        if !enabled {
            return Ok(());
        }

        // UART.
        let uart_at = |kind| -> Option<UartInfo> {
            let r = reg_entry(stack, 0).ok()??;
            Some(UartInfo {
                base: r.base,
                size: r.size,
                compatible: kind,
                intid: interrupt(node, 0),
            })
        };
        if is_compatible(node, |c| c == b"arm,pl011") {
            if is_stdout && uart_chosen.is_none() {
                uart_chosen = uart_at(UartKind::Pl011);
            }
            if uart_first.is_none() {
                uart_first = uart_at(UartKind::Pl011);
            }
        } else if is_stdout && uart_other.is_none() {
            uart_other = uart_at(UartKind::Other);
        }

        // GIC.
        if info.gic.is_none() {
            if is_compatible(node, |c| c == b"arm,gic-v3") {
                info.gic = gic_info(stack, true).ok().flatten();
            } else if is_compatible(node, |c| {
                GIC_V2_COMPATIBLE.iter().any(|g| g.as_bytes() == c)
            }) {
                info.gic = gic_info(stack, false).ok().flatten();
            }
        }

        // Timer.
        if info.timer.is_none() && is_compatible(node, |c| c == b"arm,armv8-timer") {
            info.timer = timer_info(node);
        }

        // PSCI.
        if info.psci.is_none() && is_compatible(node, |c| c.starts_with(b"arm,psci")) {
            info.psci = match prop_str(node, "method") {
                Some(b"smc") => Some(PsciMethod::Smc),
                Some(b"hvc") => Some(PsciMethod::Hvc),
                _ => None,
            };
        }

        // virtio-mmio transports (candidates for a driver domain).
        if is_compatible(node, |c| c == b"virtio,mmio") {
            if let (Ok(Some(r)), Some(intid)) = (reg_entry(stack, 0), interrupt(node, 0)) {
                let _ = info.virtio_mmio.push((r, intid));
            }
        }

        // Power controller.
        if info.power.is_none()
            && is_compatible(node, |c| POWER_COMPATIBLE.iter().any(|p| p.as_bytes() == c))
        {
            info.power = reg_entry(stack, 0).ok().flatten();
        }
        Ok(())
    })?;
    info.uart = uart_chosen.or(uart_first).or(uart_other);
    Ok(info)
}

/// Runs `f` on the path to the first node named by `path`.
fn at_path<T>(
    dtb: &[u8],
    path: &str,
    f: impl Fn(&[Node<'_, '_>]) -> Result<T, DtError>,
) -> Result<T, DtError> {
    let fdt = check_blob(dtb)?;
    let mut result = Err(DtError::NotFound);
    walk(&fdt, |stack| {
        if result.is_err() && path_matches(stack, path.as_bytes()) {
            result = f(stack);
        }
        Ok(())
    })?;
    result
}

/// Entry `index` of the `reg` of the node at `path` (absolute, aliases not
/// expanded), translated to a CPU physical address. `Ok(None)` if the node
/// has no such entry; `Err(NotFound)` if there is no such node.
pub fn node_reg(dtb: &[u8], path: &str, index: usize) -> Result<Option<MemRange>, DtError> {
    at_path(dtb, path, |stack| reg_entry(stack, index))
}

/// Number of `reg` entries of the node at `path` that translate cleanly.
pub fn node_reg_count(dtb: &[u8], path: &str) -> Result<usize, DtError> {
    at_path(dtb, path, |stack| {
        let mut n = 0;
        while let Ok(Some(_)) = reg_entry(stack, n) {
            n += 1;
        }
        Ok(n)
    })
}

#[cfg(test)]
mod tests;

/// Shapes `fdt` 0.1.5 would panic on: each is an error or handled here.
#[cfg(test)]
mod fdt_guard_tests {
    use super::*;
    use crate::fdt_writer::FdtWriter;
    use alloc::vec::Vec;

    /// A blob with the given structure words and strings block.
    fn raw(words: &[u32], strings: &[u8]) -> Vec<u8> {
        let size_struct = words.len() as u32 * 4;
        let off_strings = 56 + size_struct;
        let total = off_strings + strings.len() as u32;
        let header = [FDT_MAGIC, total, 56, off_strings, 40, 17, 16, 0];
        let sizes = [strings.len() as u32, size_struct];
        let mut v: Vec<u8> = header
            .iter()
            .chain(&sizes)
            .flat_map(|w| w.to_be_bytes())
            .collect();
        v.extend_from_slice(&[0; 16]);
        v.extend(words.iter().flat_map(|w| w.to_be_bytes()));
        v.extend_from_slice(strings);
        v
    }

    const B: u32 = FDT_BEGIN_NODE;
    const E: u32 = FDT_END_NODE;
    const P: u32 = FDT_PROP;
    const N: u32 = FDT_NOP;
    const NAME_A: u32 = 0x6100_0000; // "a"

    #[test]
    fn token_order_and_names() {
        let ok = |w: &[u32]| parse(&raw(w, b"x\0")).map(|_| ());
        assert_eq!(ok(&[B, 0, P, 4, 0, 1, B, NAME_A, E, E, FDT_END]), Ok(()));
        // FDT_NOP is fine outside the root only.
        assert_eq!(ok(&[N, B, 0, B, NAME_A, E, E, N, FDT_END]), Ok(()));
        let bad = Err(DtError::BadStructure);
        assert_eq!(ok(&[B, 0, N, P, 4, 0, 1, B, NAME_A, E, E, FDT_END]), bad);
        assert_eq!(ok(&[B, 0, B, NAME_A, N, E, E, FDT_END]), bad);
        // properties after a subnode
        assert_eq!(ok(&[B, 0, B, NAME_A, E, P, 4, 0, 1, E, FDT_END]), bad);
        // non-UTF-8 node and property names
        assert_eq!(ok(&[B, 0, B, 0xff00_0000, E, E, FDT_END]), bad);
        let blob = raw(&[B, 0, P, 4, 0, 1, E, FDT_END], b"\xff\0");
        assert_eq!(parse(&blob), Err(DtError::BadStringOffset));
    }

    #[test]
    fn short_cells_self_alias_empty_bootargs() {
        let mut w = FdtWriter::new();
        let root = w.begin_node("").unwrap();
        w.property("#address-cells", &[0, 1]).unwrap(); // too short: default 2
        let a = w.begin_node("aliases").unwrap();
        w.property_string("serial0", "serial0").unwrap();
        w.end_node(a).unwrap();
        let c = w.begin_node("chosen").unwrap();
        w.property_string("stdout-path", "serial0").unwrap();
        w.property_null("bootargs").unwrap();
        w.end_node(c).unwrap();
        let m = w.begin_node("memory@40000000").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_cells("reg", &[0, 0x4000_0000, 0x1000_0000])
            .unwrap();
        w.end_node(m).unwrap();
        let u = w.begin_node("uart@9000000").unwrap();
        w.property_string("compatible", "arm,pl011").unwrap();
        w.property_cells("reg", &[0, 0x0900_0000, 0x1000]).unwrap();
        w.end_node(u).unwrap();
        w.end_node(root).unwrap();
        let m = parse(&w.finish().unwrap()).unwrap();
        assert_eq!(
            m.memory.as_slice(),
            &[MemRange::new(0x4000_0000, 0x1000_0000)]
        );
        assert_eq!(m.uart.map(|u| u.base), Some(0x0900_0000));
        assert_eq!(m.bootargs.as_str(), "");
    }
}

#[cfg(test)]
mod nop_tests {
    use super::*;

    #[test]
    fn a_tree_edited_by_qemu_parses_after_stripping_nops() {
        // QEMU's raspi4b machine edits the Pi tree it is given (status,
        // /chosen, /memory) and leaves FDT_NOP tokens behind.
        let mut b = include_bytes!("../testdata/qemu-raspi4b-edited.dtb").to_vec();
        assert!(parse(&b).is_err(), "the fixture has NOPs inside nodes");
        assert!(strip_nops(&mut b).unwrap() > 0);
        let info = parse(&b).unwrap();
        assert_eq!(info.memory[0].base, 0);
        assert!(info.memory[0].size > 0, "QEMU filled in the memory size");
        assert_eq!(info.uart.unwrap().base, 0xfe20_1000);
        assert_eq!(info.bootargs.as_str(), "semihosting dom=a");
        // Stripping twice removes nothing more and changes nothing.
        let once = b.clone();
        assert_eq!(strip_nops(&mut b).unwrap(), 0);
        assert_eq!(b, once);
    }

    #[test]
    fn strip_nops_never_panics_on_garbage() {
        let orig = include_bytes!("../testdata/qemu-raspi4b-edited.dtb").to_vec();
        for cut in (0..orig.len()).step_by(97) {
            let mut b = orig[..cut].to_vec();
            let _ = strip_nops(&mut b);
        }
        let mut seed = 7u64;
        for _ in 0..300 {
            let mut b = orig.clone();
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (seed >> 33) as usize % b.len();
            b[i] ^= (seed >> 8) as u8 | 1;
            if strip_nops(&mut b).is_ok() {
                let _ = parse(&b);
            }
        }
    }
}
