//! The driver domain (target only): `hvm_op`, which names it, and device
//! passthrough to it: the machine's
//! virtio-mmio transports that have a device behind them are mapped into
//! the driver domain, their interrupts become VIRQs for it (masked at the
//! GIC until it answers `PHYSDEVOP_eoi`), and device DMA goes through a
//! window of RAM mapped at guest-physical == machine-physical (there is no
//! IOMMU here, so a driver domain's devices can reach any memory: the
//! driver domain is trusted with DMA, as Xen's dom0 is without an SMMU).

use super::{pv, Monitor};
use crate::builder::Passthrough;
use crate::pagetable::PAGE_SIZE;
use crate::println;
use crate::sched::VcpuId;
use alloc::vec::Vec;
use hypercall_abi::errno::Errno;
use hypercall_abi::physdev::{MAX_DEVICES, VIRQ_DEVICE_FIRST};
use platform::devtree::MemRange;
use platform::guest_dt::PassDevice;

/// virtio-mmio: "virt" in little-endian at offset 0; DeviceID at 8 (0 = no
/// device); Status at 0x70 (writing 0 resets the device).
const VIRTIO_MAGIC: u32 = 0x7472_6976;
const VIRTIO_DEVICE_ID: u64 = 0x8;
const VIRTIO_STATUS: u64 = 0x70;

/// DMA window size.
pub(super) const DMA_BYTES: u64 = 8 << 20;

/// A device given to the driver domain.
#[derive(Clone, Copy, Debug)]
pub(super) struct Device {
    pub reg: MemRange,
    pub intid: u32,
    pub virq: u32,
    pub id: u32,
}

/// The machine's transports with a device behind them (read with the EL2
/// map, which covers them).
pub(super) fn probe(transports: &[(MemRange, u32)]) -> Vec<Device> {
    let mut found: Vec<(MemRange, u32, u32)> = Vec::new();
    for &(reg, intid) in transports {
        // SAFETY: the transport's registers, mapped as device memory at
        // EL2; reading the magic and the device ID has no side effects.
        let (magic, id) = unsafe {
            (
                core::ptr::read_volatile(reg.base as *const u32),
                core::ptr::read_volatile((reg.base + VIRTIO_DEVICE_ID) as *const u32),
            )
        };
        if magic == VIRTIO_MAGIC && id != 0 {
            found.push((reg, intid, id));
        }
    }
    // In address order, so that VIRQs are stable for a given machine.
    found.sort_by_key(|d| d.0.base);
    found
        .into_iter()
        .take(MAX_DEVICES)
        .enumerate()
        .map(|(k, (reg, intid, id))| Device {
            reg,
            intid,
            virq: VIRQ_DEVICE_FIRST + k as u32,
            id,
        })
        .collect()
}

/// The window of the EL2 map that covers every transport.
pub(super) fn el2_window(transports: &[(MemRange, u32)]) -> Option<(u64, u64)> {
    let lo = transports.iter().map(|t| t.0.base).min()? & !(PAGE_SIZE - 1);
    let hi = transports
        .iter()
        .map(|t| t.0.base + t.0.size)
        .max()?
        .next_multiple_of(PAGE_SIZE);
    Some((lo, hi - lo))
}

impl Monitor {
    /// What the driver domain gets: the devices, and a DMA window taken
    /// from free memory that does not overlap its guest-physical RAM
    /// (`ram` = (base, size)). `None` if memory is short.
    pub(super) fn driver_passthrough(&mut self, ram: (u64, u64)) -> Option<Passthrough> {
        let n = DMA_BYTES / PAGE_SIZE;
        let mut rejected = Vec::new();
        let mut dma = None;
        for _ in 0..8 {
            let Some(pa) = self.frames.alloc(n) else {
                break;
            };
            if pa < ram.0 + ram.1 && ram.0 < pa + DMA_BYTES {
                rejected.push(pa);
            } else {
                dma = Some(pa);
                break;
            }
        }
        for pa in rejected {
            self.frames.free(pa, n);
        }
        let dma = dma?;
        let devices = self
            .devices
            .iter()
            .map(|d| PassDevice {
                compatible: "virtio,mmio",
                reg: d.reg,
                virq: d.virq,
            })
            .collect();
        Some(Passthrough {
            devices,
            dma: Some((dma, DMA_BYTES)),
        })
    }

    /// A passed-through device interrupted: mask it and raise its VIRQ for
    /// the driver domain. False if `intid` is not one of them.
    pub(super) fn device_irq(&mut self, intid: u32) -> bool {
        let Some(d) = self.devices.iter().find(|d| d.intid == intid).copied() else {
            return false;
        };
        self.gic.disable(intid);
        if let Some(dom) = self.driver {
            if let Some(v) = pv::virq(dom, d.virq) {
                self.notify(v);
            }
        }
        true
    }

    /// `physdev_op(cmd, arg)` from `cur`; the value for x0.
    pub(super) fn physdev_op(&mut self, cur: VcpuId, cmd: u64, arg: u64) -> i64 {
        if cmd != hypercall_abi::physdev::PHYSDEVOP_EOI {
            return Errno::ENOSYS.to_raw();
        }
        if self.driver != Some(cur.dom) {
            return Errno::EPERM.to_raw();
        }
        let mut b = [0u8; 4];
        if let Err(e) = self.guest_read(cur, arg, &mut b) {
            return e.to_raw();
        }
        let irq = u32::from_le_bytes(b);
        match self.devices.iter().find(|d| d.virq == irq) {
            Some(d) => {
                self.gic.enable(d.intid);
                0
            }
            None => Errno::EINVAL.to_raw(),
        }
    }

    /// The driver domain ended: its devices are reset (so that they stop
    /// using its DMA window before it is freed) and their interrupts masked.
    pub(super) fn driver_ended(&mut self) {
        for d in &self.devices {
            self.gic.disable(d.intid);
            // SAFETY: the transport's Status register, mapped at EL2;
            // writing 0 resets the device (virtio-mmio).
            unsafe { core::ptr::write_volatile((d.reg.base + VIRTIO_STATUS) as *mut u32, 0) };
        }
        if !self.devices.is_empty() {
            println!(
                "hyp: {} device(s) of the driver domain reset",
                self.devices.len()
            );
        }
        self.driver = None;
        self.driver_changed();
        self.console_owner_changed();
    }

    /// The driver domain was created or ended: `VIRQ_DOM_EXC` for every
    /// domain that bound it (front ends waiting for a new back end).
    pub(super) fn driver_changed(&mut self) {
        for v in pv::virq_all(hypercall_abi::event_channel::VIRQ_DOM_EXC) {
            self.notify(v);
        }
    }

    /// `hvm_op(cmd, arg)` from `cur`; the value for x0.
    pub(super) fn hvm_op(&mut self, cur: VcpuId, cmd: u64, arg: u64) -> i64 {
        let driver = hypercall_abi::hvm::DriverDomain {
            domid: self.driver,
            generation: self.driver_generation,
        };
        let Some(i) = self.dom_index(cur.dom) else {
            return Errno::ESRCH.to_raw();
        };
        let mut g = super::LiveGuest {
            dom: &mut self.domains[i],
            frames: &mut self.frames,
            vcpu: cur.vcpu as usize,
        };
        hypercall_abi::result_to_raw(crate::hvm::hvm_op(&mut g, cur.dom, driver, cmd, arg))
    }
}
