//! Split virtual devices: the logic that runs inside the driver domain
//! (back ends, the device store) and inside guests (front ends), kept
//! free of hypercalls so that it is tested on the host. The guest kernel
//! connects it to real rings, grants and event channels.
//!
//! * [`store`]: the device store (a xenstore): tree, permissions, quotas,
//!   watches, transactions and the wire protocol over the store ring.
//! * [`xenbus`]: the `XenbusState` handshake of a front end and a back end,
//!   including reconnection after a back end restarts.
//! * [`blkback`]: block back end: request validation and execution against
//!   a [`blkback::Disk`] and a [`blkback::GrantAccess`]; a RAM disk.
//! * [`blkfront`]: block front end: splitting I/O into requests, requests
//!   in flight, responses matched by id.
//! * [`devices`]: the store entries of a guest's devices (Xen's paths and
//!   permissions) and the back end's handshake through them.
//! * [`netback`]: the driver domain's learning bridge and tx/rx checks.
//! * [`dma`]: the driver domain's DMA window allocator and the checks on
//!   the passed-through devices its device tree describes.
//! * [`consback`]: many domains' consoles on one serial line, labelled,
//!   with an input switch key sequence.
//!
//! Everything here treats what another domain wrote as untrusted: it
//! validates, answers errors, and never panics on input.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod blkback;
pub mod blkfront;
pub mod consback;
pub mod devices;
pub mod dma;
pub mod netback;
pub mod reconnect;
pub mod store;
pub mod xenbus;

/// A domain id (`domid_t`).
pub type DomId = u16;
