//! `physdev_op` (hypercall [`crate::nr::PHYSDEV_OP`], 33): the driver
//! domain's side of the devices the monitor gives it.
//!
//! A driver domain (configured `driver`) receives the machine's devices:
//! each device's MMIO registers are mapped at their machine address, and
//! its device-tree node (`virtio_mmio@...`, `compatible = "virtio,mmio"`)
//! carries `pvh,virq = <V>`, the VIRQ its interrupt arrives on
//! (`VIRQ_ARCH_0 + k`, 16..=23). When the device interrupts, the monitor
//! masks the physical interrupt and raises VIRQ `V`; once the driver has
//! handled the device (and cleared the device's own interrupt status) it
//! calls [`PHYSDEVOP_EOI`] with `irq = V`, and the monitor unmasks the
//! physical interrupt. A driver domain should also EOI each VIRQ once
//! after binding it, in case the device interrupted before the binding.
//!
//! Device DMA must stay inside the window the `/hypervisor` node's
//! `pvh,dma-window = <base size>` names: RAM mapped at guest-physical ==
//! machine-physical, because the machine has no IOMMU in front of the
//! devices (addresses given to a device are those identity addresses).
//!
//! ```
//! use hypercall_abi::physdev::{PhysdevEoi, PHYSDEVOP_EOI};
//! let eoi = PhysdevEoi { irq: 16 };
//! assert_eq!((PHYSDEVOP_EOI, eoi.irq), (12, 16));
//! // guest::physdev_eoi(16) after handling the device behind VIRQ 16.
//! ```

/// `PHYSDEVOP_eoi`: end of interrupt; argument [`PhysdevEoi`].
pub const PHYSDEVOP_EOI: u64 = 12;

/// First VIRQ for passed-through device interrupts (Xen's `VIRQ_ARCH_0`).
pub const VIRQ_DEVICE_FIRST: u32 = 16;
/// Most devices a driver domain gets (VIRQ_ARCH_0..=VIRQ_ARCH_7).
pub const MAX_DEVICES: usize = 8;

/// Argument of [`PHYSDEVOP_EOI`] (`struct physdev_eoi`, 4 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct PhysdevEoi {
    /// The interrupt: the device's VIRQ number.
    pub irq: u32,
}

const _: () = assert!(core::mem::size_of::<PhysdevEoi>() == 4);

/// `VIRQ_ARCH_0` under Xen's name (= [`VIRQ_DEVICE_FIRST`]).
pub const VIRQ_ARCH_0: u32 = VIRQ_DEVICE_FIRST;
/// Passed-through interrupts available (`VIRQ_ARCH_0..NR_VIRQS`).
pub const MAX_PASSTHROUGH_IRQS: u32 = crate::event_channel::NR_VIRQS - VIRQ_ARCH_0;
const _: () = assert!(MAX_PASSTHROUGH_IRQS as usize == MAX_DEVICES);

/// The VIRQ of the `k`-th passed-through device, if there is one.
pub const fn virq_for_device(k: u32) -> Option<u32> {
    if k < MAX_PASSTHROUGH_IRQS {
        Some(VIRQ_ARCH_0 + k)
    } else {
        None
    }
}

/// The index of the passed-through device whose VIRQ is `virq`.
pub const fn device_for_virq(virq: u32) -> Option<u32> {
    if virq >= VIRQ_ARCH_0 && virq < crate::event_channel::NR_VIRQS {
        Some(virq - VIRQ_ARCH_0)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_and_numbers() {
        assert_eq!(core::mem::offset_of!(PhysdevEoi, irq), 0);
        assert_eq!(crate::nr::PHYSDEV_OP, 33);
        assert_eq!(
            (virq_for_device(0), virq_for_device(7), virq_for_device(8)),
            (Some(16), Some(23), None)
        );
        assert_eq!(
            (
                device_for_virq(15),
                device_for_virq(16),
                device_for_virq(24)
            ),
            (None, Some(0), None)
        );
    }

    proptest! {
        #[test]
        fn virq_mapping_round_trips(k in 0u32..64, v in 0u32..64) {
            if let Some(v) = virq_for_device(k) {
                prop_assert_eq!(device_for_virq(v), Some(k));
            }
            if let Some(k) = device_for_virq(v) {
                prop_assert_eq!(virq_for_device(k), Some(v));
            }
        }
    }
}
