//! Builder for flattened device tree blobs (FDT version 17).
//!
//! Uses the heap; meant for after the monitor's allocator is up. Misuse
//! (unbalanced nodes, a property outside a node or after a subnode, names
//! containing NUL, ...) is reported as an [`FdtWriteError`], never a panic.
//!
//! ```text
//! let mut w = FdtWriter::new();
//! let root = w.begin_node("")?;
//! w.property_u32("#address-cells", 2)?;
//! let chosen = w.begin_node("chosen")?;
//! w.property_string("bootargs", "console=hvc0")?;
//! w.end_node(chosen)?;
//! w.end_node(root)?;
//! let blob = w.finish()?;
//! ```

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::devtree::{FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_MAGIC, FDT_PROP, HEADER_LEN};
const VERSION: u32 = 17;
const LAST_COMP_VERSION: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdtWriteError {
    /// A node or property name contains NUL.
    NameContainsNul,
    /// An empty property name, an empty non-root node name, a name with '/',
    /// or a non-empty root name.
    InvalidName,
    /// A string value contains NUL.
    StringContainsNul,
    /// A property written while no node is open.
    PropertyOutsideNode,
    /// A property written after a subnode of the same node (FDT requires
    /// properties to precede subnodes).
    PropertyAfterSubnode,
    /// `end_node` given a token other than that of the innermost open node.
    WrongNode,
    /// A second top-level node.
    MultipleRoots,
    /// `finish` with nodes still open.
    UnclosedNodes,
    /// `finish` without a root node.
    NoRoot,
    /// The blob would exceed 4 GiB.
    TooLarge,
}

impl fmt::Display for FdtWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            FdtWriteError::NameContainsNul => "name contains NUL",
            FdtWriteError::InvalidName => "invalid node or property name",
            FdtWriteError::StringContainsNul => "string value contains NUL",
            FdtWriteError::PropertyOutsideNode => "property outside any node",
            FdtWriteError::PropertyAfterSubnode => "property after a subnode",
            FdtWriteError::WrongNode => "end_node does not match the innermost open node",
            FdtWriteError::MultipleRoots => "more than one root node",
            FdtWriteError::UnclosedNodes => "nodes left open",
            FdtWriteError::NoRoot => "no root node",
            FdtWriteError::TooLarge => "device tree too large",
        };
        f.write_str(s)
    }
}

pub type Result<T> = core::result::Result<T, FdtWriteError>;

/// Handle for an open node; pass it back to [`FdtWriter::end_node`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an open node must be closed with end_node"]
pub struct NodeToken {
    id: u64,
}

struct OpenNode {
    id: u64,
    has_children: bool,
}

/// Builds an FDT blob.
pub struct FdtWriter {
    structs: Vec<u8>,
    strings: Vec<u8>,
    string_offsets: BTreeMap<String, u32>,
    reserved: Vec<(u64, u64)>,
    stack: Vec<OpenNode>,
    next_id: u64,
    root_done: bool,
    boot_cpuid: u32,
}

impl Default for FdtWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl FdtWriter {
    pub fn new() -> Self {
        FdtWriter {
            structs: Vec::new(),
            strings: Vec::new(),
            string_offsets: BTreeMap::new(),
            reserved: Vec::new(),
            stack: Vec::new(),
            next_id: 0,
            root_done: false,
            boot_cpuid: 0,
        }
    }

    /// Adds a `/memreserve/` entry.
    pub fn reserve_memory(&mut self, address: u64, size: u64) {
        self.reserved.push((address, size));
    }

    /// Sets the header's `boot_cpuid_phys` (0 by default).
    pub fn set_boot_cpuid(&mut self, cpuid: u32) {
        self.boot_cpuid = cpuid;
    }

    fn push_u32(&mut self, v: u32) {
        self.structs.extend_from_slice(&v.to_be_bytes());
    }

    fn pad_structs(&mut self) {
        while self.structs.len() % 4 != 0 {
            self.structs.push(0);
        }
    }

    /// Opens a node. The root is `""`; other names are "name" or "name@unit".
    pub fn begin_node(&mut self, name: &str) -> Result<NodeToken> {
        if name.as_bytes().contains(&0) {
            return Err(FdtWriteError::NameContainsNul);
        }
        if name.contains('/') {
            return Err(FdtWriteError::InvalidName);
        }
        match self.stack.last_mut() {
            None => {
                if self.root_done {
                    return Err(FdtWriteError::MultipleRoots);
                }
                if !name.is_empty() {
                    return Err(FdtWriteError::InvalidName);
                }
            }
            Some(parent) => {
                if name.is_empty() {
                    return Err(FdtWriteError::InvalidName);
                }
                parent.has_children = true;
            }
        }
        self.push_u32(FDT_BEGIN_NODE);
        self.structs.extend_from_slice(name.as_bytes());
        self.structs.push(0);
        self.pad_structs();
        let id = self.next_id;
        self.next_id += 1;
        self.stack.push(OpenNode {
            id,
            has_children: false,
        });
        Ok(NodeToken { id })
    }

    /// Closes the innermost open node, which `token` must name.
    pub fn end_node(&mut self, token: NodeToken) -> Result<()> {
        match self.stack.last() {
            Some(n) if n.id == token.id => {}
            _ => return Err(FdtWriteError::WrongNode),
        }
        self.stack.pop();
        self.push_u32(FDT_END_NODE);
        if self.stack.is_empty() {
            self.root_done = true;
        }
        Ok(())
    }

    fn string_offset(&mut self, name: &str) -> Result<u32> {
        if let Some(&off) = self.string_offsets.get(name) {
            return Ok(off);
        }
        let off = u32::try_from(self.strings.len()).map_err(|_| FdtWriteError::TooLarge)?;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        self.string_offsets.insert(String::from(name), off);
        Ok(off)
    }

    /// Writes a property with a raw value.
    pub fn property(&mut self, name: &str, value: &[u8]) -> Result<()> {
        if name.as_bytes().contains(&0) {
            return Err(FdtWriteError::NameContainsNul);
        }
        if name.is_empty() || name.contains('/') {
            return Err(FdtWriteError::InvalidName);
        }
        match self.stack.last() {
            None => return Err(FdtWriteError::PropertyOutsideNode),
            Some(n) if n.has_children => return Err(FdtWriteError::PropertyAfterSubnode),
            Some(_) => {}
        }
        let len = u32::try_from(value.len()).map_err(|_| FdtWriteError::TooLarge)?;
        let nameoff = self.string_offset(name)?;
        self.push_u32(FDT_PROP);
        self.push_u32(len);
        self.push_u32(nameoff);
        self.structs.extend_from_slice(value);
        self.pad_structs();
        Ok(())
    }

    /// An empty (boolean) property.
    pub fn property_null(&mut self, name: &str) -> Result<()> {
        self.property(name, &[])
    }

    pub fn property_u32(&mut self, name: &str, value: u32) -> Result<()> {
        self.property(name, &value.to_be_bytes())
    }

    pub fn property_u64(&mut self, name: &str, value: u64) -> Result<()> {
        self.property(name, &value.to_be_bytes())
    }

    pub fn property_string(&mut self, name: &str, value: &str) -> Result<()> {
        self.property_string_list(name, &[value])
    }

    pub fn property_string_list(&mut self, name: &str, values: &[&str]) -> Result<()> {
        let mut buf = Vec::new();
        for v in values {
            if v.as_bytes().contains(&0) {
                return Err(FdtWriteError::StringContainsNul);
            }
            buf.extend_from_slice(v.as_bytes());
            buf.push(0);
        }
        self.property(name, &buf)
    }

    /// A property of big-endian 32-bit cells.
    pub fn property_cells(&mut self, name: &str, cells: &[u32]) -> Result<()> {
        let mut buf = Vec::with_capacity(cells.len() * 4);
        for c in cells {
            buf.extend_from_slice(&c.to_be_bytes());
        }
        self.property(name, &buf)
    }

    /// Produces the blob: header, reservation map (8-byte aligned, with its
    /// terminator), structure block, strings block.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        if !self.stack.is_empty() {
            return Err(FdtWriteError::UnclosedNodes);
        }
        if !self.root_done {
            return Err(FdtWriteError::NoRoot);
        }
        self.push_u32(FDT_END);

        let off_rsv = HEADER_LEN; // 40, a multiple of 8
        let rsv_len = (self.reserved.len() + 1) * 16;
        let off_struct = off_rsv + rsv_len;
        let off_strings = off_struct + self.structs.len();
        let total = off_strings + self.strings.len();
        let to32 = |v: usize| u32::try_from(v).map_err(|_| FdtWriteError::TooLarge);

        let mut out = Vec::with_capacity(total);
        for v in [
            FDT_MAGIC,
            to32(total)?,
            to32(off_struct)?,
            to32(off_strings)?,
            to32(off_rsv)?,
            VERSION,
            LAST_COMP_VERSION,
            self.boot_cpuid,
            to32(self.strings.len())?,
            to32(self.structs.len())?,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for &(a, s) in self.reserved.iter().chain(core::iter::once(&(0, 0))) {
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&s.to_be_bytes());
        }
        out.extend_from_slice(&self.structs);
        out.extend_from_slice(&self.strings);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = FdtWriter::new();
        w.reserve_memory(0x4000_0000, 0x1000);
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        w.property_string_list("compatible", &["acme,board", "acme,soc"])
            .unwrap();
        w.property_string("model", "Acme Board").unwrap();
        let chosen = w.begin_node("chosen").unwrap();
        w.property_string("bootargs", "console=ttyAMA0 quiet")
            .unwrap();
        w.end_node(chosen).unwrap();
        let mem = w.begin_node("memory@40000000").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_cells("reg", &[0, 0x4000_0000, 0, 0x1000_0000])
            .unwrap();
        w.end_node(mem).unwrap();
        let cpus = w.begin_node("cpus").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 0).unwrap();
        let cpu = w.begin_node("cpu@0").unwrap();
        w.property_string("device_type", "cpu").unwrap();
        w.property_u32("reg", 0).unwrap();
        w.property_u64("cpu-release-addr", 0xd8).unwrap();
        w.property_null("dummy-flag").unwrap();
        w.end_node(cpu).unwrap();
        w.end_node(cpus).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    fn be32(b: &[u8], off: usize) -> u32 {
        u32::from_be_bytes(b[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn header_and_layout() {
        let blob = sample();
        assert_eq!(be32(&blob, 0), FDT_MAGIC);
        assert_eq!(be32(&blob, 4) as usize, blob.len());
        assert_eq!(be32(&blob, 20), 17);
        assert_eq!(be32(&blob, 24), 16);
        let off_rsv = be32(&blob, 16) as usize;
        assert_eq!(off_rsv % 8, 0);
        let off_struct = be32(&blob, 8) as usize;
        assert_eq!(off_struct % 4, 0);
        // one entry + terminator
        assert_eq!(off_struct - off_rsv, 32);
        assert!(blob[off_rsv + 16..off_rsv + 32].iter().all(|&b| b == 0));
        let off_strings = be32(&blob, 12) as usize;
        assert_eq!(off_strings + be32(&blob, 32) as usize, blob.len());
        assert_eq!(off_struct + be32(&blob, 36) as usize, off_strings);
        assert_eq!(be32(&blob, off_strings - 4), FDT_END);
        assert_eq!(crate::devtree::total_size(&blob), Some(blob.len()));
    }

    #[test]
    fn strings_deduplicated() {
        let blob = sample();
        let off_strings = be32(&blob, 12) as usize;
        let strings = &blob[off_strings..];
        let count = |name: &[u8]| strings.split(|&c| c == 0).filter(|s| *s == name).count();
        assert_eq!(count(b"device_type"), 1);
        assert_eq!(count(b"#address-cells"), 1);
        assert_eq!(count(b"reg"), 1);
    }

    #[test]
    fn round_trip_with_fdt_crate() {
        let blob = sample();
        let fdt = fdt::Fdt::new(&blob).expect("fdt crate parses the blob");
        let root = fdt.root();
        assert_eq!(root.model(), "Acme Board");
        let compat: Vec<&str> = root.compatible().all().collect();
        assert_eq!(compat, ["acme,board", "acme,soc"]);
        assert_eq!(fdt.chosen().bootargs(), Some("console=ttyAMA0 quiet"));
        let mem = fdt.memory();
        let regions: Vec<_> = mem.regions().collect();
        assert_eq!(regions.len(), 1);
        assert_eq!(regions[0].starting_address as usize, 0x4000_0000);
        assert_eq!(regions[0].size, Some(0x1000_0000));
        let cpu = fdt.find_node("/cpus/cpu@0").expect("cpu node");
        let rel = cpu.property("cpu-release-addr").unwrap();
        assert_eq!(rel.value, &0xd8u64.to_be_bytes());
        assert_eq!(cpu.property("dummy-flag").unwrap().value.len(), 0);
        let rsv: Vec<_> = fdt.memory_reservations().collect();
        assert_eq!(rsv.len(), 1);
        assert_eq!(rsv[0].address() as usize, 0x4000_0000);
        assert_eq!(rsv[0].size(), 0x1000);
        assert_eq!(fdt.all_nodes().count(), 5);
    }

    #[test]
    fn round_trip_with_devtree() {
        let blob = sample();
        let info = crate::devtree::parse(&blob).unwrap();
        assert_eq!(info.model.as_str(), "Acme Board");
        assert_eq!(info.compatible.as_str(), "acme,board");
        assert_eq!(info.bootargs.as_str(), "console=ttyAMA0 quiet");
        assert_eq!(
            info.memory.as_slice(),
            &[crate::devtree::MemRange::new(0x4000_0000, 0x1000_0000)]
        );
        assert_eq!(
            info.reserved.as_slice(),
            &[crate::devtree::MemRange::new(0x4000_0000, 0x1000)]
        );
    }

    /// Optional cross-check: if dtc is installed, it must accept the blob.
    #[test]
    fn dtc_accepts_blob_if_available() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let blob = sample();
        let child = Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts", "-q"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            eprintln!("dtc not available; skipping");
            return;
        };
        child.stdin.take().unwrap().write_all(&blob).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "dtc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dts = String::from_utf8_lossy(&out.stdout);
        assert!(
            dts.contains("bootargs = \"console=ttyAMA0 quiet\";"),
            "{dts}"
        );
        assert!(dts.contains("/memreserve/"), "{dts}");
        assert!(dts.contains("memory@40000000 {"), "{dts}");
    }

    #[test]
    fn misuse_is_an_error() {
        let mut w = FdtWriter::new();
        assert_eq!(
            w.property_u32("x", 1),
            Err(FdtWriteError::PropertyOutsideNode)
        );
        assert_eq!(
            w.begin_node("notroot").unwrap_err(),
            FdtWriteError::InvalidName
        );
        let root = w.begin_node("").unwrap();
        assert_eq!(
            w.begin_node("a\0b").unwrap_err(),
            FdtWriteError::NameContainsNul
        );
        assert_eq!(w.begin_node("a/b").unwrap_err(), FdtWriteError::InvalidName);
        assert_eq!(w.begin_node("").unwrap_err(), FdtWriteError::InvalidName);
        assert_eq!(
            w.property_u32("a\0", 1),
            Err(FdtWriteError::NameContainsNul)
        );
        assert_eq!(w.property_u32("", 1), Err(FdtWriteError::InvalidName));
        assert_eq!(
            w.property_string("s", "a\0b"),
            Err(FdtWriteError::StringContainsNul)
        );
        let a = w.begin_node("a").unwrap();
        let b = w.begin_node("b").unwrap();
        // closing the outer node first is refused
        assert_eq!(w.end_node(a), Err(FdtWriteError::WrongNode));
        w.end_node(b).unwrap();
        // property after a subnode of the same node
        w.property_u32("late", 1).unwrap_err();
        // the token for `a` was consumed; closing with a fresh stale token fails
        assert_eq!(
            w.end_node(NodeToken { id: 999 }),
            Err(FdtWriteError::WrongNode)
        );
        // unbalanced
        let mut w2 = FdtWriter::new();
        let _r = w2.begin_node("").unwrap();
        assert_eq!(w2.finish(), Err(FdtWriteError::UnclosedNodes));
        assert_eq!(FdtWriter::new().finish(), Err(FdtWriteError::NoRoot));
        // second root
        let mut w3 = FdtWriter::new();
        let r = w3.begin_node("").unwrap();
        w3.end_node(r).unwrap();
        assert_eq!(w3.begin_node("").unwrap_err(), FdtWriteError::MultipleRoots);
        assert_eq!(
            w3.property_u32("x", 1),
            Err(FdtWriteError::PropertyOutsideNode)
        );
        // a fully balanced writer still finishes after recoverable errors
        let _ = root;
    }

    #[test]
    fn property_after_subnode_rejected() {
        let mut w = FdtWriter::new();
        let root = w.begin_node("").unwrap();
        let c = w.begin_node("child").unwrap();
        w.end_node(c).unwrap();
        assert_eq!(
            w.property_u32("x", 1),
            Err(FdtWriteError::PropertyAfterSubnode)
        );
        w.end_node(root).unwrap();
        assert!(w.finish().is_ok());
    }
}
