//! `driver`: the driver domain. It runs the device store and the back
//! ends for every other domain, as an event loop that sleeps
//! (`sched_op(block)`) when idle and wakes for events or its timer.
//!
//! Every 20 ms (VIRQ_TIMER) it lists the domains (`DOMCTL_GETDOMAININFO`).
//! For a new one it retries `bind_interdomain(dom, 1)` (the store's port
//! by the convention of `crate::pv`); once bound, it maps the guest's
//! store page (grant 1) and console page (grant 0, port 2), writes the
//! guest's device entries (`pvdev::devices`) and starts a block back end
//! on a RAM disk of its own. A driver domain created while guests run
//! (replacing one that died) finds them the same way: each offers it
//! fresh pages and ports 1 and 2 once the monitor names it
//! (`crate::pv::Session::reconnect`). Then, per guest: the store requests are
//! served (`pvdev::store::wire::serve_ring`), console output goes to the
//! serial line labelled with the guest's name (`pvdev::consback`, through
//! this domain's `console_io`), and block requests are executed
//! (`pvdev::blkback`) straight between the RAM disk and the front end's
//! granted pages, mapped into the grant window (kept mapped while the
//! front end offers `feature-persistent`). A domain that is gone is
//! cleaned up (unmapped, unbound, its store entries removed); when the
//! last guest is gone, the driver domain powers off.
//!
//! Serial input (when this domain owns it: the monitor gives it to the
//! driver domain) arrives as `VIRQ_CONSOLE` and is read with
//! `CONSOLEIO_read`; the console mux (`pvdev::consback`) picks the guest
//! that gets it (Ctrl-] then a domain id) and it is written into that
//! guest's console `in` ring.
//!
//! Options: `disk=MIB` (each guest's RAM disk, default 8; prefilled with
//! `pvdev::blkback::disk_pattern`), `disk=virtio` (the first guest to
//! connect gets the passed-through virtio-blk disk, all of it, as its vbd;
//! the others RAM disks of 8 MiB; the virtio disk goes to the next guest
//! when that one is gone), `bench` (first measure reads and writes done
//! directly on a RAM disk, for `scripts/bench`).

use crate::console::println;
use crate::dt::BootInfo;
use crate::events;
use crate::ring_test::opt;
use crate::time::{counter, now_ns};
use crate::virtio::blk::{BackDisk, VirtioDisk};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use hypercall_abi::domctl::{
    until_nul, DomainInfo, Domctl, DOMCTL_GETDOMAININFO, DOMINF_DYING, DOMINF_SHUTDOWN,
};
use hypercall_abi::event_channel::DOMID_SELF;
use hypercall_abi::evtchn_guest as ev;
use hypercall_abi::gnttab_guest as gt;
use hypercall_abi::grant_table::{GrantHandle, GrantRef};
use hypercall_abi::guest;
use hypercall_abi::io::blkif::{BlkifRequest, BlkifResponse};
use hypercall_abi::io::console::XenconsInterface;
use hypercall_abi::io::xs_wire::{XenstoreDomainInterface, XENSTORE_ERROR_RINGIDX};
use hypercall_abi::memory::{GUEST_GRANT_MAP_BASE, GUEST_GRANT_MAP_SIZE};
use hypercall_abi::ring::{BackRing, SharedRing};
use pvdev::blkback::{disk_pattern, BlkBack, Disk, GrantAccess, GrantCache, GrantError, RamDisk};
use pvdev::consback::{ConsoleId, ConsoleMux};
use pvdev::devices::{self, BackendLink, VBD_XVDA};
use pvdev::store::wire::{serve_ring, Connection};
use pvdev::store::{Limits, Store};
use pvdev::xenbus::Action;
use pvdev::DomId;

#[path = "driver_net.rs"]
mod net;

/// Persistent mappings kept per block device.
const CACHE_MAX: usize = 128;
/// Requests taken from one ring before the others get a turn.
const BATCH: usize = 64;
/// How often the domains are listed, ns.
const SCAN_NS: u64 = 20_000_000;

/// Free pages of the grant-mapping window.
struct Slots(Vec<u64>);

impl Slots {
    fn new() -> Self {
        let n = GUEST_GRANT_MAP_SIZE / 4096;
        Slots(
            (0..n)
                .rev()
                .map(|i| GUEST_GRANT_MAP_BASE + i * 4096)
                .collect(),
        )
    }
}

/// A grant mapped at `addr`.
#[derive(Clone, Copy)]
struct Mapping {
    addr: u64,
    handle: GrantHandle,
    writable: bool,
}

fn map(dom: DomId, gref: GrantRef, slots: &mut Slots, writable: bool) -> Option<Mapping> {
    let addr = slots.0.pop()?;
    match gt::map_grant_ref(dom, gref, addr, !writable) {
        Ok(handle) => Some(Mapping {
            addr,
            handle,
            writable,
        }),
        Err(_) => {
            slots.0.push(addr);
            None
        }
    }
}

fn unmap(m: Mapping, slots: &mut Slots) {
    if gt::unmap_grant_ref(m.addr, m.handle).is_ok() {
        slots.0.push(m.addr);
    }
}

/// The front end's data pages as this domain maps them.
struct DataGrants {
    dom: DomId,
    persistent: bool,
    cache: GrantCache<Mapping>,
    temp: Vec<(GrantRef, Mapping)>,
}

impl DataGrants {
    fn release(&mut self, slots: &mut Slots) {
        for (_, m) in self.cache.drain() {
            unmap(m, slots);
        }
        for (_, m) in self.temp.drain(..) {
            unmap(m, slots);
        }
    }
}

/// [`GrantAccess`] over mapped grants, for one request.
struct Access<'a> {
    g: &'a mut DataGrants,
    slots: &'a mut Slots,
}

impl Access<'_> {
    fn get(&mut self, gref: GrantRef, writable: bool) -> Result<u64, GrantError> {
        if let Some(m) = self.g.cache.get(gref) {
            if m.writable || !writable {
                return Ok(m.addr);
            }
            self.g.cache.remove(gref);
            unmap(m, self.slots);
        }
        if let Some((_, m)) = self
            .g
            .temp
            .iter()
            .find(|(r, m)| *r == gref && (m.writable || !writable))
        {
            return Ok(m.addr);
        }
        let m = map(self.g.dom, gref, self.slots, writable).ok_or(GrantError { gref })?;
        if !self.g.persistent {
            self.g.temp.push((gref, m));
        } else if let Err(m) = self.g.cache.insert(gref, m) {
            self.g.temp.push((gref, m));
        }
        Ok(m.addr)
    }

    /// The request is done: drop its temporary mappings.
    fn end(self) {
        for (_, m) in self.g.temp.drain(..) {
            unmap(m, self.slots);
        }
    }
}

impl GrantAccess for Access<'_> {
    fn check(&mut self, gref: GrantRef, to_page: bool) -> Result<(), GrantError> {
        self.get(gref, to_page).map(|_| ())
    }

    fn read(&mut self, gref: GrantRef, offset: usize, out: &mut [u8]) -> Result<(), GrantError> {
        if offset.checked_add(out.len()).map_or(true, |e| e > 4096) {
            return Err(GrantError { gref });
        }
        let addr = self.get(gref, false)?;
        // SAFETY: `addr` is a page of the grant window where the monitor
        // mapped the front end's granted page (outside this domain's RAM:
        // no Rust object lives there), and `offset + len <= 4096`. The
        // front end may write it meanwhile; the bytes are plain data.
        unsafe {
            core::ptr::copy_nonoverlapping(
                (addr as usize + offset) as *const u8,
                out.as_mut_ptr(),
                out.len(),
            )
        };
        Ok(())
    }

    fn write(&mut self, gref: GrantRef, offset: usize, data: &[u8]) -> Result<(), GrantError> {
        if offset.checked_add(data.len()).map_or(true, |e| e > 4096) {
            return Err(GrantError { gref });
        }
        let addr = self.get(gref, true)?;
        // SAFETY: as in `read`; the mapping is writable (checked by `get`).
        unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                (addr as usize + offset) as *mut u8,
                data.len(),
            )
        };
        Ok(())
    }
}

/// A connected block ring.
struct BlkConn {
    ring: BackRing<'static, BlkifRequest, BlkifResponse>,
    port: u32,
    ring_map: Mapping,
    grants: DataGrants,
}

struct Vbd {
    link: BackendLink,
    back: BlkBack<BackDisk>,
    conn: Option<BlkConn>,
}

struct StoreConn {
    page: &'static XenstoreDomainInterface,
    port: u32,
    map: Mapping,
    conn: Connection,
}

struct ConsConn {
    page: &'static XenconsInterface,
    port: u32,
    map: Mapping,
    id: ConsoleId,
    /// Input bytes that did not fit its `in` ring.
    input_dropped: u64,
}

struct Guest {
    name: String,
    store: Option<StoreConn>,
    console: Option<ConsConn>,
    vbd: Option<Vbd>,
    /// The store was cut off after the guest broke its ring.
    cut_off: bool,
}

struct Driver {
    me: DomId,
    store: Store,
    mux: ConsoleMux,
    /// The port of `VIRQ_CONSOLE`, if serial input is ours.
    input_port: Option<u32>,
    /// Events seen on it.
    input_seen: u32,
    slots: Slots,
    guests: BTreeMap<DomId, Guest>,
    disk_sectors: u64,
    served_any: bool,
    /// The virtio-blk disk while no guest has it (`disk=virtio`).
    virtio: Option<VirtioDisk>,
    /// The store's generation when the vbd links last looked at it.
    links_seen: u64,
}

fn dom_info(from: u16) -> Result<DomainInfo, hypercall_abi::Errno> {
    let mut op = Domctl::new(DOMCTL_GETDOMAININFO, from);
    guest::domctl(&mut op).map(|_| op.info)
}

/// This domain's id: the remote end of a port allocated for itself.
fn self_id() -> Option<DomId> {
    let p = ev::alloc_unbound(DOMID_SELF).ok()?;
    let id = ev::status(DOMID_SELF, p).ok().map(|s| s.remote_dom());
    let _ = ev::close(p);
    id
}

fn write_serial(out: &mut Vec<u8>) {
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut l = Vec::with_capacity(line.len() + 1);
        l.extend_from_slice(line);
        l.push(b'\n');
        let _ = guest::console_write(&l);
    }
    out.clear();
}

impl Driver {
    /// Lists the domains: connects new ones, cleans up departed ones.
    fn scan(&mut self) {
        let mut live = Vec::new();
        let mut from = 0u16;
        while let Ok(i) = dom_info(from) {
            from = i.domain.wrapping_add(1);
            if i.domain != self.me && i.flags & (DOMINF_DYING | DOMINF_SHUTDOWN) == 0 {
                live.push(i);
            }
            if from == 0 {
                break;
            }
        }
        let gone: Vec<DomId> = self
            .guests
            .keys()
            .copied()
            .filter(|d| !live.iter().any(|i| i.domain == *d))
            .collect();
        for d in gone {
            self.remove(d);
        }
        for i in live {
            let name = String::from_utf8_lossy(until_nul(&i.name).unwrap_or(b"?")).into_owned();
            let g = self.guests.entry(i.domain).or_insert(Guest {
                name,
                store: None,
                console: None,
                vbd: None,
                cut_off: false,
            });
            if g.store.is_none() && !g.cut_off {
                Self::connect(
                    self.me,
                    i.domain,
                    g,
                    &mut self.store,
                    &mut self.mux,
                    &mut self.slots,
                    self.disk_sectors,
                    &mut self.virtio,
                );
            } else if g.store.is_some() && g.console.is_none() {
                Self::connect_console(
                    self.me,
                    i.domain,
                    g,
                    &mut self.store,
                    &mut self.mux,
                    &mut self.slots,
                );
            }
            // A guest with a console was served: once every guest is gone,
            // the driver domain may end.
            self.served_any |= g.console.is_some();
        }
    }

    /// Binds and maps `dom`'s console (the guest allocates its port just
    /// after the store's: a scan that comes too early tries again later).
    fn connect_console(
        me: DomId,
        dom: DomId,
        g: &mut Guest,
        store: &mut Store,
        mux: &mut ConsoleMux,
        slots: &mut Slots,
    ) {
        let Ok(cport) = ev::bind_interdomain(dom, crate::pv::CONSOLE_PORT) else {
            return;
        };
        if let Some(cm) = map(dom, crate::pv::CONSOLE_REF, slots, true) {
            let _ = ev::unmask(cport);
            // SAFETY: as for the store page: mapped until `remove`.
            let page: &'static XenconsInterface = unsafe { &*(cm.addr as *const XenconsInterface) };
            g.console = Some(ConsConn {
                page,
                port: cport,
                map: cm,
                id: mux.add(dom, &g.name),
                input_dropped: 0,
            });
            let _ = devices::create_console(
                store,
                me,
                dom,
                crate::pv::CONSOLE_REF,
                crate::pv::CONSOLE_PORT,
            );
        } else {
            let _ = ev::close(cport);
        }
    }

    /// Tries the store convention with `dom`.
    #[allow(clippy::too_many_arguments)]
    fn connect(
        me: DomId,
        dom: DomId,
        g: &mut Guest,
        store: &mut Store,
        mux: &mut ConsoleMux,
        slots: &mut Slots,
        sectors: u64,
        virtio: &mut Option<VirtioDisk>,
    ) {
        let Ok(port) = ev::bind_interdomain(dom, crate::pv::STORE_PORT) else {
            return;
        };
        let Some(m) = map(dom, crate::pv::STORE_REF, slots, true) else {
            println!(
                "driver: dom{dom} ({}): store port bound but grant {} unusable",
                g.name,
                crate::pv::STORE_REF
            );
            let _ = ev::close(port);
            return;
        };
        let _ = ev::unmask(port);
        // SAFETY: the monitor mapped the guest's store page at `m.addr` in
        // the grant window (no Rust object there); it stays mapped until
        // `remove` unmaps it after dropping this reference. The type is all
        // atomics, valid for any bytes the guest writes.
        let page: &'static XenstoreDomainInterface =
            unsafe { &*(m.addr as *const XenstoreDomainInterface) };
        g.store = Some(StoreConn {
            page,
            port,
            map: m,
            conn: Connection::new(),
        });
        Self::connect_console(me, dom, g, store, mux, slots);
        let disk = match virtio.take() {
            Some(v) => BackDisk::Virtio(v),
            None => BackDisk::Ram(RamDisk::with_pattern(sectors, disk_pattern)),
        };
        let (sectors, ro, kind) = (
            disk.sectors(),
            disk.read_only(),
            if matches!(disk, BackDisk::Virtio(_)) {
                "virtio-blk"
            } else {
                "RAM disk"
            },
        );
        match devices::create_vbd(store, me, dom, VBD_XVDA, sectors, ro)
            .and_then(|p| BackendLink::start(store, me, p))
        {
            Ok(link) => {
                g.vbd = Some(Vbd {
                    link,
                    back: BlkBack::new(disk),
                    conn: None,
                });
                println!(
                    "driver: dom{dom} ({}): store connected (port {port}), console {}, vbd {VBD_XVDA}: {sectors} sectors on the {kind}",
                    g.name,
                    if g.console.is_some() { "connected" } else { "missing" }
                );
            }
            Err(e) => {
                if let BackDisk::Virtio(v) = disk {
                    *virtio = Some(v);
                }
                println!(
                    "driver: dom{dom} ({}): cannot write its device entries: {}",
                    g.name,
                    e.name()
                )
            }
        }
    }

    /// Cleans up after a domain that is gone.
    fn remove(&mut self, dom: DomId) {
        let Some(mut g) = self.guests.remove(&dom) else {
            return;
        };
        let mut out = Vec::new();
        // What it wrote last (its page stays mapped until we unmap it).
        if let Some(c) = g.console.as_ref() {
            let mut buf = [0u8; 512];
            while let Ok(n @ 1..) = c.page.out_ring().read(&mut buf) {
                self.mux.output(c.id, &buf[..n], &mut out);
            }
        }
        if let Some(c) = g.console.as_ref() {
            self.mux.remove(c.id, &mut out);
        }
        write_serial(&mut out);
        if let Some(mut v) = g.vbd.take() {
            let s = v.back.stats;
            if let Some(c) = v.conn.take() {
                Self::disconnect(c, &mut self.slots);
            }
            println!(
                "driver: dom{dom} ({}) gone: vbd {} ok, {} refused, {} failed; {} KiB read, {} KiB written",
                g.name, s.ok, s.refused, s.failed, s.bytes_read / 1024, s.bytes_written / 1024
            );
            if let BackDisk::Virtio(mut disk) = v.back.into_disk() {
                let _ = disk.flush();
                self.virtio = Some(disk);
            }
        }
        if let Some(c) = g.console.take() {
            let _ = ev::close(c.port);
            unmap(c.map, &mut self.slots);
        }
        if let Some(s) = g.store.take() {
            let _ = ev::close(s.port);
            unmap(s.map, &mut self.slots);
        }
        devices::remove_domain(&mut self.store, self.me, dom);
    }

    fn disconnect(mut c: BlkConn, slots: &mut Slots) {
        c.grants.release(slots);
        let _ = ev::close(c.port);
        let ring_map = c.ring_map;
        drop(c);
        unmap(ring_map, slots);
    }

    /// Connects a block front end from its published details.
    fn connect_blk(
        me: DomId,
        dom: DomId,
        v: &mut Vbd,
        store: &mut Store,
        slots: &mut Slots,
    ) -> Result<String, &'static str> {
        let d = devices::read_front_details(store, me, &v.link.paths.front)
            .map_err(|_| "bad ring-ref, event-channel or protocol")?;
        let port = ev::bind_interdomain(dom, d.event_channel)
            .map_err(|_| "event-channel cannot be bound")?;
        let Some(m) = map(dom, d.ring_ref, slots, true) else {
            let _ = ev::close(port);
            return Err("ring-ref not granted");
        };
        // SAFETY: the front end's ring page, mapped at `m.addr` until
        // `disconnect` drops the ring and then unmaps it. All atomics.
        let sring: &'static SharedRing = unsafe { &*(m.addr as *const SharedRing) };
        let Ok(ring) = BackRing::attach(sring) else {
            let _ = ev::close(port);
            unmap(m, slots);
            return Err("ring indices corrupt");
        };
        let _ = ev::unmask(port);
        v.conn = Some(BlkConn {
            ring,
            port,
            ring_map: m,
            grants: DataGrants {
                dom,
                persistent: d.persistent,
                cache: GrantCache::new(CACHE_MAX),
                temp: Vec::new(),
            },
        });
        Ok(format!(
            "ring-ref {}, event-channel {}, persistent grants {}",
            d.ring_ref,
            d.event_channel,
            if d.persistent { "yes" } else { "no" }
        ))
    }

    /// Serves a block ring; `Err` if the front end broke the ring.
    fn serve_blk(
        c: &mut BlkConn,
        back: &mut BlkBack<BackDisk>,
        slots: &mut Slots,
    ) -> Result<bool, ()> {
        let mut n = 0;
        let mut reqs = Vec::new();
        loop {
            // What is on the ring, executed as one batch (adjacent reads or
            // writes merged into one disk I/O where the disk gains by it).
            reqs.clear();
            while n + reqs.len() < BATCH {
                let Some(req) = c.ring.take_request().map_err(|_| ())? else {
                    break;
                };
                reqs.push(req);
            }
            if !reqs.is_empty() {
                let mut a = Access {
                    g: &mut c.grants,
                    slots,
                };
                let rsps = back.execute_batch(&reqs, &mut a);
                a.end();
                for rsp in &rsps {
                    c.ring.push_response(rsp).map_err(|_| ())?;
                }
                n += reqs.len();
            }
            if c.ring.push_responses() {
                let _ = ev::send(c.port);
            }
            if n >= BATCH || !c.ring.final_check_for_requests().map_err(|_| ())? {
                return Ok(n > 0);
            }
        }
    }

    /// Reads the serial line's input (`CONSOLEIO_read`) when
    /// `VIRQ_CONSOLE` fired (or `force`), passes it through the mux and
    /// writes each guest's share into its console's `in` ring (what does
    /// not fit is dropped and counted). Whether anything was read.
    fn console_input(&mut self, force: bool) -> bool {
        let Some(port) = self.input_port else {
            return false;
        };
        let seen = events::count(port);
        if !force && seen == self.input_seen {
            return false;
        }
        self.input_seen = seen;
        let mut buf = [0u8; 256];
        let mut out = Vec::new();
        let mut any = false;
        while let Ok(n @ 1..) = guest::console_read(&mut buf) {
            any = true;
            for (id, bytes) in self.mux.input(&buf[..n], &mut out) {
                let Some((dom, g)) = self
                    .guests
                    .iter_mut()
                    .find(|(_, g)| g.console.as_ref().is_some_and(|c| c.id == id))
                else {
                    continue;
                };
                let Some(c) = g.console.as_mut() else {
                    continue;
                };
                let put = c.page.in_ring().write(&bytes).unwrap_or(0);
                if put < bytes.len() {
                    c.input_dropped += (bytes.len() - put) as u64;
                    println!(
                        "driver: dom{dom} ({}): console input ring full: {} byte(s) dropped ({} so far)",
                        g.name,
                        bytes.len() - put,
                        c.input_dropped
                    );
                }
                if put > 0 {
                    let _ = ev::send(c.port);
                }
            }
        }
        write_serial(&mut out);
        any
    }

    /// One pass over every guest; whether anything happened.
    fn service(&mut self) -> bool {
        let me = self.me;
        let mut did = false;
        let mut out = Vec::new();
        let Driver {
            store,
            mux,
            slots,
            guests,
            served_any,
            links_seen,
            ..
        } = self;
        // The front ends' states are read only when the store changed.
        let links_stale = store.generation() != *links_seen;
        *links_seen = store.generation();
        for (&dom, g) in guests.iter_mut() {
            if let Some(v) = g.vbd.as_mut() {
                match if links_stale {
                    v.link.poll(store, me)
                } else {
                    Action::None
                } {
                    Action::Connect => {
                        did = true;
                        match Self::connect_blk(me, dom, v, store, slots) {
                            Ok(what) => {
                                v.link.connected(store, me);
                                *served_any = true;
                                println!(
                                    "driver: dom{dom} ({}): vbd {VBD_XVDA} connected: {what}",
                                    g.name
                                );
                            }
                            Err(why) => {
                                v.link.failed(store, me, why);
                                println!(
                                    "driver: dom{dom} ({}): vbd {VBD_XVDA} refused: {why}",
                                    g.name
                                );
                            }
                        }
                    }
                    Action::TearDown => {
                        did = true;
                        if let Some(c) = v.conn.take() {
                            Self::disconnect(c, slots);
                            println!("driver: dom{dom} ({}): vbd {VBD_XVDA} disconnected", g.name);
                        }
                    }
                    Action::None => {}
                    _ => did = true,
                }
                if let Some(c) = v.conn.as_mut() {
                    match Self::serve_blk(c, &mut v.back, slots) {
                        Ok(d) => did |= d,
                        Err(()) => {
                            println!("driver: dom{dom} ({}): vbd {VBD_XVDA}: ring indices corrupt, disconnected", g.name);
                            if let Some(c) = v.conn.take() {
                                Self::disconnect(c, slots);
                            }
                            v.link.failed(store, me, "ring indices corrupt");
                        }
                    }
                }
            }
            if let Some(c) = g.console.as_ref() {
                let mut buf = [0u8; 512];
                let mut got = false;
                loop {
                    match c.page.out_ring().read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            mux.output(c.id, &buf[..n], &mut out);
                            got = true;
                        }
                        Err(_) => {
                            println!("driver: dom{dom} ({}): console ring indices corrupt: console dropped", g.name);
                            break;
                        }
                    }
                }
                if got {
                    let _ = ev::send(c.port);
                    did = true;
                }
            }
            write_serial(&mut out);
        }
        // The store last: it delivers watch events for what changed above.
        for (&dom, g) in guests.iter_mut() {
            let Some(s) = g.store.as_mut() else { continue };
            match serve_ring(&mut s.conn, store, dom, s.page) {
                Ok(true) => {
                    let _ = ev::send(s.port);
                    did = true;
                }
                Ok(false) => {}
                Err(_) => {
                    s.page.error.store(
                        XENSTORE_ERROR_RINGIDX,
                        core::sync::atomic::Ordering::Release,
                    );
                    let _ = ev::close(s.port);
                    println!("driver: dom{dom} ({}): store ring indices corrupt: stopped serving it, port closed", g.name);
                    if let Some(s) = g.store.take() {
                        unmap(s.map, slots);
                    }
                    g.cut_off = true;
                }
            }
        }
        did
    }
}

/// Direct I/O on a RAM disk, for the paravirtual overhead ratio.
fn bench_direct(sectors: u64) {
    let mut disk = RamDisk::with_pattern(sectors, disk_pattern);
    let chunk = 128 * 1024usize;
    let mut buf = alloc::vec![0u8; chunk];
    let bytes = sectors * 512;
    let t = counter();
    let mut at = 0;
    while at + chunk as u64 <= bytes {
        let _ = disk.read(at / 512, &mut buf);
        at += chunk as u64;
    }
    println!("BENCH blk_direct_seq_read_ticks {} {at}", counter() - t);
    let t = counter();
    let mut at = 0;
    while at + chunk as u64 <= bytes {
        buf[0] = at as u8;
        let _ = disk.write(at / 512, &buf);
        at += chunk as u64;
    }
    println!("BENCH blk_direct_seq_write_ticks {} {at}", counter() - t);
    let n = 4096u64;
    let pages = bytes / 4096;
    let t = counter();
    let mut x = 1u64;
    for _ in 0..n {
        let _ = disk.read(
            crate::blk_test::random_page(&mut x, pages),
            &mut buf[..4096],
        );
    }
    println!(
        "BENCH blk_direct_rand_read_ticks {} {}",
        counter() - t,
        n * 4096
    );
    let t = counter();
    for _ in 0..n {
        let _ = disk.write(crate::blk_test::random_page(&mut x, pages), &buf[..4096]);
    }
    println!(
        "BENCH blk_direct_rand_write_ticks {} {}",
        counter() - t,
        n * 4096
    );
}

/// `driver`.
pub fn run(info: &BootInfo) -> ! {
    let mib = opt(info, "disk").unwrap_or(8).clamp(1, 256);
    let fail = |what: &str| -> ! {
        println!("driver: FAIL: {what}");
        guest::crash()
    };
    let extra = crate::heap::grow(info.ram_end());
    if events::init().is_err() {
        fail("cannot map shared info");
    }
    if events::bind_timer().is_err() {
        fail("cannot bind VIRQ_TIMER");
    }
    let Some(me) = self_id() else {
        fail("cannot learn my domain id")
    };
    if info.bootargs.split_whitespace().any(|w| w == "bench") {
        bench_direct(mib * 2048);
    }
    let virtio = if info.bootargs.split_whitespace().any(|w| w == "disk=virtio") {
        let devs = crate::virtio_direct::probe(info);
        let Some(disk) = devs.disk else {
            fail("disk=virtio but no virtio-blk device")
        };
        println!(
            "driver: the virtio-blk disk ({} sectors) goes to the first guest",
            disk.sectors()
        );
        Some(disk)
    } else {
        None
    };
    let mut store = Store::new(Limits::default());
    store.set_privileged(me, true);
    let _ = store.introduce(me);
    println!(
        "driver: dom{me}: device store up; RAM disks of {mib} MiB per guest; heap grown by {} KiB",
        extra / 1024
    );
    // Serial input (ours if we own it: the monitor answers EPERM if not).
    let input_port = match guest::console_read(&mut []) {
        Ok(_) => match ev::bind_virq(hypercall_abi::event_channel::VIRQ_CONSOLE, 0) {
            Ok(p) => {
                let _ = ev::unmask(p);
                println!("driver: console input: Ctrl-] then a domain id (1-9) picks the domain that gets it, Ctrl-] 0 nobody, Ctrl-] ? lists");
                Some(p)
            }
            Err(e) => {
                println!("driver: console input: cannot bind VIRQ_CONSOLE: {e:?}");
                None
            }
        },
        Err(e) => {
            println!("driver: console input: not ours ({e:?})");
            None
        }
    };
    let mut d = Driver {
        me,
        store,
        mux: ConsoleMux::new(),
        input_port,
        input_seen: 0,
        slots: Slots::new(),
        guests: BTreeMap::new(),
        disk_sectors: mib * 2048,
        served_any: false,
        virtio,
        links_seen: 0,
    };
    if dom_info(0) == Err(hypercall_abi::Errno::EPERM) {
        fail("not allowed to list domains (configure the driver domain `driver` or `priv`)");
    }
    // Whatever was typed before VIRQ_CONSOLE was bound (no console has
    // the input yet: it is discarded).
    d.console_input(true);
    let mut net = net::Net::new(info);
    let mut next_scan = 0;
    loop {
        if now_ns() >= next_scan {
            d.scan();
            net.sync(&mut d);
            next_scan = now_ns() + SCAN_NS;
            if d.served_any && d.guests.is_empty() {
                println!("driver: every guest is gone; powering off");
                guest::poweroff();
            }
        }
        let typed = d.console_input(false);
        let busy = d.service() | typed;
        if !net.service(&mut d) && !busy {
            events::sleep(next_scan.saturating_sub(now_ns()).max(1_000_000));
        }
    }
}
