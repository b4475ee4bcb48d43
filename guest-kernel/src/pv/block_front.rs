//! The block front end: connects to the back end named in the store
//! (`device/vbd/<n>/backend`), then reads, writes and flushes through a
//! shared ring and [`DATA_PAGES`] granted data pages, several requests in
//! flight (`pvdev::blkfront` splits and matches them).
//!
//! Handshake (Xen's): wait for the back end's `InitWait`; grant the ring
//! page, allocate an event channel for the back end, write `ring-ref`,
//! `event-channel`, `protocol`, then `state` = `Initialised`; wait for
//! the back end's `Connected` and read `sectors`; `state` = `Connected`.

use super::grants::{gfn_of, leak_page, Grants, Page};
use super::store_client::{StoreClient, StoreError};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use hypercall_abi::evtchn_guest as ev;
use hypercall_abi::grant_table::GrantRef;
use hypercall_abi::io::blkif::*;
use hypercall_abi::io::xenbus::XenbusState;
use hypercall_abi::ring::{FrontRing, SharedRing};
use pvdev::blkfront::BlkFront;

/// Granted data pages (the largest I/O of one call: 128 pages = 512 KiB).
pub const DATA_PAGES: usize = 128;

/// Why a block operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The store failed.
    Store(StoreError),
    /// Out of grant references or event channels.
    Resources,
    /// The back end answered this `BLKIF_RSP_*` status.
    Status(i16),
    /// The back end broke the ring protocol or went away.
    BackendGone,
    /// Bad arguments (not whole sectors, too large).
    Invalid,
}

impl From<StoreError> for BlockError {
    fn from(e: StoreError) -> Self {
        BlockError::Store(e)
    }
}

/// A connected block device.
pub struct BlockFront {
    ring: FrontRing<'static, BlkifRequest, BlkifResponse>,
    port: u32,
    ring_ref: GrantRef,
    book: BlkFront,
    pages: Vec<(GrantRef, &'static mut Page<[u8; 4096]>)>,
    /// The data pages' references, in order.
    grefs: Vec<GrantRef>,
    /// Disk size in 512-byte sectors.
    pub sectors: u64,
    /// The front end's store directory.
    pub dir: String,
    /// The back end went away: every I/O fails with
    /// [`BlockError::BackendGone`] until [`reconnect`](Self::reconnect).
    gone: bool,
}

/// What a handshake gives.
struct Link {
    ring: FrontRing<'static, BlkifRequest, BlkifResponse>,
    port: u32,
    ring_ref: GrantRef,
    sectors: u64,
}

/// Xen's handshake for `dir` with the back end the store names; grants
/// the ring and `pages` (their references written into `pages`).
fn handshake(
    store: &mut StoreClient,
    grants: &mut Grants,
    dir: &str,
    pages: &mut [(GrantRef, &'static mut Page<[u8; 4096]>)],
) -> Result<Link, BlockError> {
    let be_dir = store.read(&format!("{dir}/backend"))?;
    let be: u16 = store
        .read(&format!("{dir}/backend-id"))?
        .parse()
        .map_err(|_| BlockError::Invalid)?;
    store.set_state(dir, XenbusState::Initialising)?;
    store.wait_state(&be_dir, |s| s == XenbusState::InitWait)?;
    let sring = leak_page(SharedRing::new());
    let ring = FrontRing::init(&sring.0).map_err(|_| BlockError::Resources)?;
    let ring_ref = grants
        .grant(be, gfn_of(sring), false)
        .ok_or(BlockError::Resources)?;
    let port = ev::alloc_unbound(be).map_err(|_| BlockError::Resources)?;
    let _ = ev::unmask(port);
    for (r, p) in pages.iter_mut() {
        *r = grants
            .grant(be, gfn_of(p), false)
            .ok_or(BlockError::Resources)?;
    }
    store.write(&format!("{dir}/{}", keys::RING_REF), &format!("{ring_ref}"))?;
    store.write(
        &format!("{dir}/{}", keys::EVENT_CHANNEL),
        &format!("{port}"),
    )?;
    store.write(&format!("{dir}/{}", keys::PROTOCOL), "arm-abi")?;
    // The data pages stay granted for the device's life: the back end
    // may keep them mapped.
    store.write(
        &format!("{dir}/{}", pvdev::devices::FEATURE_PERSISTENT),
        "1",
    )?;
    store.set_state(dir, XenbusState::Initialised)?;
    let s = store.wait_state(&be_dir, |s| {
        s == XenbusState::Connected || s >= XenbusState::Closing
    })?;
    if s != XenbusState::Connected {
        return Err(BlockError::BackendGone);
    }
    let sectors = store
        .read(&format!("{be_dir}/{}", keys::SECTORS))?
        .parse()
        .map_err(|_| BlockError::Invalid)?;
    store.set_state(dir, XenbusState::Connected)?;
    Ok(Link {
        ring,
        port,
        ring_ref,
        sectors,
    })
}

impl BlockFront {
    /// Connects device `device/vbd/<n>` of this domain.
    pub fn connect(
        store: &mut StoreClient,
        grants: &mut Grants,
        n: u32,
    ) -> Result<BlockFront, BlockError> {
        let dir = format!("device/vbd/{n}");
        let mut pages: Vec<_> = (0..DATA_PAGES)
            .map(|_| (0, leak_page([0u8; 4096])))
            .collect();
        let l = handshake(store, grants, &dir, &mut pages)?;
        let grefs = pages.iter().map(|(r, _)| *r).collect();
        Ok(BlockFront {
            ring: l.ring,
            port: l.port,
            ring_ref: l.ring_ref,
            book: BlkFront::new(),
            pages,
            grefs,
            sectors: l.sectors,
            dir,
            gone: false,
        })
    }

    /// Whether the back end went away (see [`reconnect`](Self::reconnect)).
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// After the back end went away and the session reconnected to a new
    /// driver domain ([`super::Session::reconnect`]): takes back the old
    /// ring, port and grants, and redoes the handshake through the new
    /// store (a new ring; the same data pages, granted anew). Every I/O
    /// that was in flight has already failed with
    /// [`BlockError::BackendGone`] to its caller; none is replayed.
    pub fn reconnect(
        &mut self,
        store: &mut StoreClient,
        grants: &mut Grants,
    ) -> Result<(), BlockError> {
        self.gone = true;
        let _ = self.book.fail_all();
        let _ = ev::close(self.port);
        // The pages hold the latest references (a failed attempt may have
        // granted some anew); revoking one that is not granted is a no-op.
        let old = [self.ring_ref]
            .into_iter()
            .chain(self.pages.iter().map(|p| p.0));
        for r in old {
            if !super::revoke_waiting(grants, r, 1_000_000_000) {
                return Err(BlockError::Resources);
            }
        }
        let l = handshake(store, grants, &self.dir, &mut self.pages)?;
        self.grefs = self.pages.iter().map(|(r, _)| *r).collect();
        self.ring = l.ring;
        self.port = l.port;
        self.ring_ref = l.ring_ref;
        self.sectors = l.sectors;
        self.book = BlkFront::new();
        self.gone = false;
        Ok(())
    }

    /// Marks the back end gone: fails what is in flight.
    fn lost(&mut self) -> BlockError {
        self.gone = true;
        let _ = self.book.fail_all();
        BlockError::BackendGone
    }

    /// Runs `f`, unless the back end is gone; a `BackendGone` from it
    /// marks the back end gone.
    fn checked<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, BlockError>,
    ) -> Result<T, BlockError> {
        if self.gone {
            return Err(BlockError::BackendGone);
        }
        let r = f(self);
        if matches!(r, Err(BlockError::BackendGone)) {
            return Err(self.lost());
        }
        r
    }

    /// Runs one I/O of `nr` sectors at `sector` on the data pages.
    fn io(&mut self, op: u8, sector: u64, nr: u64) -> Result<(), BlockError> {
        self.checked(|b| b.io_once(op, sector, nr))
    }

    fn io_once(&mut self, op: u8, sector: u64, nr: u64) -> Result<(), BlockError> {
        let io = self
            .book
            .submit(op, sector, nr, &self.grefs, 0)
            .map_err(|_| BlockError::Invalid)?;
        loop {
            while self.ring.free_requests() > 0 {
                match self.book.next_request() {
                    Some(r) => self
                        .ring
                        .push_request(&r)
                        .map_err(|_| BlockError::BackendGone)?,
                    None => break,
                }
            }
            if self.ring.push_requests() {
                ev::send(self.port).map_err(|_| BlockError::BackendGone)?;
            }
            let seen = crate::events::count(self.port);
            while let Some(rsp) = self
                .ring
                .take_response()
                .map_err(|_| BlockError::BackendGone)?
            {
                if let Ok(Some(done)) = self.book.on_response(&rsp) {
                    if done.io == io {
                        return if done.status == BLKIF_RSP_OKAY {
                            Ok(())
                        } else {
                            Err(BlockError::Status(done.status))
                        };
                    }
                }
            }
            if !self
                .ring
                .final_check_for_responses()
                .map_err(|_| BlockError::BackendGone)?
                && !super::wait_event(self.port, seen)
            {
                self.book.fail_all();
                return Err(BlockError::BackendGone);
            }
        }
    }

    /// Reads `nr` sectors at `sector` into the granted data pages (no
    /// copy out; see [`data`](Self::data)).
    pub fn read_in_place(&mut self, sector: u64, nr: u64) -> Result<(), BlockError> {
        if nr == 0 || nr * 512 > self.max_bytes() as u64 {
            return Err(BlockError::Invalid);
        }
        self.io(BLKIF_OP_READ, sector, nr)
    }

    /// Writes `nr` sectors at `sector` from the granted data pages, as
    /// filled through [`data_mut`](Self::data_mut).
    pub fn write_in_place(&mut self, sector: u64, nr: u64) -> Result<(), BlockError> {
        if nr == 0 || nr * 512 > self.max_bytes() as u64 {
            return Err(BlockError::Invalid);
        }
        self.io(BLKIF_OP_WRITE, sector, nr)
    }

    /// Data page `i` (what the last read left there).
    pub fn data(&self, i: usize) -> &[u8; 4096] {
        &self.pages[i].1 .0
    }

    /// Data page `i`, to fill before a write.
    pub fn data_mut(&mut self, i: usize) -> &mut [u8; 4096] {
        &mut self.pages[i].1 .0
    }

    /// The grant reference of data page `i`.
    pub fn page_ref(&self, i: usize) -> GrantRef {
        self.pages[i].0
    }

    /// Puts `req` on the ring as it is (tests of the back end's checks:
    /// use ids the front end's own bookkeeping never gives, i.e. with the
    /// top bit set) and waits for the response with its id.
    pub fn raw(&mut self, req: &BlkifRequest) -> Result<BlkifResponse, BlockError> {
        self.checked(|b| b.raw_once(req))
    }

    fn raw_once(&mut self, req: &BlkifRequest) -> Result<BlkifResponse, BlockError> {
        self.ring
            .push_request(req)
            .map_err(|_| BlockError::BackendGone)?;
        if self.ring.push_requests() {
            ev::send(self.port).map_err(|_| BlockError::BackendGone)?;
        }
        loop {
            let seen = crate::events::count(self.port);
            while let Some(rsp) = self
                .ring
                .take_response()
                .map_err(|_| BlockError::BackendGone)?
            {
                if rsp.id == req.id {
                    return Ok(rsp);
                }
            }
            if !self
                .ring
                .final_check_for_responses()
                .map_err(|_| BlockError::BackendGone)?
                && !super::wait_event(self.port, seen)
            {
                return Err(BlockError::BackendGone);
            }
        }
    }

    /// Largest transfer of one call, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.pages.len() * 4096
    }

    /// Reads `buf.len()` bytes (whole sectors, at most [`max_bytes`](Self::max_bytes)) at `sector`.
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        if buf.len() % 512 != 0 || buf.is_empty() || buf.len() > self.max_bytes() {
            return Err(BlockError::Invalid);
        }
        self.io(BLKIF_OP_READ, sector, buf.len() as u64 / 512)?;
        for (chunk, (_, p)) in buf.chunks_mut(4096).zip(self.pages.iter()) {
            chunk.copy_from_slice(&p.0[..chunk.len()]);
        }
        Ok(())
    }

    /// Writes `data` (whole sectors, at most [`max_bytes`](Self::max_bytes)) at `sector`.
    pub fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), BlockError> {
        if data.len() % 512 != 0 || data.is_empty() || data.len() > self.max_bytes() {
            return Err(BlockError::Invalid);
        }
        for (chunk, (_, p)) in data.chunks(4096).zip(self.pages.iter_mut()) {
            p.0[..chunk.len()].copy_from_slice(chunk);
        }
        self.io(BLKIF_OP_WRITE, sector, data.len() as u64 / 512)
    }

    /// Flushes the back end's disk cache.
    pub fn flush(&mut self) -> Result<(), BlockError> {
        self.checked(|b| {
            b.book.flush();
            b.io_queued()
        })
    }

    fn io_queued(&mut self) -> Result<(), BlockError> {
        loop {
            while self.ring.free_requests() > 0 {
                match self.book.next_request() {
                    Some(r) => self
                        .ring
                        .push_request(&r)
                        .map_err(|_| BlockError::BackendGone)?,
                    None => break,
                }
            }
            if self.ring.push_requests() {
                ev::send(self.port).map_err(|_| BlockError::BackendGone)?;
            }
            let seen = crate::events::count(self.port);
            while let Some(rsp) = self
                .ring
                .take_response()
                .map_err(|_| BlockError::BackendGone)?
            {
                if let Ok(Some(done)) = self.book.on_response(&rsp) {
                    return if done.status == BLKIF_RSP_OKAY {
                        Ok(())
                    } else {
                        Err(BlockError::Status(done.status))
                    };
                }
            }
            if self.book.in_flight() == 0 {
                return Ok(());
            }
            if !self
                .ring
                .final_check_for_responses()
                .map_err(|_| BlockError::BackendGone)?
                && !super::wait_event(self.port, seen)
            {
                self.book.fail_all();
                return Err(BlockError::BackendGone);
            }
        }
    }
}
