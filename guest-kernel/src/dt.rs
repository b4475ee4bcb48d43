//! What the guest needs from its device tree: RAM, the hypervisor node and
//! the command line.

use fdt::Fdt;

/// Guest-physical base of guest RAM (where the DT must be).
pub const RAM_BASE: usize = 0x4000_0000;

/// First word of a flattened device tree (big-endian).
const FDT_MAGIC: u32 = 0xd00d_feed;

/// Facts read from the device tree at boot.
pub struct BootInfo {
    /// First byte of guest RAM (from `/memory`).
    pub ram_base: usize,
    /// Size of guest RAM in bytes.
    pub ram_size: usize,
    /// First `compatible` string of `/hypervisor`, if present.
    pub hypervisor: Option<&'static str>,
    /// `/chosen/bootargs`, or "" if absent.
    pub bootargs: &'static str,
    /// Number of vCPUs (`/cpus/cpu@N` nodes).
    pub vcpus: usize,
    /// The parsed tree, for drivers that look up their own nodes.
    pub fdt: Fdt<'static>,
}

impl BootInfo {
    /// One past the last byte of guest RAM.
    pub fn ram_end(&self) -> usize {
        self.ram_base + self.ram_size
    }
}

/// Parse the device tree at guest-physical address `dtb` (the boot `x0`).
///
/// Rejects addresses that cannot hold a device tree in guest RAM before
/// touching them, then lets `fdt` check the header.
pub fn parse(dtb: usize) -> Result<BootInfo, &'static str> {
    if dtb == 0 {
        return Err("null address");
    }
    if dtb % 8 != 0 {
        return Err("address not 8-byte aligned");
    }
    if dtb < RAM_BASE {
        return Err("address below guest RAM");
    }
    // SAFETY: the address is at or above the base of guest RAM and
    // aligned (as much as can be checked before knowing the RAM size).
    let magic = unsafe { core::ptr::read_volatile(dtb as *const u32) };
    if u32::from_be(magic) != FDT_MAGIC {
        return Err("bad magic");
    }
    // SAFETY: as above; the header is readable and valid enough to have
    // the magic. Guest RAM stays mapped and the kernel never writes the
    // device tree, so the `'static` borrow is sound.
    let fdt = unsafe { Fdt::from_ptr(dtb as *const u8) }.map_err(|e| match e {
        fdt::FdtError::BadMagic => "bad magic",
        fdt::FdtError::BadPtr => "bad pointer",
        fdt::FdtError::BufferTooSmall => "truncated",
    })?;
    let region = fdt
        .find_node("/memory")
        .and_then(|n| n.reg())
        .and_then(|mut r| r.next())
        .ok_or("no /memory node with a reg property")?;
    let ram_base = region.starting_address as usize;
    let ram_size = region.size.ok_or("/memory reg has no size")?;
    let hypervisor = fdt
        .find_node("/hypervisor")
        .and_then(|n| n.compatible())
        .and_then(|c| c.all().next());
    let bootargs = fdt
        .find_node("/chosen")
        .and_then(|n| n.property("bootargs"))
        .and_then(|p| p.as_str())
        .unwrap_or("");
    let vcpus = fdt.cpus().count().max(1);
    Ok(BootInfo {
        fdt,
        vcpus,
        ram_base,
        ram_size,
        hypervisor,
        bootargs,
    })
}
