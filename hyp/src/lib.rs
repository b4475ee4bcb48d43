//! The EL2 monitor.
//!
//! Generic logic (page tables, memory map, domain building, hypercall
//! handling, scheduling) is plain Rust that builds and is tested on the host;
//! the architecture layer (`arch`) is built only for the bare-metal target.
#![cfg_attr(not(test), no_std)]
extern crate alloc;

pub mod builder;
pub mod config;
pub mod console;
pub mod console_in;
pub mod domctl;
pub mod esr;
pub mod evtchn;
pub mod fastpath;
pub mod frames;
pub mod grant;
pub mod hvm;
pub mod hypercall;
pub mod loader;
pub mod memmap;
pub mod mmu_calls;
pub mod pagetable;
pub mod pvmmu;
pub mod pvops;
pub mod sched;
pub mod vcpu;
pub mod vmid;
pub mod vtime;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[path = "arch/aarch64/mod.rs"]
pub mod arch;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod monitor;
