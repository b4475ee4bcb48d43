//! The network front end: a tx ring and an rx ring (one page each), one
//! event channel, [`RX_BUFFERS`] granted receive pages kept posted, and
//! one granted transmit page per frame in flight (frames fit one page).
//!
//! Handshake: as the block front end, with `tx-ring-ref`, `rx-ring-ref`,
//! `event-channel` and `request-rx-copy` = 1; the MAC is read from the
//! back end's `mac`.

use super::grants::{gfn_of, leak_page, Grants, Page};
use super::store_client::{StoreClient, StoreError};
use alloc::format;
use alloc::vec::Vec;
use hypercall_abi::evtchn_guest as ev;
use hypercall_abi::grant_table::GrantRef;
use hypercall_abi::io::netif::*;
use hypercall_abi::io::xenbus::XenbusState;
use hypercall_abi::ring::{FrontRing, SharedRing};
use pvdev::netback::{parse_mac, Mac};

/// Receive pages kept posted.
pub const RX_BUFFERS: usize = 16;
/// Transmit pages.
pub const TX_BUFFERS: usize = 16;

/// Why a network operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The store failed.
    Store(StoreError),
    /// Out of grant references or event channels, or a bad MAC.
    Resources,
    /// The frame is empty or larger than a page.
    Invalid,
    /// No transmit page free (wait for responses).
    Busy,
    /// The back end broke the protocol or went away.
    BackendGone,
}

impl From<StoreError> for NetError {
    fn from(e: StoreError) -> Self {
        NetError::Store(e)
    }
}

/// A connected network interface.
pub struct NetFront {
    tx: FrontRing<'static, NetifTxRequest, NetifTxResponse>,
    rx: FrontRing<'static, NetifRxRequest, NetifRxResponse>,
    port: u32,
    tx_pages: Vec<(GrantRef, &'static mut Page<[u8; 4096]>, bool)>,
    rx_pages: Vec<(GrantRef, &'static mut Page<[u8; 4096]>)>,
    /// This interface's MAC.
    pub mac: Mac,
    /// Responses to requests put on the ring with [`NetFront::send_raw`]
    /// (ids from [`TX_BUFFERS`] up), for the bad-input checks.
    raw: Vec<NetifTxResponse>,
    /// The front end's store directory.
    dir: alloc::string::String,
    /// The rings' grant references.
    ring_refs: [GrantRef; 2],
}

/// What a handshake gives.
struct Link {
    tx: FrontRing<'static, NetifTxRequest, NetifTxResponse>,
    rx: FrontRing<'static, NetifRxRequest, NetifRxResponse>,
    port: u32,
    mac: Mac,
    ring_refs: [GrantRef; 2],
}

/// Xen's handshake for `dir` with the back end the store names: new
/// rings, the pages granted (their references written into the vectors),
/// every rx page posted.
fn handshake(
    store: &mut StoreClient,
    grants: &mut Grants,
    dir: &str,
    tx_pages: &mut [(GrantRef, &'static mut Page<[u8; 4096]>, bool)],
    rx_pages: &mut [(GrantRef, &'static mut Page<[u8; 4096]>)],
) -> Result<Link, NetError> {
    let be_dir = store.read(&format!("{dir}/backend"))?;
    let be: u16 = store
        .read(&format!("{dir}/backend-id"))?
        .parse()
        .map_err(|_| NetError::Resources)?;
    store.set_state(dir, XenbusState::Initialising)?;
    store.wait_state(&be_dir, |s| s == XenbusState::InitWait)?;
    let mac =
        parse_mac(&store.read(&format!("{be_dir}/{}", keys::MAC))?).ok_or(NetError::Resources)?;
    let (ts, rs) = (leak_page(SharedRing::new()), leak_page(SharedRing::new()));
    let tx = FrontRing::init(&ts.0).map_err(|_| NetError::Resources)?;
    let mut rx = FrontRing::init(&rs.0).map_err(|_| NetError::Resources)?;
    let tref = grants
        .grant(be, gfn_of(ts), false)
        .ok_or(NetError::Resources)?;
    let rref = grants
        .grant(be, gfn_of(rs), false)
        .ok_or(NetError::Resources)?;
    let port = ev::alloc_unbound(be).map_err(|_| NetError::Resources)?;
    let _ = ev::unmask(port);
    for (r, p, busy) in tx_pages.iter_mut() {
        *r = grants
            .grant(be, gfn_of(p), true)
            .ok_or(NetError::Resources)?;
        *busy = false;
    }
    for (i, (r, p)) in rx_pages.iter_mut().enumerate() {
        *r = grants
            .grant(be, gfn_of(p), false)
            .ok_or(NetError::Resources)?;
        rx.push_request(&NetifRxRequest {
            id: i as u16,
            gref: *r,
        })
        .map_err(|_| NetError::Resources)?;
    }
    rx.push_requests();
    store.write(&format!("{dir}/{}", keys::TX_RING_REF), &format!("{tref}"))?;
    store.write(&format!("{dir}/{}", keys::RX_RING_REF), &format!("{rref}"))?;
    store.write(
        &format!("{dir}/{}", keys::EVENT_CHANNEL),
        &format!("{port}"),
    )?;
    store.write(&format!("{dir}/{}", keys::REQUEST_RX_COPY), "1")?;
    store.set_state(dir, XenbusState::Initialised)?;
    let s = store.wait_state(&be_dir, |s| {
        s == XenbusState::Connected || s >= XenbusState::Closing
    })?;
    if s != XenbusState::Connected {
        return Err(NetError::BackendGone);
    }
    store.set_state(dir, XenbusState::Connected)?;
    Ok(Link {
        tx,
        rx,
        port,
        mac,
        ring_refs: [tref, rref],
    })
}

impl NetFront {
    /// Connects `device/vif/<n>`.
    pub fn connect(
        store: &mut StoreClient,
        grants: &mut Grants,
        n: u32,
    ) -> Result<NetFront, NetError> {
        let dir = format!("device/vif/{n}");
        let mut tx_pages: Vec<_> = (0..TX_BUFFERS)
            .map(|_| (0, leak_page([0u8; 4096]), false))
            .collect();
        let mut rx_pages: Vec<_> = (0..RX_BUFFERS)
            .map(|_| (0, leak_page([0u8; 4096])))
            .collect();
        let l = handshake(store, grants, &dir, &mut tx_pages, &mut rx_pages)?;
        Ok(NetFront {
            tx: l.tx,
            rx: l.rx,
            port: l.port,
            tx_pages,
            rx_pages,
            mac: l.mac,
            raw: Vec::new(),
            dir,
            ring_refs: l.ring_refs,
        })
    }

    /// After the session reconnected to a new driver domain
    /// ([`super::Session::reconnect`]): takes back the old rings, port and
    /// grants and redoes the handshake through the new store (new rings;
    /// the same pages, granted anew). Frames in flight are lost, as on a
    /// wire. Fails with [`NetError::Resources`] if the new back end gives
    /// the interface another MAC.
    pub fn reconnect(
        &mut self,
        store: &mut StoreClient,
        grants: &mut Grants,
    ) -> Result<(), NetError> {
        let _ = ev::close(self.port);
        let old = self
            .ring_refs
            .into_iter()
            .chain(self.tx_pages.iter().map(|p| p.0))
            .chain(self.rx_pages.iter().map(|p| p.0));
        for r in old {
            if !super::revoke_waiting(grants, r, 1_000_000_000) {
                return Err(NetError::Resources);
            }
        }
        let l = handshake(
            store,
            grants,
            &self.dir,
            &mut self.tx_pages,
            &mut self.rx_pages,
        )?;
        self.tx = l.tx;
        self.rx = l.rx;
        self.port = l.port;
        self.ring_refs = l.ring_refs;
        self.raw.clear();
        if l.mac != self.mac {
            return Err(NetError::Resources);
        }
        Ok(())
    }

    fn reap_tx(&mut self) -> Result<(), NetError> {
        while let Some(r) = self.tx.take_response().map_err(|_| NetError::BackendGone)? {
            match self.tx_pages.get_mut(r.id as usize) {
                Some(p) => p.2 = false,
                None => self.raw.push(r),
            }
        }
        Ok(())
    }

    /// Sends one frame (copied into a granted transmit page).
    pub fn send(&mut self, frame: &[u8]) -> Result<(), NetError> {
        if frame.is_empty() || frame.len() > ETH_FRAME_MAX {
            return Err(NetError::Invalid);
        }
        self.reap_tx()?;
        let Some(i) = self.tx_pages.iter().position(|p| !p.2) else {
            return Err(NetError::Busy);
        };
        let (gref, page, busy) = &mut self.tx_pages[i];
        page.0[..frame.len()].copy_from_slice(frame);
        *busy = true;
        let req = NetifTxRequest {
            gref: *gref,
            offset: 0,
            flags: 0,
            id: i as u16,
            size: frame.len() as u16,
        };
        self.tx.push_request(&req).map_err(|_| NetError::Busy)?;
        if self.tx.push_requests() {
            ev::send(self.port).map_err(|_| NetError::BackendGone)?;
        }
        Ok(())
    }

    /// Takes one received frame into `buf`, if any; returns its length.
    /// The page goes straight back to the back end.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>, NetError> {
        let Some(r) = self.rx.take_response().map_err(|_| NetError::BackendGone)? else {
            return Ok(None);
        };
        let Some((gref, page)) = self.rx_pages.get(r.id as usize) else {
            return Err(NetError::BackendGone);
        };
        let got = if r.status > 0 {
            let (off, len) = (r.offset as usize, r.status as usize);
            if off + len > 4096 || len > buf.len() {
                None
            } else {
                buf[..len].copy_from_slice(&page.0[off..off + len]);
                Some(len)
            }
        } else {
            None
        };
        let gref = *gref;
        self.rx
            .push_request(&NetifRxRequest { id: r.id, gref })
            .map_err(|_| NetError::BackendGone)?;
        if self.rx.push_requests() {
            ev::send(self.port).map_err(|_| NetError::BackendGone)?;
        }
        Ok(Some(got.unwrap_or(0)))
    }

    /// Whether a transmit page is free (asks the back end to notify
    /// when none is).
    pub fn can_send(&mut self) -> bool {
        if self.reap_tx().is_err() {
            return false;
        }
        if self.tx_pages.iter().any(|p| !p.2) {
            return true;
        }
        let _ = self.tx.final_check_for_responses();
        self.reap_tx().is_ok() && self.tx_pages.iter().any(|p| !p.2)
    }

    /// Whether receive responses are waiting (asks the back end to
    /// notify for the next one when none is).
    pub fn rx_pending(&mut self) -> bool {
        self.rx.final_check_for_responses().unwrap_or(false)
    }

    /// Puts `reqs` on the tx ring as they are and notifies (bad-input
    /// checks: their ids must be at least [`TX_BUFFERS`]).
    pub fn send_raw(&mut self, reqs: &[NetifTxRequest]) -> Result<(), NetError> {
        for r in reqs {
            self.tx.push_request(r).map_err(|_| NetError::Busy)?;
        }
        if self.tx.push_requests() {
            ev::send(self.port).map_err(|_| NetError::BackendGone)?;
        }
        Ok(())
    }

    /// The responses to [`send_raw`](Self::send_raw) requests so far.
    pub fn take_raw_responses(&mut self) -> Result<Vec<NetifTxResponse>, NetError> {
        self.reap_tx()?;
        let _ = self.tx.final_check_for_responses();
        self.reap_tx()?;
        Ok(core::mem::take(&mut self.raw))
    }

    /// A transmit page's grant reference (a page really granted).
    pub fn tx_gref(&self) -> GrantRef {
        self.tx_pages[TX_BUFFERS - 1].0
    }

    /// The interface's event channel.
    pub fn port(&self) -> u32 {
        self.port
    }

    /// Waits for the next event on the interface's channel.
    pub fn wait(&mut self) -> Result<(), NetError> {
        let seen = crate::events::count(self.port);
        if self
            .rx
            .final_check_for_responses()
            .map_err(|_| NetError::BackendGone)?
        {
            return Ok(());
        }
        if super::wait_event(self.port, seen) {
            Ok(())
        } else {
            Err(NetError::BackendGone)
        }
    }
}

impl netsvc::FrameIo for NetFront {
    fn send(&mut self, frame: &[u8]) -> bool {
        NetFront::send(self, frame).is_ok()
    }

    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        loop {
            match NetFront::recv(self, buf) {
                Ok(Some(0)) => continue, // an error response: the page is posted again
                Ok(Some(n)) => return Some(n),
                Ok(None) if self.rx_pending() => continue,
                _ => return None,
            }
        }
    }

    fn can_send(&mut self) -> bool {
        NetFront::can_send(self)
    }
}
