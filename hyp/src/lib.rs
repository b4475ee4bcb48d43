//! The EL2 monitor.
#![cfg_attr(not(test), no_std)]
extern crate alloc;
