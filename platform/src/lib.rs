//! Boards, device-tree handling and drivers.
#![cfg_attr(not(test), no_std)]
extern crate alloc;

pub mod bcm_pm;
pub mod gic;
pub mod gicv2;
pub mod gicv3;
pub mod pl011;
