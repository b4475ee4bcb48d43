//! Machine description read from the flattened device tree the loader passes.
//!
//! This runs in the monitor before its MMU and heap are up, so nothing here
//! allocates and nothing panics: every read is bounds-checked and a malformed
//! blob yields a [`DtError`]. The whole structure block is validated once
//! (token stream, nesting, property name offsets) before anything is looked
//! up, so the later accessors can treat inconsistencies as "absent".
//!
//! Addresses in `reg` are translated to CPU physical addresses through the
//! `ranges` of every ancestor bus. A bus without `ranges` is not translatable,
//! and devices behind it are skipped.

use core::fmt;

/// FDT header magic.
pub const FDT_MAGIC: u32 = 0xd00d_feed;

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

const HEADER_LEN: usize = 40;
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

/// NUL-terminated string at `off` (without the NUL).
fn cstr_at(b: &[u8], off: usize) -> Option<&[u8]> {
    let rest = b.get(off..)?;
    let n = rest.iter().position(|&c| c == 0)?;
    Some(&rest[..n])
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
// Validated tree

#[derive(Clone, Copy)]
struct Fdt<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
    rsvmap: &'a [u8],
}

#[derive(Clone, Copy, Default)]
struct Node<'a> {
    name: &'a [u8],
    /// Offset into the structure block of the first token after the name.
    props: usize,
}

#[derive(Clone, Copy)]
struct Prop<'a> {
    name: &'a [u8],
    value: &'a [u8],
}

impl<'a> Fdt<'a> {
    fn new(dtb: &'a [u8]) -> Result<Self, DtError> {
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
        let size_strings = h(8);
        if total < HEADER_LEN {
            return Err(DtError::BadHeader);
        }
        if total > dtb.len() {
            return Err(DtError::Truncated);
        }
        if version < 16 || last_comp > 17 {
            return Err(DtError::BadVersion);
        }
        let size_struct = if version >= 17 {
            h(9)
        } else {
            total.checked_sub(off_struct).ok_or(DtError::BadHeader)?
        };
        let blob = &dtb[..total];
        let slice = |off: usize, len: usize| -> Result<&'a [u8], DtError> {
            let end = off.checked_add(len).ok_or(DtError::BadHeader)?;
            if off < HEADER_LEN || end > total {
                return Err(DtError::BadHeader);
            }
            Ok(&blob[off..end])
        };
        if off_struct % 4 != 0 || off_rsv % 8 != 0 {
            return Err(DtError::BadHeader);
        }
        let structs = slice(off_struct, size_struct)?;
        let strings = slice(off_strings, size_strings)?;
        if off_rsv < HEADER_LEN || off_rsv > total {
            return Err(DtError::BadHeader);
        }
        let rsvmap = &blob[off_rsv..];
        let fdt = Fdt {
            structs,
            strings,
            rsvmap,
        };
        fdt.validate()?;
        // The reservation map must be terminated inside the blob.
        let mut n = 0;
        loop {
            let a = be64(rsvmap, n * 16).ok_or(DtError::BadHeader)?;
            let s = be64(rsvmap, n * 16 + 8).ok_or(DtError::BadHeader)?;
            if a == 0 && s == 0 {
                break;
            }
            n += 1;
        }
        Ok(fdt)
    }

    /// Checks the whole token stream once.
    fn validate(&self) -> Result<(), DtError> {
        let b = self.structs;
        let mut off = 0usize;
        let mut depth = 0usize;
        let mut root_done = false;
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
                }
                FDT_END_NODE => {
                    if depth == 0 {
                        return Err(DtError::BadStructure);
                    }
                    depth -= 1;
                    if depth == 0 {
                        root_done = true;
                    }
                }
                FDT_PROP => {
                    if depth == 0 {
                        return Err(DtError::BadStructure);
                    }
                    let len = be32(b, off).ok_or(DtError::BadStructure)? as usize;
                    let nameoff = be32(b, off + 4).ok_or(DtError::BadStructure)? as usize;
                    off += 8;
                    let end = off.checked_add(len).ok_or(DtError::BadStructure)?;
                    if end > b.len() {
                        return Err(DtError::BadStructure);
                    }
                    cstr_at(self.strings, nameoff).ok_or(DtError::BadStringOffset)?;
                    off = align4(end).ok_or(DtError::BadStructure)?;
                }
                FDT_NOP => {}
                FDT_END => {
                    if depth != 0 || !root_done {
                        return Err(DtError::BadStructure);
                    }
                    return Ok(());
                }
                _ => return Err(DtError::BadStructure),
            }
        }
    }

    /// Depth-first walk; `f` sees the path from the root to each node.
    fn walk(&self, mut f: impl FnMut(&[Node<'a>]) -> Result<(), DtError>) -> Result<(), DtError> {
        let b = self.structs;
        let mut stack = [Node::default(); MAX_DEPTH];
        let mut depth = 0usize;
        let mut off = 0usize;
        loop {
            let tok = be32(b, off).ok_or(DtError::BadStructure)?;
            off += 4;
            match tok {
                FDT_BEGIN_NODE => {
                    let name = cstr_at(b, off).ok_or(DtError::BadStructure)?;
                    off = align4(off + name.len() + 1).ok_or(DtError::BadStructure)?;
                    if depth >= MAX_DEPTH {
                        return Err(DtError::TooDeep);
                    }
                    stack[depth] = Node { name, props: off };
                    depth += 1;
                    f(&stack[..depth])?;
                }
                FDT_END_NODE => {
                    depth = depth.checked_sub(1).ok_or(DtError::BadStructure)?;
                }
                FDT_PROP => {
                    let len = be32(b, off).ok_or(DtError::BadStructure)? as usize;
                    off = align4(off + 8 + len).ok_or(DtError::BadStructure)?;
                }
                FDT_NOP => {}
                FDT_END => return Ok(()),
                _ => return Err(DtError::BadStructure),
            }
        }
    }

    /// The properties of `node` (properties precede subnodes).
    fn props(&self, node: Node<'a>) -> PropIter<'a> {
        PropIter {
            fdt: *self,
            off: node.props,
        }
    }

    fn prop(&self, node: Node<'a>, name: &str) -> Option<&'a [u8]> {
        self.props(node)
            .find(|p| p.name == name.as_bytes())
            .map(|p| p.value)
    }

    fn prop_u32(&self, node: Node<'a>, name: &str) -> Option<u32> {
        let v = self.prop(node, name)?;
        if v.len() != 4 {
            return None;
        }
        be32(v, 0)
    }

    /// First string of a string(-list) property.
    fn prop_str(&self, node: Node<'a>, name: &str) -> Option<&'a [u8]> {
        let v = self.prop(node, name)?;
        Some(v.split(|&c| c == 0).next().unwrap_or(v))
    }

    fn is_compatible(&self, node: Node<'a>, compat: &str) -> bool {
        self.prop(node, "compatible")
            .is_some_and(|v| strings(v).any(|s| s == compat.as_bytes()))
    }

    fn is_compatible_prefix(&self, node: Node<'a>, prefix: &str) -> bool {
        self.prop(node, "compatible")
            .is_some_and(|v| strings(v).any(|s| s.starts_with(prefix.as_bytes())))
    }

    fn is_enabled(&self, node: Node<'a>) -> bool {
        match self.prop_str(node, "status") {
            None => true,
            Some(s) => s == b"okay" || s == b"ok",
        }
    }

    fn address_cells(&self, node: Node<'a>) -> u32 {
        self.prop_u32(node, "#address-cells").unwrap_or(2)
    }

    fn size_cells(&self, node: Node<'a>) -> u32 {
        self.prop_u32(node, "#size-cells").unwrap_or(1)
    }
}

/// Splits a string-list property value into its strings.
fn strings(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    let v = v.strip_suffix(&[0]).unwrap_or(v);
    v.split(|&c| c == 0)
}

struct PropIter<'a> {
    fdt: Fdt<'a>,
    off: usize,
}

impl<'a> Iterator for PropIter<'a> {
    type Item = Prop<'a>;

    fn next(&mut self) -> Option<Prop<'a>> {
        let b = self.fdt.structs;
        loop {
            let tok = be32(b, self.off)?;
            match tok {
                FDT_NOP => self.off += 4,
                FDT_PROP => {
                    let len = be32(b, self.off + 4)? as usize;
                    let nameoff = be32(b, self.off + 8)? as usize;
                    let start = self.off + 12;
                    let value = b.get(start..start.checked_add(len)?)?;
                    let name = cstr_at(self.fdt.strings, nameoff)?;
                    self.off = align4(start + len)?;
                    return Some(Prop { name, value });
                }
                _ => return None,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Address translation

/// Translates a bus address seen by the last node of `path` (i.e. an address
/// in its parent's address space) up to a CPU physical address, through the
/// `ranges` of every ancestor bus.
fn translate(fdt: &Fdt<'_>, path: &[Node<'_>], mut addr: u64) -> Result<u64, DtError> {
    if path.len() < 2 {
        return Ok(addr);
    }
    // path[i] for i in 1..len-1 are the buses between the root and the node.
    for i in (1..path.len() - 1).rev() {
        let bus = path[i];
        let bus_parent = path[i - 1];
        let ranges = fdt.prop(bus, "ranges").ok_or(DtError::NotTranslatable)?;
        if ranges.is_empty() {
            continue;
        }
        let ca = fdt.address_cells(bus);
        let sc = fdt.size_cells(bus);
        let pa = fdt.address_cells(bus_parent);
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
fn reg_entry(fdt: &Fdt<'_>, path: &[Node<'_>], index: usize) -> Result<Option<MemRange>, DtError> {
    let Some((&node, parents)) = path.split_last() else {
        return Ok(None);
    };
    let Some(&parent) = parents.last() else {
        return Ok(None);
    };
    let Some(reg) = fdt.prop(node, "reg") else {
        return Ok(None);
    };
    let ac = fdt.address_cells(parent);
    let sc = fdt.size_cells(parent);
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
    let base = translate(fdt, path, base)?;
    Ok(Some(MemRange::new(base, size)))
}

fn reg_count(fdt: &Fdt<'_>, path: &[Node<'_>]) -> usize {
    let mut n = 0;
    while let Ok(Some(_)) = reg_entry(fdt, path, n) {
        n += 1;
    }
    n
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
fn path_matches(stack: &[Node<'_>], path: &[u8]) -> bool {
    if path.first() != Some(&b'/') {
        return false;
    }
    let mut comps = path.split(|&c| c == b'/').filter(|c| !c.is_empty());
    for node in stack.iter().skip(1) {
        match comps.next() {
            Some(c) if name_matches(node.name, c) => {}
            _ => return false,
        }
    }
    comps.next().is_none()
}

type PathBuf = heapless::Vec<u8, 256>;

/// Resolves a `stdout-path`-style reference: drops ":options" and expands a
/// leading alias. `None` if it cannot be resolved.
fn resolve_path(fdt: &Fdt<'_>, aliases: Option<Node<'_>>, path: &[u8]) -> Option<PathBuf> {
    let path = path.split(|&c| c == 0).next().unwrap_or(path);
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
    let target = fdt
        .props(aliases?)
        .find(|p| p.name == alias)
        .map(|p| p.value)?;
    let target = target.split(|&c| c == 0).next().unwrap_or(target);
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
fn interrupt(fdt: &Fdt<'_>, node: Node<'_>, index: usize) -> Option<u32> {
    let v = fdt.prop(node, "interrupts")?;
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

fn gic_info(fdt: &Fdt<'_>, path: &[Node<'_>], v3: bool) -> Result<Option<GicInfo>, DtError> {
    let node = path[path.len() - 1];
    let reg = |i: usize| reg_entry(fdt, path, i);
    let Some(gicd) = reg(0)? else {
        return Ok(None);
    };
    let maintenance_intid = interrupt(fdt, node, 0);
    if v3 {
        let nr = fdt
            .prop_u32(node, "#redistributor-regions")
            .unwrap_or(1)
            .max(1) as usize;
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

fn timer_info(fdt: &Fdt<'_>, node: Node<'_>) -> Option<TimerInfo> {
    Some(TimerInfo {
        sec_phys_intid: interrupt(fdt, node, 0)?,
        phys_intid: interrupt(fdt, node, 1)?,
        virt_intid: interrupt(fdt, node, 2)?,
        hyp_intid: interrupt(fdt, node, 3)?,
        frequency: fdt.prop_u32(node, "clock-frequency"),
    })
}

fn cpu_info(fdt: &Fdt<'_>, cpus: Node<'_>, cpu: Node<'_>) -> Option<CpuInfo> {
    let ac = fdt.address_cells(cpus);
    let reg = fdt.prop(cpu, "reg")?;
    if !(1..=2).contains(&ac) || reg.len() < (ac * 4) as usize {
        return None;
    }
    let mpidr = read_cells(reg, 0, ac)?;
    let method = fdt
        .prop_str(cpu, "enable-method")
        .or_else(|| fdt.prop_str(cpus, "enable-method"));
    let enable = match method {
        Some(b"psci") => CpuEnable::Psci,
        Some(b"spin-table") => {
            let r = fdt.prop(cpu, "cpu-release-addr");
            match r.map(|v| (v.len(), v)) {
                Some((8, v)) => be64(v, 0).map_or(CpuEnable::Unknown, |release_addr| {
                    CpuEnable::SpinTable { release_addr }
                }),
                Some((4, v)) => be32(v, 0).map_or(CpuEnable::Unknown, |a| CpuEnable::SpinTable {
                    release_addr: a as u64,
                }),
                _ => CpuEnable::Unknown,
            }
        }
        _ => CpuEnable::Unknown,
    };
    Some(CpuInfo { mpidr, enable })
}

/// Parses the machine description out of a flattened device tree.
pub fn parse(dtb: &[u8]) -> Result<MachineInfo, DtError> {
    let fdt = Fdt::new(dtb)?;
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
    };

    // /memreserve/
    let mut i = 0;
    while let (Some(base), Some(size)) = (be64(fdt.rsvmap, i * 16), be64(fdt.rsvmap, i * 16 + 8)) {
        if base == 0 && size == 0 {
            break;
        }
        if size != 0 {
            info.reserved
                .push(MemRange::new(base, size))
                .map_err(|_| DtError::TooMany("reserved"))?;
        }
        i += 1;
    }

    // Pass 1: root properties, /aliases and /chosen.
    let mut aliases = None;
    let mut chosen = None;
    fdt.walk(|stack| {
        match stack {
            [root] => {
                if let Some(m) = fdt.prop_str(*root, "model") {
                    push_truncated(&mut info.model, m);
                }
                if let Some(c) = fdt.prop_str(*root, "compatible") {
                    push_truncated(&mut info.compatible, c);
                }
            }
            [_, n] if n.name == b"aliases" => aliases = Some(*n),
            [_, n] if n.name == b"chosen" => chosen = Some(*n),
            _ => {}
        }
        Ok(())
    })?;

    let mut stdout = None;
    if let Some(chosen) = chosen {
        if let Some(args) = fdt.prop(chosen, "bootargs") {
            let args = args.split(|&c| c == 0).next().unwrap_or(args);
            let s = core::str::from_utf8(args).map_err(|_| DtError::BadProperty("bootargs"))?;
            info.bootargs
                .push_str(s)
                .map_err(|_| DtError::BootargsTooLong)?;
        }
        let sp = fdt
            .prop(chosen, "stdout-path")
            .or_else(|| fdt.prop(chosen, "linux,stdout-path"));
        if let Some(sp) = sp {
            stdout = resolve_path(&fdt, aliases, sp);
        }
    }

    // Pass 2: devices.
    let mut uart_chosen: Option<UartInfo> = None;
    let mut uart_first: Option<UartInfo> = None;
    let mut uart_other: Option<UartInfo> = None;
    fdt.walk(|stack| {
        let node = stack[stack.len() - 1];
        let depth = stack.len();
        let enabled = fdt.is_enabled(node);
        let is_stdout = stdout.as_ref().is_some_and(|p| path_matches(stack, p));

        // Memory.
        if depth == 2
            && (fdt.prop_str(node, "device_type") == Some(b"memory")
                || name_matches(node.name, b"memory"))
            && enabled
        {
            let mut i = 0;
            while let Some(r) = reg_entry(&fdt, stack, i)? {
                info.memory
                    .push(r)
                    .map_err(|_| DtError::TooMany("memory"))?;
                i += 1;
            }
        }

        // Reserved memory.
        if depth == 3 && stack[1].name == b"reserved-memory" && enabled {
            let mut i = 0;
            while let Ok(Some(r)) = reg_entry(&fdt, stack, i) {
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
            && stack[1].name == b"cpus"
            && fdt.prop_str(node, "device_type") == Some(b"cpu")
            && !fdt
                .prop_str(node, "status")
                .is_some_and(|s| s.starts_with(b"fail"))
        {
            if let Some(cpu) = cpu_info(&fdt, stack[1], node) {
                info.cpus.push(cpu).map_err(|_| DtError::TooMany("cpus"))?;
            }
        }

        if !enabled {
            return Ok(());
        }

        // UART.
        let uart_at = |kind| -> Option<UartInfo> {
            let r = reg_entry(&fdt, stack, 0).ok()??;
            Some(UartInfo {
                base: r.base,
                size: r.size,
                compatible: kind,
                intid: interrupt(&fdt, node, 0),
            })
        };
        if fdt.is_compatible(node, "arm,pl011") {
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
            if fdt.is_compatible(node, "arm,gic-v3") {
                info.gic = gic_info(&fdt, stack, true).ok().flatten();
            } else if GIC_V2_COMPATIBLE.iter().any(|c| fdt.is_compatible(node, c)) {
                info.gic = gic_info(&fdt, stack, false).ok().flatten();
            }
        }

        // Timer.
        if info.timer.is_none() && fdt.is_compatible(node, "arm,armv8-timer") {
            info.timer = timer_info(&fdt, node);
        }

        // PSCI.
        if info.psci.is_none() && fdt.is_compatible_prefix(node, "arm,psci") {
            info.psci = match fdt.prop_str(node, "method") {
                Some(b"smc") => Some(PsciMethod::Smc),
                Some(b"hvc") => Some(PsciMethod::Hvc),
                _ => None,
            };
        }

        // Power controller.
        if info.power.is_none() && POWER_COMPATIBLE.iter().any(|c| fdt.is_compatible(node, c)) {
            info.power = reg_entry(&fdt, stack, 0).ok().flatten();
        }
        Ok(())
    })?;
    info.uart = uart_chosen.or(uart_first).or(uart_other);
    Ok(info)
}

/// Entry `index` of the `reg` of the node at `path` (absolute, aliases not
/// expanded), translated to a CPU physical address. `Ok(None)` if the node
/// has no such entry; `Err(NotFound)` if there is no such node.
pub fn node_reg(dtb: &[u8], path: &str, index: usize) -> Result<Option<MemRange>, DtError> {
    let fdt = Fdt::new(dtb)?;
    let mut result = Err(DtError::NotFound);
    fdt.walk(|stack| {
        if result.is_err() && path_matches(stack, path.as_bytes()) {
            result = reg_entry(&fdt, stack, index);
        }
        Ok(())
    })?;
    result
}

/// Number of `reg` entries of the node at `path` that translate cleanly.
pub fn node_reg_count(dtb: &[u8], path: &str) -> Result<usize, DtError> {
    let fdt = Fdt::new(dtb)?;
    let mut result = Err(DtError::NotFound);
    fdt.walk(|stack| {
        if result.is_err() && path_matches(stack, path.as_bytes()) {
            result = Ok(reg_count(&fdt, stack));
        }
        Ok(())
    })?;
    result
}

#[cfg(test)]
mod tests;
