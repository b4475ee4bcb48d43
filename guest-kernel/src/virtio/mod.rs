//! The driver domain's real devices: virtio-mmio devices passed through by
//! the monitor, driven with the `virtio-drivers` crate.
//!
//! * discovery: `/hypervisor/pvh,dma-window` and the `virtio,mmio` nodes
//!   (`reg`, `pvh,virq`) of the device tree, checked by
//!   [`pvdev::dma::Passthrough`] before use;
//! * [`hal`]: the crate's HAL over the DMA window (allocations from
//!   [`pvdev::dma::DmaWindow`], `share` bounces through the window, since
//!   the device sees machine-physical addresses and only the window is
//!   identity-mapped);
//! * [`Irq`]: a device's interrupt: `EVTCHNOP_bind_virq(V, 0)`, wait for the
//!   event, acknowledge the device, `PHYSDEVOP_eoi(V)`;
//! * [`blk`]: virtio-blk as a [`pvdev::blkback::Disk`];
//! * [`net`]: virtio-net as a [`netsvc::FrameIo`].

pub mod blk;
pub mod hal;
pub mod net;

use alloc::vec::Vec;
use hypercall_abi::evtchn_guest as ev;
use pvdev::dma::{MmioDevice, Passthrough};

/// virtio device ids (virtio 1.x, 5).
pub const DEVICE_NET: u32 = 1;
/// virtio-blk.
pub const DEVICE_BLOCK: u32 = 2;

/// Reads the passthrough description from the device tree at `dtb` and
/// checks it against guest RAM.
pub fn discover(fdt: &fdt::Fdt<'static>, ram: (u64, u64)) -> Result<Passthrough, &'static str> {
    let hyp = fdt.find_node("/hypervisor").ok_or("no /hypervisor node")?;
    let w = hyp
        .property("pvh,dma-window")
        .ok_or("no pvh,dma-window (not a driver domain?)")?
        .value;
    if w.len() != 16 {
        return Err("pvh,dma-window is not <base size> in 2+2 cells");
    }
    let be = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
    let window = (be(&w[..8]), be(&w[8..]));
    let mut devices = Vec::new();
    for n in fdt.all_nodes() {
        if !n
            .compatible()
            .is_some_and(|c| c.all().any(|s| s == "virtio,mmio"))
        {
            continue;
        }
        let Some(r) = n.reg().and_then(|mut r| r.next()) else {
            return Err("virtio,mmio node without reg");
        };
        let virq = n
            .property("pvh,virq")
            .and_then(|p| p.as_usize())
            .ok_or("virtio,mmio node without pvh,virq")?;
        devices.push(MmioDevice {
            addr: r.starting_address as u64,
            size: r.size.unwrap_or(0) as u64,
            virq: virq as u32,
        });
    }
    Passthrough::validate(ram, window, &devices).map_err(|e| match e {
        pvdev::dma::PassthroughError::BadWindow => "bad DMA window",
        pvdev::dma::PassthroughError::BadDevice(_) => "bad device registers",
        pvdev::dma::PassthroughError::BadVirq(_) => "bad pvh,virq",
        pvdev::dma::PassthroughError::TooMany => "too many devices",
    })
}

/// The virtio device id at `addr` (0: no device), read from the
/// MMIO header (magic "virt", then DeviceID at offset 8).
pub fn device_id(d: &MmioDevice) -> u32 {
    // SAFETY: `discover` checked that the page is one of the devices the
    // monitor mapped for this domain (outside RAM); reading the header
    // registers has no side effects.
    let (magic, id) = unsafe {
        (
            core::ptr::read_volatile(d.addr as *const u32),
            core::ptr::read_volatile((d.addr + 8) as *const u32),
        )
    };
    if magic == 0x7472_6976 {
        id
    } else {
        0
    }
}

/// A device's interrupt, delivered as an event on its VIRQ.
pub struct Irq {
    /// The VIRQ (`pvh,virq`).
    pub virq: u32,
    /// Its event-channel port.
    pub port: u32,
    /// Whether `PHYSDEVOP_eoi` works (else the device is polled).
    pub eoi_works: bool,
}

impl Irq {
    /// Binds `virq` on vCPU 0.
    pub fn bind(virq: u32) -> Option<Irq> {
        let port = ev::bind_virq(virq, 0).ok()?;
        let _ = ev::unmask(port);
        let mut irq = Irq {
            virq,
            port,
            eoi_works: true,
        };
        // The device may have interrupted before the binding: its line is
        // then masked until an EOI.
        irq.eoi();
        Some(irq)
    }

    /// Events seen so far.
    pub fn seen(&self) -> u32 {
        crate::events::count(self.port)
    }

    /// Waits for an event after `seen` (or one yield when polling).
    pub fn wait(&self, seen: u32) {
        if self.eoi_works {
            let _ = crate::events::wait(self.port, seen, || true);
        } else {
            crate::events::yield_with_irqs();
        }
    }

    /// Ends the interrupt (after the device's status was acknowledged).
    pub fn eoi(&mut self) {
        if self.eoi_works && hypercall_abi::guest::physdev_eoi(self.virq).is_err() {
            crate::console::println!(
                "guest: virtio: PHYSDEVOP_eoi({}) refused; polling the device",
                self.virq
            );
            self.eoi_works = false;
        }
    }
}
