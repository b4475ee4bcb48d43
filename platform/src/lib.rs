//! Boards, device-tree handling and drivers.
//!
//! - `devtree`: the machine description from the loader's device tree (no
//!   allocation: it runs before the monitor's MMU and heap are up).
//! - `fdt_writer`, `guest_dt`: the device tree each domain is given.
//! - `pl011`, `gic*`, `bcm_pm`: the few devices the monitor drives itself.
#![cfg_attr(not(test), no_std)]
extern crate alloc;

pub mod bcm_pm;
pub mod devtree;
pub mod fdt_writer;
pub mod gic;
pub mod gicv2;
pub mod gicv3;
pub mod guest_dt;
pub mod pl011;
