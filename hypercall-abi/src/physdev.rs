//! `physdev_op` (hypercall 33, Xen's `public/physdev.h`): the one
//! operation a driver domain needs for a passed-through device's
//! interrupt, `PHYSDEVOP_eoi`.
//!
//! # Passed-through interrupts
//!
//! The monitor gives the driver domain its devices' interrupts as virtual
//! IRQs (`VIRQ_ARCH_0 + k` for the k-th passed device, named by the
//! device's `pvh,virq` property in the domain's device tree). When the
//! device's line fires the monitor masks it and raises the VIRQ; the
//! domain binds the VIRQ with `EVTCHNOP_bind_virq(V, 0)`, handles the
//! device (acknowledging its own interrupt status register), then calls
//! `physdev_op(PHYSDEVOP_eoi, &PhysdevEoi { irq: V })` and the monitor
//! unmasks the line. Until then the line stays masked, so a device that
//! keeps asserting its interrupt cannot flood the monitor.
//!
//! Errors: `-EINVAL` for an `irq` that names no passed-through
//! interrupt of the caller, `-ENOSYS` for other commands.
//!
//! ```
//! use hypercall_abi::physdev::*;
//! assert_eq!(PHYSDEVOP_EOI, 12);
//! assert_eq!(core::mem::size_of::<PhysdevEoi>(), 4);
//! assert_eq!(virq_for_device(1), Some(17));
//! assert_eq!(device_for_virq(17), Some(1));
//! assert_eq!(virq_for_device(8), None);
//! ```

use crate::event_channel::NR_VIRQS;

/// `PHYSDEVOP_eoi`: end of interrupt for `struct physdev_eoi`.
pub const PHYSDEVOP_EOI: u64 = 12;
/// `PHYSDEVOP_irq_status_query` (not implemented).
pub const PHYSDEVOP_IRQ_STATUS_QUERY: u64 = 5;
/// `PHYSDEVOP_map_pirq` (not implemented).
pub const PHYSDEVOP_MAP_PIRQ: u64 = 13;
/// `PHYSDEVOP_unmap_pirq` (not implemented).
pub const PHYSDEVOP_UNMAP_PIRQ: u64 = 14;

/// `VIRQ_ARCH_0`: the first architecture-specific VIRQ (Xen's
/// `VIRQ_ARCH_0`); passed-through device k uses `VIRQ_ARCH_0 + k`.
pub const VIRQ_ARCH_0: u32 = 16;
/// Passed-through interrupts available (`VIRQ_ARCH_0..NR_VIRQS`).
pub const MAX_PASSTHROUGH_IRQS: u32 = NR_VIRQS - VIRQ_ARCH_0;

/// `struct physdev_eoi`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevEoi {
    /// In: the interrupt (here: the VIRQ number of the device).
    pub irq: u32,
}

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
    if virq >= VIRQ_ARCH_0 && virq < NR_VIRQS {
        Some(virq - VIRQ_ARCH_0)
    } else {
        None
    }
}

const _: () = {
    assert!(core::mem::size_of::<PhysdevEoi>() == 4);
    assert!(MAX_PASSTHROUGH_IRQS == 8);
};

/// `physdev_op(PHYSDEVOP_eoi, {irq})`: the driver domain is done with the
/// device behind VIRQ `irq`; the monitor unmasks its line.
#[cfg(target_arch = "aarch64")]
pub fn eoi(irq: u32) -> Result<(), crate::Errno> {
    let mut a = PhysdevEoi { irq };
    // SAFETY: `a` is a live, aligned `struct physdev_eoi`, which is what
    // the monitor reads for PHYSDEVOP_eoi; it writes nothing.
    let r = unsafe { crate::hvc::hypercall2(crate::nr::PHYSDEV_OP, PHYSDEVOP_EOI, core::ptr::from_mut(&mut a) as u64) };
    crate::result_from_raw(r).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_and_numbers() {
        assert_eq!(core::mem::offset_of!(PhysdevEoi, irq), 0);
        assert_eq!(crate::nr::PHYSDEV_OP, 33);
        assert_eq!((virq_for_device(0), virq_for_device(7), virq_for_device(8)), (Some(16), Some(23), None));
        assert_eq!((device_for_virq(15), device_for_virq(16), device_for_virq(24)), (None, Some(0), None));
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
