//! The device tree a domain is given, laid out as Xen on Arm lays out a
//! domU's: root, `/chosen`, `/cpus`, `/psci`, memory nodes, `/hypervisor`
//! (grant-table window and event-channel upcall PPI) and `/timer`.

use alloc::format;
use alloc::vec::Vec;
use core::fmt;

use crate::devtree::MemRange;
use crate::fdt_writer::{FdtWriteError, FdtWriter};

/// Level-low, delivered to CPUs 0-3: the flags Xen uses for guest PPIs.
const PPI_FLAGS: u32 = 0xf08;
/// Generic timer PPIs Xen gives a domU: secure phys, phys, virt, hyp.
pub const GUEST_TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];

#[derive(Debug, Clone, Copy)]
pub struct GuestDtConfig<'a> {
    /// Guest RAM banks, guest-physical.
    pub ram: &'a [MemRange],
    pub bootargs: &'a str,
    pub vcpus: u32,
    /// (major, minor), e.g. (4, 17).
    pub xen_version: (u16, u16),
    /// The grant-table IPA window advertised in `/hypervisor` `reg`.
    pub grant_table: MemRange,
    /// PPI number of the event-channel upcall (e.g. 15 for INTID 31).
    pub evtchn_ppi: u32,
    pub domain_name: &'a str,
    /// Devices given to the domain (driver domain only).
    pub passthrough: &'a [PassDevice],
    /// Guest-physical == machine-physical window for device DMA.
    pub dma_window: Option<MemRange>,
}

/// A device whose MMIO page is mapped into the domain and whose interrupt
/// arrives as a VIRQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassDevice {
    /// `compatible` of the node (e.g. "virtio,mmio").
    pub compatible: &'static str,
    /// Register window (guest-physical, same as machine-physical).
    pub reg: MemRange,
    /// The VIRQ its interrupt is delivered on (`pvh,virq`).
    pub virq: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestDtError {
    NoRam,
    NoVcpus,
    /// A RAM bank or the grant-table window has size 0.
    EmptyRange,
    /// `evtchn_ppi` is not a PPI number (0..16).
    BadPpi,
    Write(FdtWriteError),
}

impl From<FdtWriteError> for GuestDtError {
    fn from(e: FdtWriteError) -> Self {
        GuestDtError::Write(e)
    }
}

impl fmt::Display for GuestDtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestDtError::NoRam => f.write_str("guest has no RAM"),
            GuestDtError::NoVcpus => f.write_str("guest has no vCPUs"),
            GuestDtError::EmptyRange => f.write_str("empty guest memory range"),
            GuestDtError::BadPpi => f.write_str("event-channel interrupt is not a PPI"),
            GuestDtError::Write(e) => write!(f, "building guest device tree: {e}"),
        }
    }
}

fn reg64(r: MemRange) -> [u32; 4] {
    [
        (r.base >> 32) as u32,
        r.base as u32,
        (r.size >> 32) as u32,
        r.size as u32,
    ]
}

/// Builds the FDT blob handed to a domain.
pub fn build_guest_dt(cfg: &GuestDtConfig) -> Result<Vec<u8>, GuestDtError> {
    if cfg.ram.is_empty() {
        return Err(GuestDtError::NoRam);
    }
    if cfg.vcpus == 0 {
        return Err(GuestDtError::NoVcpus);
    }
    if cfg.evtchn_ppi >= 16 {
        return Err(GuestDtError::BadPpi);
    }
    if cfg.ram.iter().any(|r| r.size == 0) || cfg.grant_table.size == 0 {
        return Err(GuestDtError::EmptyRange);
    }
    let (maj, min) = cfg.xen_version;
    let mut w = FdtWriter::new();

    let root = w.begin_node("")?;
    w.property_u32("#address-cells", 2)?;
    w.property_u32("#size-cells", 2)?;
    let xenvm = format!("xen,xenvm-{maj}.{min}");
    w.property_string_list("compatible", &[&xenvm, "xen,xenvm"])?;
    w.property_string("model", "pvh-guest")?;

    let chosen = w.begin_node("chosen")?;
    w.property_string("bootargs", cfg.bootargs)?;
    w.property_string("xen,domain-name", cfg.domain_name)?;
    w.end_node(chosen)?;

    let cpus = w.begin_node("cpus")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 0)?;
    for n in 0..cfg.vcpus {
        let cpu = w.begin_node(&format!("cpu@{n:x}"))?;
        w.property_string("device_type", "cpu")?;
        w.property_string("compatible", "arm,armv8")?;
        w.property_string("enable-method", "psci")?;
        w.property_u32("reg", n)?;
        w.end_node(cpu)?;
    }
    w.end_node(cpus)?;

    let psci = w.begin_node("psci")?;
    w.property_string_list("compatible", &["arm,psci-1.0", "arm,psci-0.2"])?;
    w.property_string("method", "hvc")?;
    w.end_node(psci)?;

    for r in cfg.ram {
        let mem = w.begin_node(&format!("memory@{:x}", r.base))?;
        w.property_string("device_type", "memory")?;
        w.property_cells("reg", &reg64(*r))?;
        w.end_node(mem)?;
    }

    let hyp = w.begin_node("hypervisor")?;
    let xen = format!("xen,xen-{maj}.{min}");
    w.property_string_list("compatible", &[&xen, "xen,xen"])?;
    w.property_cells("reg", &reg64(cfg.grant_table))?;
    w.property_cells("interrupts", &[1, cfg.evtchn_ppi, PPI_FLAGS])?;
    if let Some(d) = cfg.dma_window {
        w.property_cells("pvh,dma-window", &reg64(d))?;
    }
    w.end_node(hyp)?;

    for d in cfg.passthrough {
        let n = w.begin_node(&format!("virtio_mmio@{:x}", d.reg.base))?;
        w.property_string("compatible", d.compatible)?;
        w.property_cells("reg", &reg64(d.reg))?;
        w.property_u32("pvh,virq", d.virq)?;
        w.end_node(n)?;
    }

    let timer = w.begin_node("timer")?;
    w.property_string("compatible", "arm,armv8-timer")?;
    let mut ints = [0u32; 12];
    for (i, ppi) in GUEST_TIMER_PPIS.iter().enumerate() {
        ints[i * 3] = 1;
        ints[i * 3 + 1] = *ppi;
        ints[i * 3 + 2] = PPI_FLAGS;
    }
    w.property_cells("interrupts", &ints)?;
    w.end_node(timer)?;

    w.end_node(root)?;
    Ok(w.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devtree::{self, CpuEnable, PsciMethod};

    const RAM: [MemRange; 2] = [
        MemRange::new(0x4000_0000, 0x0800_0000),
        MemRange::new(0x2_0000_0000, 0x1000_0000),
    ];

    fn cfg() -> GuestDtConfig<'static> {
        GuestDtConfig {
            ram: &RAM,
            bootargs: "console=hvc0 root=/dev/xvda",
            vcpus: 3,
            xen_version: (4, 17),
            grant_table: MemRange::new(0x3800_0000, 0x0100_0000),
            evtchn_ppi: 15,
            domain_name: "guest1",
            passthrough: &[],
            dma_window: None,
        }
    }

    fn cells(v: &[u8]) -> Vec<u32> {
        v.chunks_exact(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn parses_with_fdt_crate() {
        let blob = build_guest_dt(&cfg()).unwrap();
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let root = fdt.root();
        assert_eq!(root.model(), "pvh-guest");
        let compat: Vec<&str> = root.compatible().all().collect();
        assert_eq!(compat, ["xen,xenvm-4.17", "xen,xenvm"]);
        let rootnode = fdt.find_node("/").unwrap();
        assert_eq!(
            rootnode.property("#address-cells").unwrap().as_usize(),
            Some(2)
        );
        assert_eq!(
            rootnode.property("#size-cells").unwrap().as_usize(),
            Some(2)
        );
        assert_eq!(fdt.chosen().bootargs(), Some("console=hvc0 root=/dev/xvda"));

        let cpus: Vec<_> = fdt.cpus().collect();
        assert_eq!(cpus.len(), 3);
        for (i, cpu) in cpus.iter().enumerate() {
            assert_eq!(cpu.ids().first(), i);
            let n = fdt.find_node(&format!("/cpus/cpu@{i:x}")).unwrap();
            assert_eq!(n.property("enable-method").unwrap().as_str(), Some("psci"));
            assert_eq!(
                n.property("compatible").unwrap().as_str(),
                Some("arm,armv8")
            );
        }

        let psci = fdt.find_node("/psci").unwrap();
        let pc: Vec<&str> = psci.compatible().unwrap().all().collect();
        assert_eq!(pc, ["arm,psci-1.0", "arm,psci-0.2"]);
        assert_eq!(psci.property("method").unwrap().as_str(), Some("hvc"));

        let mems: Vec<_> = fdt
            .all_nodes()
            .filter(|n| n.name.starts_with("memory@"))
            .collect();
        assert_eq!(mems.len(), 2);
        assert_eq!(mems[0].name, "memory@40000000");
        assert_eq!(mems[1].name, "memory@200000000");
        for (m, r) in mems.iter().zip(RAM.iter()) {
            assert_eq!(m.property("device_type").unwrap().as_str(), Some("memory"));
            assert_eq!(cells(m.property("reg").unwrap().value), reg64(*r));
        }

        let hyp = fdt.find_node("/hypervisor").unwrap();
        let hc: Vec<&str> = hyp.compatible().unwrap().all().collect();
        assert_eq!(hc, ["xen,xen-4.17", "xen,xen"]);
        assert_eq!(
            cells(hyp.property("reg").unwrap().value),
            [0, 0x3800_0000, 0, 0x0100_0000]
        );
        assert_eq!(
            cells(hyp.property("interrupts").unwrap().value),
            [1, 15, 0xf08]
        );

        let timer = fdt.find_node("/timer").unwrap();
        assert_eq!(timer.compatible().unwrap().first(), "arm,armv8-timer");
        assert_eq!(
            cells(timer.property("interrupts").unwrap().value),
            [1, 13, 0xf08, 1, 14, 0xf08, 1, 11, 0xf08, 1, 10, 0xf08]
        );
    }

    #[test]
    fn parses_with_devtree() {
        let blob = build_guest_dt(&cfg()).unwrap();
        let info = devtree::parse(&blob).unwrap();
        assert_eq!(info.model.as_str(), "pvh-guest");
        assert_eq!(info.compatible.as_str(), "xen,xenvm-4.17");
        assert_eq!(info.bootargs.as_str(), "console=hvc0 root=/dev/xvda");
        assert_eq!(info.memory.as_slice(), &RAM);
        assert_eq!(info.psci, Some(PsciMethod::Hvc));
        assert_eq!(info.cpus.len(), 3);
        for (i, c) in info.cpus.iter().enumerate() {
            assert_eq!(c.mpidr, i as u64);
            assert_eq!(c.enable, CpuEnable::Psci);
        }
        let t = info.timer.unwrap();
        assert_eq!(
            (t.sec_phys_intid, t.phys_intid, t.virt_intid, t.hyp_intid),
            (29, 30, 27, 26)
        );
        assert_eq!(t.frequency, None);
        assert!(info.gic.is_none());
        assert!(info.uart.is_none());
        assert_eq!(
            devtree::node_reg(&blob, "/hypervisor", 0).unwrap(),
            Some(MemRange::new(0x3800_0000, 0x0100_0000))
        );
    }

    #[test]
    fn version_follows_config() {
        let mut c = cfg();
        c.xen_version = (4, 19);
        let blob = build_guest_dt(&c).unwrap();
        let fdt = fdt::Fdt::new(&blob).unwrap();
        assert_eq!(fdt.root().compatible().first(), "xen,xenvm-4.19");
        let hyp = fdt.find_node("/hypervisor").unwrap();
        assert_eq!(hyp.compatible().unwrap().first(), "xen,xen-4.19");
    }

    #[test]
    fn rejects_bad_config() {
        let mut c = cfg();
        c.vcpus = 0;
        assert_eq!(build_guest_dt(&c), Err(GuestDtError::NoVcpus));
        let mut c = cfg();
        c.ram = &[];
        assert_eq!(build_guest_dt(&c), Err(GuestDtError::NoRam));
        let mut c = cfg();
        c.evtchn_ppi = 31;
        assert_eq!(build_guest_dt(&c), Err(GuestDtError::BadPpi));
        let mut c = cfg();
        c.bootargs = "a\0b";
        assert_eq!(
            build_guest_dt(&c),
            Err(GuestDtError::Write(FdtWriteError::StringContainsNul))
        );
    }

    #[test]
    fn driver_domain_gets_device_nodes_and_its_dma_window() {
        const DEVS: [PassDevice; 2] = [
            PassDevice {
                compatible: "virtio,mmio",
                reg: MemRange::new(0x0a00_3e00, 0x200),
                virq: 16,
            },
            PassDevice {
                compatible: "virtio,mmio",
                reg: MemRange::new(0x0a00_3c00, 0x200),
                virq: 17,
            },
        ];
        let mut c = cfg();
        c.passthrough = &DEVS;
        c.dma_window = Some(MemRange::new(0x5000_0000, 0x80_0000));
        let blob = build_guest_dt(&c).unwrap();
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let hyp = fdt.find_node("/hypervisor").unwrap();
        let w = hyp.property("pvh,dma-window").unwrap().value;
        assert_eq!(w, &[0, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0]);
        for d in DEVS {
            let n = fdt
                .find_node(&format!("/virtio_mmio@{:x}", d.reg.base))
                .unwrap();
            assert_eq!(n.compatible().unwrap().first(), "virtio,mmio");
            let r = n.reg().unwrap().next().unwrap();
            assert_eq!(
                (r.starting_address as u64, r.size),
                (d.reg.base, Some(0x200))
            );
            assert_eq!(
                n.property("pvh,virq").unwrap().as_usize(),
                Some(d.virq as usize)
            );
        }
        // An ordinary domain has neither.
        let blob = build_guest_dt(&cfg()).unwrap();
        let fdt = fdt::Fdt::new(&blob).unwrap();
        assert!(fdt
            .find_node("/hypervisor")
            .unwrap()
            .property("pvh,dma-window")
            .is_none());
        assert!(fdt.all_nodes().all(|n| !n.name.starts_with("virtio_mmio")));
    }
}
