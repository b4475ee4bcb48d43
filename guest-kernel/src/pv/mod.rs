//! Paravirtual front-end drivers over real rings, grants and event
//! channels, using the protocol logic of `pvdev` and `hypercall_abi::io`.
//!
//! Conventions shared with the driver domain (Xen's, where Xen has one):
//! * the guest's store page is granted to the store's domain as grant
//!   reference 1 (`GNTTAB_RESERVED_XENSTORE`), its console page as
//!   reference 0 (`GNTTAB_RESERVED_CONSOLE`);
//! * the guest then allocates, in this order, the store's event channel
//!   (port [`STORE_PORT`]) and the console's (port [`CONSOLE_PORT`]), both
//!   unbound for the driver domain, which binds to them by number (as the
//!   ring test does), since no toolstack passes them yet;
//! * devices are found in the store as Xen's: the front end's directory
//!   `device/<vbd|vif>/<n>` holds `backend` (the back end's directory),
//!   `backend-id`, `state`, and the ring details it publishes.
//!
//! * [`grants`]: grant-reference allocation and page-aligned pages.
//! * [`store_client`]: requests and watches over the store ring.
//! * [`console_front`]: the console page.
//! * [`block_front`]: the block device: handshake, reads, writes, flush.
//! * [`net_front`]: the network interface: handshake, send, receive.

pub mod block_front;
pub mod console_front;
pub mod grants;
pub mod net_front;
pub mod store_client;

/// Grant reference of the console page.
pub const CONSOLE_REF: u32 = 0;
/// Grant reference of the store page.
pub const STORE_REF: u32 = 1;
/// The store's event-channel port in the guest (its first).
pub const STORE_PORT: u32 = 1;
/// The console's event-channel port in the guest (its second).
pub const CONSOLE_PORT: u32 = 2;

/// Waits for an event on `port` after `seen` events, sending on it first
/// if `kick`; gives up (returns false) when the peer's end is closed.
pub fn wait_event(port: u32, seen: u32) -> bool {
    crate::events::wait(port, seen, || {
        hypercall_abi::evtchn_guest::status(hypercall_abi::event_channel::DOMID_SELF, port)
            .map_or(true, |s| s.status == hypercall_abi::event_channel::EVTCHNSTAT_UNBOUND)
    })
    .is_some()
}
