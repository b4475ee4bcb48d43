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
//!   the driver domain's id from its command line (`backend=N`) or from
//!   the monitor (`hvm_op(HVMOP_get_param, HVM_PARAM_DRIVER_DOMAIN)`,
//!   see `hypercall_abi::hvm`);
//! * the driver domain, once bound, maps both pages, writes the guest's
//!   device entries (`pvdev::devices`) and serves the store;
//! * when the driver domain dies, front ends fail their I/O with an error
//!   and, once the monitor names a new driver domain, [`Session::reconnect`]
//!   redoes all of the above for it (fresh pages, ports 1 and 2 anew), and
//!   each device redoes its handshake through the new store;
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
    /// Which driver domain to use (`pvdev::reconnect`).
    pub tracker: pvdev::reconnect::Tracker,
}

/// The current driver domain as the monitor names it (`hvm_op`), if it
/// can say.
pub fn driver_domain() -> Option<hypercall_abi::hvm::DriverDomain> {
    hypercall_abi::guest::driver_domain().ok()
}

/// Gives the store's and the console's pages to `backend` (fresh pages,
/// grant references 1 and 0), allocates ports [`STORE_PORT`] and
/// [`CONSOLE_PORT`] for it, and returns the store page and the console
/// front end once `backend` has bound the store's port (within
/// `timeout_ns`).
fn offer(
    grants: &grants::Grants,
    backend: u16,
    timeout_ns: u64,
) -> Result<
    (
        &'static hypercall_abi::io::xs_wire::XenstoreDomainInterface,
        console_front::ConsoleFront,
    ),
    &'static str,
> {
    use hypercall_abi::event_channel::{DOMID_SELF, EVTCHNSTAT_INTERDOMAIN};
    use hypercall_abi::evtchn_guest as ev;
    use hypercall_abi::io::xs_wire::XenstoreDomainInterface;
    let page = grants::leak_page(XenstoreDomainInterface::new());
    grants.grant_reserved(STORE_REF, backend, grants::gfn_of(page));
    let console = console_front::ConsoleFront::new(grants, backend, CONSOLE_PORT);
    if ev::alloc_unbound(backend) != Ok(STORE_PORT)
        || ev::alloc_unbound(backend) != Ok(CONSOLE_PORT)
    {
        return Err("ports 1 and 2 not free");
    }
    let _ = ev::unmask(STORE_PORT);
    let _ = ev::unmask(CONSOLE_PORT);
    // The first time, before the timer's port exists, `sleep` yields.
    let until = crate::time::now_ns() + timeout_ns;
    while ev::status(DOMID_SELF, STORE_PORT).map(|s| s.status) != Ok(EVTCHNSTAT_INTERDOMAIN) {
        if crate::time::now_ns() > until {
            return Err("the driver domain never bound the store's port");
        }
        crate::events::sleep(10_000_000);
    }
    Ok((&page.0, console))
}

/// Sets up the fixed convention for driver domain `backend` (grants 0
/// and 1, ports 1 and 2; `None`: the one the monitor names, waiting up to
/// `timeout_ns` for one), waits up to `timeout_ns` for the driver domain
/// to bind the store's port, then sends the console output through the
/// console page. Also binds `VIRQ_TIMER` and `VIRQ_DOM_EXC` (after ports
/// 1 and 2), the latter so that [`Session::reconnect`] sleeps until a new
/// driver domain appears.
pub fn start(backend: Option<u16>, timeout_ns: u64) -> Result<Session, &'static str> {
    crate::events::init().map_err(|_| "cannot map shared info")?;
    let grants = grants::Grants::init().map_err(|_| "cannot map the grant table")?;
    let until = crate::time::now_ns() + timeout_ns;
    let backend = loop {
        match backend.or_else(|| driver_domain().and_then(|d| d.domid)) {
            Some(b) => break b,
            None if crate::time::now_ns() > until => return Err("no driver domain"),
            None => crate::events::yield_with_irqs(),
        }
    };
    let tracker = pvdev::reconnect::Tracker::new(backend, driver_domain());
    let (page, console) = offer(&grants, backend, timeout_ns)?;
    crate::events::bind_timer().map_err(|_| "cannot bind VIRQ_TIMER")?;
    bind_dom_exc();
    console_front::install(console);
    Ok(Session {
        grants,
        store: store_client::StoreClient::new(page, STORE_PORT),
        backend,
        tracker,
    })
}

/// Binds `VIRQ_DOM_EXC` (it only wakes the guest: nothing to count).
fn bind_dom_exc() {
    use hypercall_abi::evtchn_guest as ev;
    if let Ok(p) = ev::bind_virq(hypercall_abi::event_channel::VIRQ_DOM_EXC, 0) {
        let _ = ev::unmask(p);
    }
}

/// Revokes grant `r`, waiting (up to `timeout_ns`) while a dying back end
/// still has it mapped.
pub fn revoke_waiting(g: &mut grants::Grants, r: u32, timeout_ns: u64) -> bool {
    let until = crate::time::now_ns() + timeout_ns;
    loop {
        if g.revoke(r) {
            return true;
        }
        if crate::time::now_ns() > until {
            return false;
        }
        crate::events::sleep(1_000_000);
    }
}

impl Session {
    /// Whether the store's port is still connected to the back end.
    pub fn backend_alive(&self) -> bool {
        use hypercall_abi::event_channel::{DOMID_SELF, EVTCHNSTAT_INTERDOMAIN};
        hypercall_abi::evtchn_guest::status(DOMID_SELF, STORE_PORT).map(|s| s.status)
            == Ok(EVTCHNSTAT_INTERDOMAIN)
    }

    /// The back end is gone: waits (up to `timeout_ns`, sleeping until
    /// `VIRQ_DOM_EXC` or every 100 ms) for the monitor to name a new
    /// driver domain, then connects the store and the console to it from
    /// scratch (new pages granted to it, ports 1 and 2 allocated anew).
    /// The guest's output goes through `console_io` meanwhile. Devices
    /// reconnect afterwards through the new store (e.g.
    /// [`block_front::BlockFront::reconnect`]). Returns the new driver
    /// domain's id.
    pub fn reconnect(&mut self, timeout_ns: u64) -> Result<u16, &'static str> {
        use hypercall_abi::evtchn_guest as ev;
        use pvdev::reconnect::Next;
        console_front::uninstall();
        self.tracker.lost();
        let until = crate::time::now_ns() + timeout_ns;
        loop {
            let now = driver_domain();
            let d = match self.tracker.poll(now) {
                Next::Connect(d) => d,
                Next::Stay | Next::Wait => {
                    if crate::time::now_ns() > until {
                        return Err("no new driver domain");
                    }
                    crate::events::sleep(100_000_000);
                    continue;
                }
            };
            let generation = now.map_or(0, |n| n.generation);
            // Take back what the old back end had (it may still be going).
            let _ = ev::close(STORE_PORT);
            let _ = ev::close(CONSOLE_PORT);
            if !revoke_waiting(&mut self.grants, STORE_REF, 1_000_000_000)
                || !revoke_waiting(&mut self.grants, CONSOLE_REF, 1_000_000_000)
            {
                return Err("the old back end keeps the store or console page mapped");
            }
            let left = until.saturating_sub(crate::time::now_ns()).max(1);
            match offer(&self.grants, d, left) {
                Ok((page, console)) => {
                    console_front::install(console);
                    self.store = store_client::StoreClient::new(page, STORE_PORT);
                    self.backend = d;
                    self.tracker.connected(d, generation);
                    return Ok(d);
                }
                Err(e) => {
                    self.tracker.failed(d, generation);
                    if crate::time::now_ns() > until {
                        return Err(e);
                    }
                }
            }
        }
    }
}
