//! The paravirtual guest kernel: an EL1 program that the monitor boots
//! like an arm64 Linux `Image` and that talks to it only through
//! hypercalls. What it does is chosen by the first word of its command line
//! that it knows (see `kmain`).
//!
//! Everything but the host stub is built only for the bare-metal target,
//! so `cargo build`/`cargo test` of the workspace on the host still work.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_os = "none")]
mod console;

#[cfg(target_os = "none")]
extern crate alloc;
#[cfg(target_os = "none")]
mod heap;
// The front-end drivers (the network one is not used by a mode yet).
#[cfg(target_os = "none")]
mod blk_test;
#[cfg(target_os = "none")]
mod driver;
#[cfg(target_os = "none")]
mod echo;
#[cfg(target_os = "none")]
#[allow(dead_code)]
mod pv;

#[cfg(target_os = "none")]
mod bench;
#[cfg(target_os = "none")]
mod bench_sched;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod dev_checks;
#[cfg(target_os = "none")]
mod dt;
#[cfg(target_os = "none")]
mod events;
#[cfg(target_os = "none")]
mod exceptions;
#[cfg(target_os = "none")]
mod irq;
#[cfg(target_os = "none")]
mod kmain;
#[cfg(target_os = "none")]
mod mgr;
#[cfg(target_os = "none")]
mod mmu_bench;
#[cfg(target_os = "none")]
mod mmu_checks;
mod net_test;
#[cfg(target_os = "none")]
mod paging;
mod pv_bench;
#[cfg(target_os = "none")]
mod pv_checks;
#[cfg(target_os = "none")]
mod ring_test;
#[cfg(target_os = "none")]
mod smp;
#[cfg(target_os = "none")]
mod tally;
#[cfg(target_os = "none")]
mod tasks;
#[cfg(target_os = "none")]
mod tests;
#[cfg(target_os = "none")]
mod time;
#[cfg(target_os = "none")]
mod virtio;
#[cfg(target_os = "none")]
mod virtio_direct;
#[cfg(target_os = "none")]
mod work;

/// Host stub: the kernel only runs on the bare-metal target.
#[cfg(not(target_os = "none"))]
fn main() {}
