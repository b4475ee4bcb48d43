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
//!   ring test does), since no toolstack passes them yet; the guest learns
//!   the driver domain's id from its command line (`backend=N`);
//! * the driver domain, once bound, maps both pages, writes the guest's
//!   device entries (`pvdev::devices`) and serves the store;
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
    crate::events::wait_sleeping(port, seen, || {
        hypercall_abi::evtchn_guest::status(hypercall_abi::event_channel::DOMID_SELF, port)
            .map_or(true, |s| {
                s.status == hypercall_abi::event_channel::EVTCHNSTAT_UNBOUND
            })
    })
    .is_some()
}

/// A guest's connection to its driver domain: grants, the store, the
/// console (which then carries the guest's `println!`).
pub struct Session {
    /// The guest's grant table.
    pub grants: grants::Grants,
    /// The store client.
    pub store: store_client::StoreClient,
    /// The driver domain.
    pub backend: u16,
}

/// Sets up the fixed convention for driver domain `backend` (grants 0
/// and 1, ports 1 and 2), waits up to `timeout_ns` for the driver domain
/// to bind the store's port, then sends the console output through the
/// console page.
pub fn start(backend: u16, timeout_ns: u64) -> Result<Session, &'static str> {
    use hypercall_abi::event_channel::{DOMID_SELF, EVTCHNSTAT_INTERDOMAIN};
    use hypercall_abi::evtchn_guest as ev;
    use hypercall_abi::io::xs_wire::XenstoreDomainInterface;
    crate::events::init().map_err(|_| "cannot map shared info")?;
    let grants = grants::Grants::init().map_err(|_| "cannot map the grant table")?;
    let page = grants::leak_page(XenstoreDomainInterface::new());
    grants.grant_reserved(STORE_REF, backend, grants::gfn_of(page));
    let console = console_front::ConsoleFront::new(&grants, backend, CONSOLE_PORT);
    if ev::alloc_unbound(backend) != Ok(STORE_PORT)
        || ev::alloc_unbound(backend) != Ok(CONSOLE_PORT)
    {
        return Err("ports 1 and 2 not free");
    }
    let _ = ev::unmask(STORE_PORT);
    let _ = ev::unmask(CONSOLE_PORT);
    crate::events::bind_timer().map_err(|_| "cannot bind VIRQ_TIMER")?;
    let until = crate::time::now_ns() + timeout_ns;
    while ev::status(DOMID_SELF, STORE_PORT).map(|s| s.status) != Ok(EVTCHNSTAT_INTERDOMAIN) {
        if crate::time::now_ns() > until {
            return Err("the driver domain never bound the store's port");
        }
        crate::events::sleep(10_000_000);
    }
    console_front::install(console);
    let page: &'static XenstoreDomainInterface = &page.0;
    Ok(Session {
        grants,
        store: store_client::StoreClient::new(page, STORE_PORT),
        backend,
    })
}
