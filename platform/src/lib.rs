//! Boards, device-tree handling and drivers.
#![cfg_attr(not(test), no_std)]
extern crate alloc;

pub mod devtree;
pub mod fdt_writer;
pub mod guest_dt;
