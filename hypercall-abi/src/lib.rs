//! The hypercall ABI between the monitor (EL2) and paravirtual guests (EL1).
//!
//! This crate is the single contract between the monitor and the guest
//! kernels it runs. It defines *numbers, layouts and rules*; both sides
//! depend on it so they cannot drift apart. The numbering follows Xen on
//! Arm, so Xen's public headers and documentation describe the same calls.
//!
//! # Calling convention
//!
//! A guest makes a hypercall with the instruction `hvc #0xEA1`
//! ([`nr::HVC_IMM`]):
//!
//! | register | direction | contents |
//! |---|---|---|
//! | `x16` | in | hypercall number, a constant of [`nr`] |
//! | `x0..x4` | in | up to five arguments (a sub-operation, a count, an address, ...) |
//! | `x0` | out | result, read as `i64` |
//! | `x0..x4`, `x16` | — | clobbered: may hold any value after the call |
//!
//! All other general-purpose registers, SIMD/FP registers, `sp`, and the
//! condition flags are preserved. The result is decoded with
//! [`result_from_raw`]: a value in `-4095..=-1` is a negated errno
//! ([`Errno`], e.g. `-22` = `EINVAL`); anything else is success, usually 0.
//! An unknown hypercall number or sub-operation returns `-ENOSYS`.
//!
//! **Pointer arguments** are guest *virtual* addresses. The monitor
//! translates them through the guest's current stage-1 tables and then its
//! stage-2 tables, as if the guest had accessed them at EL1; an address
//! that does not translate, or memory the guest may not access, gives
//! `-EFAULT`. Shared memory uses the AAPCS64 layout, little-endian, Normal
//! write-back inner-shareable; structs here are `#[repr(C)]` with their
//! size asserted at compile time. The ABI page size is 4 KiB.
//!
//! `hvc #0` is not a hypercall: it is the SMCCC/PSCI conduit (function id
//! in `w0`, see [`psci`]), used to start and stop vCPUs. Other `hvc`
//! immediates are reserved and make the monitor inject an undefined
//! instruction exception.
//!
//! # Modules
//!
//! * [`nr`]: hypercall numbers (Xen's) and the `hvc` immediate.
//! * [`errno`]: error numbers, [`Errno`], [`result_from_raw`] /
//!   [`result_to_raw`].
//! * [`console`]: `console_io`, the early debug console.
//! * [`sched`]: `sched_op`: yield, block, shutdown with a
//!   [`sched::ShutdownReason`].
//! * [`vcpu`]: `vcpu_op` (vCPU up/down, one-shot timer) and
//!   `set_timer_op`.
//! * [`domctl`]: domain management (create, destroy, pause, list,
//!   scheduler parameters) from the privileged domain.
//! * [`version`]: `xen_version`: ABI version, identification, features.
//! * [`mmu`]: the paravirtual MMU: `mmu_update`, `mmuext_op`, the rules
//!   the monitor validates stage-1 tables against, and [`mmu::MmuBatch`].
//! * [`multicall`]: several hypercalls in one trap.
//! * [`psci`]: SMCCC/PSCI function ids and status codes for `hvc #0`.
//! * [`event_channel`]: `event_channel_op`: ports, VIRQs, the upcall and
//!   how a guest acknowledges it.
//! * [`shared_info`]: the shared-info page, `vcpu_info`, 2-level bitmaps.
//! * [`grant_table`]: `grant_table_op`: v1 grant entries, map, unmap, copy.
//! * [`memory`]: `memory_op(XENMEM_add_to_physmap)` and the guest-physical
//!   windows for the monitor's pages and grant mappings.
//! * [`ring`]: shared request/response rings (`io/ring.h`), safe against a
//!   hostile peer.
//! * [`io`]: split-device protocols: block, network, console, the device
//!   store's wire format and the `XenbusState` handshake.
//! * [`physdev`]: `physdev_op(PHYSDEVOP_eoi)`: the driver domain's devices
//!   (interrupts as VIRQs, the DMA window).
//! * [`hvm`]: `hvm_op(HVMOP_get_param)`: which domain is the driver domain
//!   now (front ends reconnect through it).
//! * `hvc` (aarch64 only): the raw `hypercall0`..`hypercall5` and
//!   `smccc_hvc0` instructions, the only `unsafe` code.
//! * `guest` (aarch64 only): safe wrappers for a guest kernel;
//!   `evtchn_guest` and `gnttab_guest` for event channels and grants.
//!
//! The monitor uses the numbers, structs and the monitor-side helpers
//! ([`result_to_raw`], [`console::check_count`],
//! [`sched::ShutdownReason::from_raw`], [`psci::status_to_x0`]); it never
//! needs `hvc` or `guest`.
//!
//! # Example: a minimal guest
//!
//! A guest kernel that prints "hello" and powers off. It is built for
//! `aarch64-unknown-none-softfloat` and entered by the monitor at
//! `kernel_main` (with a stack set up by the guest's own start-up code).
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//!
//! use core::fmt::Write;
//! use hypercall_abi::{guest, version};
//!
//! #[no_mangle]
//! pub extern "C" fn kernel_main() -> ! {
//!     // One console_io(CONSOLEIO_WRITE) hypercall.
//!     guest::console_write(b"hello\n").ok();
//!
//!     // Check that the monitor speaks our ABI version.
//!     if let Ok((major, minor)) = guest::xen_version() {
//!         let ok = version::guest_compatible(version::encode_version(major, minor));
//!         let _ = writeln!(guest::Console, "monitor ABI {major}.{minor}, compatible: {ok}");
//!     }
//!
//!     // sched_op(SCHEDOP_SHUTDOWN, &SchedShutdown { reason: Poweroff }).
//!     guest::poweroff()
//! }
//!
//! #[panic_handler]
//! fn panic(info: &core::panic::PanicInfo) -> ! {
//!     let _ = writeln!(guest::Console, "panic: {info}");
//!     guest::crash()
//! }
//! ```
//!
//! The same calls without the wrappers, as a guest written in another
//! language would issue them:
//!
//! ```text
//!     // console_io(CONSOLEIO_WRITE, 6, msg)
//!     mov  x16, #18          // nr::CONSOLE_IO
//!     mov  x0,  #0           // console::CONSOLEIO_WRITE
//!     mov  x1,  #6           // byte count, <= console::CONSOLE_IO_MAX
//!     adr  x2,  msg          // guest virtual address of "hello\n"
//!     hvc  #0xEA1
//!     // x0 == 0 on success, -errno on failure; x1-x4, x16 clobbered
//!
//!     // sched_op(SCHEDOP_SHUTDOWN, &reason)
//!     mov  x16, #29          // nr::SCHED_OP
//!     mov  x0,  #2           // sched::SCHEDOP_SHUTDOWN
//!     adr  x1,  reason       // struct SchedShutdown { reason: u32 = 0 (poweroff) }
//!     hvc  #0xEA1            // does not return on success
//! ```
//!
//! # Versioning
//!
//! The ABI has a version [`ABI_VERSION_MAJOR`].[`ABI_VERSION_MINOR`],
//! independent of the crate's Cargo version (which tracks the Rust API).
//! The monitor reports the ABI version it implements from `xen_version`
//! sub-op `XENVER_VERSION` as `major << 16 | minor`
//! ([`version::ABI_VERSION`]).
//!
//! * **Minor** bump: backwards-compatible additions only: a new hypercall,
//!   sub-operation, feature bit, errno, or a meaning for a value that used
//!   to be rejected. Guests built against an older minor keep working.
//! * **Major** bump: any change to an existing number, struct layout,
//!   register use, or documented semantics. Guests built against another
//!   major must not assume anything beyond `XENVER_VERSION` itself, which
//!   keeps its meaning across all versions.
//!
//! A guest built against this crate is safe on a monitor reporting the same
//! major and a minor at least [`ABI_VERSION_MINOR`]
//! ([`version::guest_compatible`]). The monitor should report exactly the
//! version of the crate it was built with.

#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod console;
pub mod domctl;
pub mod errno;
pub mod event_channel;
pub mod grant_table;
pub mod hvm;
pub mod io;
pub mod memory;
pub mod mmu;
pub mod multicall;
pub mod nr;
pub mod physdev;
pub mod psci;
pub mod ring;
pub mod sched;
pub mod shared_info;
pub mod vcpu;
pub mod version;

#[cfg(target_arch = "aarch64")]
pub mod evtchn_guest;
#[cfg(target_arch = "aarch64")]
pub mod gnttab_guest;
#[cfg(target_arch = "aarch64")]
pub mod guest;
#[cfg(target_arch = "aarch64")]
pub mod hvc;

#[cfg(test)]
mod event_tests;
#[cfg(test)]
mod ring_tests;
#[cfg(test)]
mod tests;

const _: () = {
    assert!(core::mem::size_of::<ring::SharedRing>() == 4096);
    assert!(ring::slots_offset() == ring::HEADER_BYTES);
};

/// The atomics the ring uses (the loom model test swaps in its own).
mod sync {
    pub(crate) use core::sync::atomic::{fence, AtomicU32, Ordering};
}

pub use errno::{result_from_raw, result_to_raw, Errno};

/// Major version of the ABI; bumped on any incompatible change.
pub const ABI_VERSION_MAJOR: u16 = 1;
/// Minor version of the ABI; bumped on backwards-compatible additions.
pub const ABI_VERSION_MINOR: u16 = 2;
