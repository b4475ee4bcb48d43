//! The driver domain's network back end (a child module of
//! `crate::driver`, sharing its grant mappings and store): one vif per
//! guest (Xen's netif: `device/vif/0` with `tx-ring-ref`, `rx-ring-ref`,
//! `event-channel`, `request-rx-copy`; `backend/vif/<g>/0` with `mac`,
//! `feature-rx-copy`; see `pvdev::netback::xs`), joined by
//! `pvdev::netback::Bridge` to each other and, with `uplink` on the driver
//! domain's command line, to the virtio-net device (QEMU's user network).
//!
//! Per pass of the event loop: tx requests of every vif become frames
//! (`pvdev::netback::vif::VifTx`, copying out of the front end's granted
//! pages, malformed requests and foreign grants answered
//! `NETIF_RSP_ERROR`), frames from the uplink are read, the bridge says
//! where each goes, frames for a vif wait in its bounded queue until the
//! front end has posted an rx page (`deliver`). The front ends' data
//! pages are mapped on first use and kept mapped (up to the block back
//! end's per-device limit) while the vif is connected. Nothing here waits:
//! the loop sleeps in `sched_op(block)` and wakes for the vifs' events and
//! the uplink's VIRQ.

use super::{map, unmap, Access, DataGrants, Driver, Mapping, Slots};
use crate::console::println;
use crate::dt::BootInfo;
use crate::virtio::net::VirtioNic;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use hypercall_abi::evtchn_guest as ev;
use hypercall_abi::io::netif::*;
use hypercall_abi::ring::{BackRing, SharedRing};
use netsvc::FrameIo;
use pvdev::devices::BackendLink;
use pvdev::netback::vif::{deliver, RxQueue, VifTx};
use pvdev::netback::xs::{self, format_mac, VIF_0};
use pvdev::netback::{Bridge, Forward, Mac, Port};
use pvdev::xenbus::Action;
use pvdev::DomId;

/// Frames queued per vif while its front end posts no rx pages.
const RX_QUEUE: usize = 64;
/// Requests (or uplink frames) taken per pass before the others get a turn.
const BATCH: usize = 64;
/// MACs the bridge learns.
const BRIDGE_MACS: usize = 256;

struct VifConn {
    tx: BackRing<'static, NetifTxRequest, NetifTxResponse>,
    rx: BackRing<'static, NetifRxRequest, NetifRxResponse>,
    port: u32,
    maps: [Mapping; 2],
    grants: DataGrants,
}

struct Vif {
    name: String,
    link: BackendLink,
    mac: Mac,
    conn: Option<VifConn>,
    tx: VifTx,
    rxq: RxQueue,
    /// Frames delivered, rx error responses.
    counts: (u64, u64),
    ever_connected: bool,
}

/// The bridge, its ports and the uplink.
pub(super) struct Net {
    bridge: Bridge,
    uplink: Option<VirtioNic>,
    irq_seen: u32,
    vifs: BTreeMap<DomId, Vif>,
    buf: Vec<u8>,
    /// Frames the bridge dropped.
    dropped: u64,
    /// The store's generation when the vif links last looked at it.
    links_seen: u64,
}

impl Net {
    /// The bridge; with `uplink` on the command line, probes the
    /// passed-through devices and puts virtio-net on it.
    pub(super) fn new(info: &BootInfo) -> Net {
        let mut bridge = Bridge::new(BRIDGE_MACS);
        let mut uplink = None;
        if info.bootargs.split_whitespace().any(|w| w == "uplink") {
            match crate::virtio_direct::probe(info).nic {
                Some(n) => {
                    bridge.add_port(Port::Uplink);
                    println!(
                        "driver: net: bridge up, uplink virtio-net {}",
                        format_mac(&n.mac())
                    );
                    uplink = Some(n);
                }
                None => println!("driver: net: no virtio-net device: bridge without uplink"),
            }
        } else {
            println!("driver: net: bridge up, guests only (no uplink)");
        }
        Net {
            bridge,
            uplink,
            irq_seen: 0,
            vifs: BTreeMap::new(),
            buf: vec![0; netsvc::FRAME_MAX],
            dropped: 0,
            links_seen: u64::MAX,
        }
    }

    /// After a scan: a vif for each guest whose store is connected; the
    /// vifs of departed guests disconnected and removed.
    pub(super) fn sync(&mut self, d: &mut Driver) {
        let gone: Vec<DomId> = self
            .vifs
            .keys()
            .copied()
            .filter(|g| !d.guests.contains_key(g))
            .collect();
        for g in gone {
            let Some(mut v) = self.vifs.remove(&g) else {
                continue;
            };
            if let Some(c) = v.conn.take() {
                disconnect(c, &mut d.slots);
            }
            self.bridge.remove_port(Port::Vif(g));
            xs::remove_vifs(&mut d.store, d.me, g);
            if v.ever_connected {
                println!(
                    "driver: dom{g} ({}) gone: vif {VIF_0} tx {} packets, {} refused; rx {} delivered, {} errors, {} dropped",
                    v.name, v.tx.packets, v.tx.errors, v.counts.0, v.counts.1, v.rxq.dropped
                );
            }
        }
        for (&g, guest) in d.guests.iter() {
            if guest.store.is_none() || self.vifs.contains_key(&g) {
                continue;
            }
            let mac = xs::vif_mac(g, VIF_0);
            match xs::create_vif(&mut d.store, d.me, g, VIF_0, &mac)
                .and_then(|p| BackendLink::start(&mut d.store, d.me, p))
            {
                Ok(link) => {
                    self.bridge.add_vif(g, mac);
                    let v = Vif {
                        name: guest.name.clone(),
                        link,
                        mac,
                        conn: None,
                        tx: VifTx::new(),
                        rxq: RxQueue::new(RX_QUEUE),
                        counts: (0, 0),
                        ever_connected: false,
                    };
                    self.vifs.insert(g, v);
                }
                Err(e) => println!(
                    "driver: dom{g} ({}): cannot write its vif entries: {}",
                    guest.name,
                    e.name()
                ),
            }
        }
    }

    /// One pass: handshakes, tx rings, the uplink, the bridge, rx rings.
    pub(super) fn service(&mut self, d: &mut Driver) -> bool {
        let me = d.me;
        let mut did = false;
        let mut frames: Vec<(Port, Vec<u8>)> = Vec::new();
        // The front ends' states are read only when the store changed.
        let stale = d.store.generation() != self.links_seen;
        self.links_seen = d.store.generation();
        for (&g, v) in self.vifs.iter_mut() {
            match if stale {
                v.link.poll(&mut d.store, me)
            } else {
                Action::None
            } {
                Action::Connect => {
                    did = true;
                    if let Some(c) = v.conn.take() {
                        disconnect(c, &mut d.slots);
                    }
                    match connect(g, &mut d.store, me, &v.link, &mut d.slots) {
                        Ok((c, what)) => {
                            v.conn = Some(c);
                            v.ever_connected = true;
                            v.link.connected(&mut d.store, me);
                            d.served_any = true;
                            println!(
                                "driver: dom{g} ({}): vif {VIF_0} connected: mac {}, {what}",
                                v.name,
                                format_mac(&v.mac)
                            );
                        }
                        Err(why) => {
                            v.link.failed(&mut d.store, me, why);
                            println!("driver: dom{g} ({}): vif {VIF_0} refused: {why}", v.name);
                        }
                    }
                }
                Action::TearDown => {
                    did = true;
                    if let Some(c) = v.conn.take() {
                        disconnect(c, &mut d.slots);
                        println!("driver: dom{g} ({}): vif {VIF_0} disconnected", v.name);
                    }
                }
                Action::None => {}
                _ => did = true,
            }
            let Some(c) = v.conn.as_mut() else { continue };
            match serve_tx(g, c, &mut v.tx, &mut d.slots, &mut frames) {
                Ok(x) => did |= x,
                Err(()) => {
                    println!(
                        "driver: dom{g} ({}): vif {VIF_0}: ring indices corrupt, disconnected",
                        v.name
                    );
                    if let Some(c) = v.conn.take() {
                        disconnect(c, &mut d.slots);
                    }
                    v.link.failed(&mut d.store, me, "ring indices corrupt");
                }
            }
        }
        if let Some(nic) = self.uplink.as_mut() {
            let seen = nic.irq.seen();
            for _ in 0..BATCH {
                let Some(n) = nic.recv(&mut self.buf) else {
                    break;
                };
                frames.push((Port::Uplink, self.buf[..n].to_vec()));
            }
            if seen != self.irq_seen {
                self.irq_seen = seen;
                nic.ack();
            }
        }
        did |= !frames.is_empty();
        for (from, f) in frames {
            match self.bridge.forward(from, &f) {
                Forward::To(p) => self.send_to(p, f),
                Forward::Flood(ps) => {
                    for p in ps {
                        self.send_to(p, f.clone());
                    }
                }
                Forward::Drop(_) => self.dropped += 1,
            }
        }
        for (&g, v) in self.vifs.iter_mut() {
            let Some(c) = v.conn.as_mut() else { continue };
            match serve_rx(c, &mut v.rxq, &mut v.counts, &mut d.slots) {
                Ok(x) => did |= x,
                Err(()) => {
                    println!(
                        "driver: dom{g} ({}): vif {VIF_0}: rx ring indices corrupt, disconnected",
                        v.name
                    );
                    if let Some(c) = v.conn.take() {
                        disconnect(c, &mut d.slots);
                    }
                    v.link.failed(&mut d.store, me, "ring indices corrupt");
                }
            }
        }
        did
    }

    fn send_to(&mut self, p: Port, f: Vec<u8>) {
        match p {
            Port::Uplink => {
                if let Some(n) = self.uplink.as_mut() {
                    let _ = n.send(&f);
                }
            }
            Port::Vif(g) => {
                if let Some(v) = self.vifs.get_mut(&g) {
                    if v.conn.is_some() {
                        v.rxq.push(f);
                    }
                }
            }
        }
    }
}

/// Maps the two rings and binds the channel the front end published.
fn connect(
    g: DomId,
    store: &mut pvdev::store::Store,
    me: DomId,
    link: &BackendLink,
    slots: &mut Slots,
) -> Result<(VifConn, String), &'static str> {
    let det = xs::read_vif_details(store, me, &link.paths.front)
        .map_err(|_| "bad tx-ring-ref, rx-ring-ref, event-channel or request-rx-copy")?;
    let port =
        ev::bind_interdomain(g, det.event_channel).map_err(|_| "event-channel cannot be bound")?;
    let Some(tm) = map(g, det.tx_ring_ref, slots, true) else {
        let _ = ev::close(port);
        return Err("tx-ring-ref not granted");
    };
    let Some(rm) = map(g, det.rx_ring_ref, slots, true) else {
        let _ = ev::close(port);
        unmap(tm, slots);
        return Err("rx-ring-ref not granted");
    };
    // SAFETY: the front end's ring pages, mapped at `tm.addr`/`rm.addr` in
    // the grant window (no Rust object there) until `disconnect` drops
    // the rings and then unmaps them. The type is all atomics.
    let (ts, rs): (&'static SharedRing, &'static SharedRing) = unsafe {
        (
            &*(tm.addr as *const SharedRing),
            &*(rm.addr as *const SharedRing),
        )
    };
    let (Ok(tx), Ok(rx)) = (BackRing::attach(ts), BackRing::attach(rs)) else {
        let _ = ev::close(port);
        unmap(tm, slots);
        unmap(rm, slots);
        return Err("ring indices corrupt");
    };
    let _ = ev::unmask(port);
    let grants = DataGrants {
        dom: g,
        persistent: true,
        cache: super::GrantCache::new(super::CACHE_MAX),
        temp: Vec::new(),
    };
    let what = alloc::format!(
        "tx-ring-ref {}, rx-ring-ref {}, event-channel {}",
        det.tx_ring_ref,
        det.rx_ring_ref,
        det.event_channel
    );
    Ok((
        VifConn {
            tx,
            rx,
            port,
            maps: [tm, rm],
            grants,
        },
        what,
    ))
}

fn disconnect(mut c: VifConn, slots: &mut Slots) {
    c.grants.release(slots);
    let _ = ev::close(c.port);
    let maps = c.maps;
    drop(c);
    for m in maps {
        unmap(m, slots);
    }
}

/// Takes tx requests; frames that pass go to `out`. `Err` if the front
/// end broke the ring.
fn serve_tx(
    g: DomId,
    c: &mut VifConn,
    tx: &mut VifTx,
    slots: &mut Slots,
    out: &mut Vec<(Port, Vec<u8>)>,
) -> Result<bool, ()> {
    let mut n = 0;
    loop {
        while n < BATCH {
            let Some(req) = c.tx.take_request().map_err(|_| ())? else {
                break;
            };
            n += 1;
            let mut a = Access {
                g: &mut c.grants,
                slots,
            };
            let done = tx.push(&req, &mut a);
            a.end();
            if let Some(o) = done {
                for r in &o.responses {
                    c.tx.push_response(r).map_err(|_| ())?;
                }
                if let Some(f) = o.frame {
                    out.push((Port::Vif(g), f));
                }
            }
        }
        if c.tx.push_responses() {
            let _ = ev::send(c.port);
        }
        if n >= BATCH || !c.tx.final_check_for_requests().map_err(|_| ())? {
            return Ok(n > 0);
        }
    }
}

/// Copies queued frames into the pages the front end posted.
fn serve_rx(
    c: &mut VifConn,
    rxq: &mut RxQueue,
    counts: &mut (u64, u64),
    slots: &mut Slots,
) -> Result<bool, ()> {
    let mut n = 0;
    loop {
        while !rxq.is_empty() {
            let Some(req) = c.rx.take_request().map_err(|_| ())? else {
                break;
            };
            let Some(f) = rxq.pop() else { break };
            let mut a = Access {
                g: &mut c.grants,
                slots,
            };
            let rsp = deliver(&req, &f, &mut a);
            a.end();
            if rsp.status < 0 {
                counts.1 += 1;
            } else {
                counts.0 += 1;
            }
            c.rx.push_response(&rsp).map_err(|_| ())?;
            n += 1;
        }
        if c.rx.push_responses() {
            let _ = ev::send(c.port);
        }
        // Frames waiting and no page posted: ask to be told when one is.
        if rxq.is_empty() || !c.rx.final_check_for_requests().map_err(|_| ())? {
            return Ok(n > 0);
        }
    }
}
