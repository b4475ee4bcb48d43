//! Shared rings with Xen's `io/ring.h` semantics: a request/response ring in
//! one shared page between a *front end* (makes requests) and a *back end*
//! (answers them), safe against a misbehaving peer.
//!
//! # The page
//!
//! | offset | field | written by |
//! |---|---|---|
//! | 0 | `req_prod` | front: requests published |
//! | 4 | `req_event` | back: "notify me when `req_prod` passes this" |
//! | 8 | `rsp_prod` | back: responses published |
//! | 12 | `rsp_event` | front: "notify me when `rsp_prod` passes this" |
//! | 16 | `pvt` (4 bytes), then 44 bytes of padding | - |
//! | 64 | the slots: `nr` entries, each big enough for a request or a response | both |
//!
//! `nr` is the largest power of two of slots that fit (e.g. 32 for blkif's
//! 112-byte requests, 256 for netif's 12-byte ones). Indices are free
//! running `u32` counters, used modulo `nr`; a response reuses the slot of
//! the request it answers, so at most `nr` requests are outstanding. Each
//! side keeps private counters: the front `req_prod_pvt` and `rsp_cons`,
//! the back `rsp_prod_pvt` and `req_cons`.
//!
//! # Notification (event thresholds)
//!
//! A producer writes entries, issues a write barrier, publishes its
//! producer index, issues a full barrier, and then notifies the peer (an
//! event-channel send) only if the peer's event index lies in
//! `(old, new]` ([`FrontRing::push_requests`], [`BackRing::push_responses`]).
//! A consumer about to sleep sets its event index to one past what it has
//! consumed, issues a full barrier and checks again
//! ([`BackRing::final_check_for_requests`],
//! [`FrontRing::final_check_for_responses`]); that closes the window in
//! which a notification could be lost. Setting the event index further
//! ahead batches notifications ([`BackRing::set_req_event`]).
//!
//! # Safety against the peer
//!
//! The page is shared with another domain that may be hostile. Everything
//! in it is read with atomic loads and nothing read from it is trusted:
//!
//! * slot indices are always masked with `nr - 1`, and `nr` is this side's
//!   own constant, so no index can reach outside the slot area;
//! * each entry is copied out of the ring once ([`RingEntry::read`]) before
//!   it is used, so the peer cannot change it under the consumer's feet;
//! * a consumer refuses a producer index that is more than `nr` ahead of
//!   what it can legitimately be, or behind what it consumed:
//!   [`RingError::ProducerOverflow`] (Xen's `RING_REQUEST_PROD_OVERFLOW`,
//!   and the corresponding check on responses: never more responses than
//!   requests outstanding);
//! * the producer side only ever reads its own private counters to decide
//!   where to write.
//!
//! # Example
//!
//! ```
//! use hypercall_abi::ring::{BackRing, FrontRing, SharedRing};
//! let page = Box::new(SharedRing::new());
//! // Requests and responses are u64 here (any `RingEntry` will do).
//! let mut front = FrontRing::<u64, u64>::init(&page).unwrap();
//! let mut back = BackRing::<u64, u64>::attach(&page).unwrap();
//! front.push_request(&41).unwrap();
//! let notify_back = front.push_requests();   // send on the event channel if true
//! assert!(notify_back);
//! let req = back.take_request().unwrap().unwrap();
//! back.push_response(&(req + 1)).unwrap();
//! let notify_front = back.push_responses();
//! assert!(notify_front);
//! assert_eq!(front.take_response(), Ok(Some(42)));
//! assert_eq!(front.take_response(), Ok(None));
//! ```

use crate::sync::{fence, AtomicU32, Ordering};
use core::marker::PhantomData;

/// Bytes of the page before the first slot.
pub const HEADER_BYTES: usize = 64;
/// 32-bit words of slot space in a 4 KiB page.
pub const PAGE_SLOT_WORDS: usize = (4096 - HEADER_BYTES) / 4;

/// The shared page (`W` words of slot space; a real ring uses the default,
/// one 4 KiB page; smaller ones serve model checking).
#[repr(C)]
#[derive(Debug)]
pub struct SharedRing<const W: usize = PAGE_SLOT_WORDS> {
    req_prod: AtomicU32,
    req_event: AtomicU32,
    rsp_prod: AtomicU32,
    rsp_event: AtomicU32,
    pvt: AtomicU32,
    pad: [AtomicU32; 11],
    slots: [AtomicU32; W],
}

/// Offset of the slots, for the layout check in `lib.rs` (kept out of this
/// file, which the loom model test compiles with loom's atomics).
pub const fn slots_offset() -> usize {
    core::mem::offset_of!(SharedRing, slots)
}

impl<const W: usize> SharedRing<W> {
    /// A zeroed ring page (for tests and simulators; a real one is a page
    /// of guest memory viewed as `&SharedRing`).
    pub fn new() -> Self {
        SharedRing {
            req_prod: AtomicU32::new(0),
            req_event: AtomicU32::new(0),
            rsp_prod: AtomicU32::new(0),
            rsp_event: AtomicU32::new(0),
            pvt: AtomicU32::new(0),
            pad: core::array::from_fn(|_| AtomicU32::new(0)),
            slots: core::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    /// The published request producer index, as the page says now (for
    /// diagnostics: a peer may change it at any time).
    pub fn req_prod(&self) -> u32 {
        self.req_prod.load(Ordering::Acquire)
    }

    /// The published response producer index, as the page says now.
    pub fn rsp_prod(&self) -> u32 {
        self.rsp_prod.load(Ordering::Acquire)
    }

    /// Overwrites the producer indices as a (possibly hostile) peer could:
    /// for tests of the checks below.
    pub fn poke(&self, req_prod: u32, rsp_prod: u32) {
        self.req_prod.store(req_prod, Ordering::Release);
        self.rsp_prod.store(rsp_prod, Ordering::Release);
    }

    fn slot(&self, idx: u32, nr: u32, words: usize) -> &[AtomicU32] {
        let i = (idx & (nr - 1)) as usize * words;
        &self.slots[i..i + words]
    }
}

impl<const W: usize> Default for SharedRing<W> {
    fn default() -> Self {
        Self::new()
    }
}

/// Number of slots of `words` words each in `W` words of slot space: the
/// largest power of two that fits, 0 if none does.
pub const fn ring_size(words: usize, slot_space: usize) -> u32 {
    if words == 0 || words > slot_space {
        return 0;
    }
    let n = slot_space / words;
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// Write access to one slot while producing an entry.
pub struct SlotWriter<'a> {
    words: &'a [AtomicU32],
}

impl SlotWriter<'_> {
    /// Stores word `i` of the entry (ignored past the slot's end).
    pub fn put(&mut self, i: usize, v: u32) {
        if let Some(w) = self.words.get(i) {
            w.store(v, Ordering::Relaxed);
        }
    }
    /// Stores a `u64` as words `i` (low) and `i + 1` (high).
    pub fn put_u64(&mut self, i: usize, v: u64) {
        self.put(i, v as u32);
        self.put(i + 1, (v >> 32) as u32);
    }
}

/// Read access to one slot while consuming an entry.
pub struct SlotReader<'a> {
    words: &'a [AtomicU32],
}

impl SlotReader<'_> {
    /// Word `i` of the entry (0 past the slot's end).
    pub fn get(&self, i: usize) -> u32 {
        self.words.get(i).map_or(0, |w| w.load(Ordering::Relaxed))
    }
    /// Words `i` (low) and `i + 1` (high) as a `u64`.
    pub fn get_u64(&self, i: usize) -> u64 {
        self.get(i) as u64 | (self.get(i + 1) as u64) << 32
    }
}

/// A request or response: how it is laid out in 32-bit words of a slot.
/// `read` must accept any contents (the peer writes them).
pub trait RingEntry: Sized {
    /// Size in 32-bit words (a slot is the larger of request and response).
    const WORDS: usize;
    /// Stores the entry into a slot.
    fn write(&self, slot: &mut SlotWriter<'_>);
    /// Copies an entry out of a slot.
    fn read(slot: &SlotReader<'_>) -> Self;
}

impl RingEntry for u32 {
    const WORDS: usize = 1;
    fn write(&self, slot: &mut SlotWriter<'_>) {
        slot.put(0, *self);
    }
    fn read(slot: &SlotReader<'_>) -> Self {
        slot.get(0)
    }
}

impl RingEntry for u64 {
    const WORDS: usize = 2;
    fn write(&self, slot: &mut SlotWriter<'_>) {
        slot.put_u64(0, *self);
    }
    fn read(slot: &SlotReader<'_>) -> Self {
        slot.get_u64(0)
    }
}

impl<const N: usize> RingEntry for [u32; N] {
    const WORDS: usize = N;
    fn write(&self, slot: &mut SlotWriter<'_>) {
        for (i, w) in self.iter().enumerate() {
            slot.put(i, *w);
        }
    }
    fn read(slot: &SlotReader<'_>) -> Self {
        core::array::from_fn(|i| slot.get(i))
    }
}

/// Why a ring operation was refused. Nothing changes on refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The entry types do not fit a slot of the page.
    TooBig,
    /// No free slot: `nr` requests are outstanding.
    Full,
    /// A response without a request to answer.
    NoRequest,
    /// The peer published a producer index that cannot be right (more
    /// than the ring size ahead, or behind): `prod` as read, `cons` ours.
    ProducerOverflow {
        /// The producer index read from the page.
        prod: u32,
        /// This side's consumer index.
        cons: u32,
    },
}

fn notify(old: u32, new: u32, event: u32) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

fn slot_words<Req: RingEntry, Rsp: RingEntry>() -> usize {
    if Req::WORDS > Rsp::WORDS {
        Req::WORDS
    } else {
        Rsp::WORDS
    }
}

/// The front end's view: makes requests, consumes responses.
pub struct FrontRing<'a, Req, Rsp, const W: usize = PAGE_SLOT_WORDS> {
    sring: &'a SharedRing<W>,
    req_prod_pvt: u32,
    req_published: u32,
    rsp_cons: u32,
    nr: u32,
    words: usize,
    _t: PhantomData<(Req, Rsp)>,
}

impl<'a, Req: RingEntry, Rsp: RingEntry, const W: usize> FrontRing<'a, Req, Rsp, W> {
    /// Initialises the page (`SHARED_RING_INIT`: producers 0, event
    /// thresholds 1; only the front does this) and attaches to it
    /// (`FRONT_RING_INIT`).
    pub fn init(sring: &'a SharedRing<W>) -> Result<Self, RingError> {
        let words = slot_words::<Req, Rsp>();
        let nr = ring_size(words, W);
        if nr == 0 {
            return Err(RingError::TooBig);
        }
        sring.req_prod.store(0, Ordering::Relaxed);
        sring.rsp_prod.store(0, Ordering::Relaxed);
        sring.req_event.store(1, Ordering::Relaxed);
        sring.rsp_event.store(1, Ordering::Relaxed);
        fence(Ordering::Release);
        Ok(Self {
            sring,
            req_prod_pvt: 0,
            req_published: 0,
            rsp_cons: 0,
            nr,
            words,
            _t: PhantomData,
        })
    }

    /// Number of slots (`RING_SIZE`).
    pub fn size(&self) -> u32 {
        self.nr
    }

    /// Requests that may still be queued (`RING_FREE_REQUESTS`).
    pub fn free_requests(&self) -> u32 {
        self.nr - self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Queues a request (not visible to the back end until
    /// [`push_requests`](Self::push_requests)).
    pub fn push_request(&mut self, req: &Req) -> Result<(), RingError> {
        if self.free_requests() == 0 {
            return Err(RingError::Full);
        }
        req.write(&mut SlotWriter {
            words: self.sring.slot(self.req_prod_pvt, self.nr, self.words),
        });
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// Publishes the queued requests (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`);
    /// returns whether the back end must be notified.
    pub fn push_requests(&mut self) -> bool {
        let old = self.req_published;
        let new = self.req_prod_pvt;
        fence(Ordering::Release); // entries before the index
        self.sring.req_prod.store(new, Ordering::Relaxed);
        fence(Ordering::SeqCst); // the index before reading the threshold
        self.req_published = new;
        notify(old, new, self.sring.req_event.load(Ordering::Relaxed))
    }

    fn available(&self) -> Result<u32, RingError> {
        let prod = self.sring.rsp_prod.load(Ordering::Acquire);
        let avail = prod.wrapping_sub(self.rsp_cons);
        if avail > self.req_published.wrapping_sub(self.rsp_cons) {
            return Err(RingError::ProducerOverflow {
                prod,
                cons: self.rsp_cons,
            });
        }
        Ok(avail)
    }

    /// Unconsumed responses (`RING_HAS_UNCONSUMED_RESPONSES`), checked.
    pub fn unconsumed_responses(&self) -> Result<u32, RingError> {
        self.available()
    }

    /// Takes the next response, if one is published.
    pub fn take_response(&mut self) -> Result<Option<Rsp>, RingError> {
        if self.available()? == 0 {
            return Ok(None);
        }
        let rsp = Rsp::read(&SlotReader {
            words: self.sring.slot(self.rsp_cons, self.nr, self.words),
        });
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Ok(Some(rsp))
    }

    /// Before waiting for a notification (`RING_FINAL_CHECK_FOR_RESPONSES`):
    /// asks to be notified at the next response and returns whether
    /// responses arrived meanwhile (then do not wait).
    pub fn final_check_for_responses(&mut self) -> Result<bool, RingError> {
        if self.available()? > 0 {
            return Ok(true);
        }
        self.set_rsp_event(1);
        Ok(self.available()? > 0)
    }

    /// Asks to be notified only when `rsp_prod` reaches `rsp_cons + ahead`
    /// (`ahead >= 1`; larger values batch notifications).
    pub fn set_rsp_event(&self, ahead: u32) {
        let at = self.rsp_cons.wrapping_add(ahead.max(1));
        self.sring.rsp_event.store(at, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Requests sent and not yet answered.
    pub fn outstanding(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }
}

/// The back end's view: consumes requests, produces responses.
pub struct BackRing<'a, Req, Rsp, const W: usize = PAGE_SLOT_WORDS> {
    sring: &'a SharedRing<W>,
    rsp_prod_pvt: u32,
    rsp_published: u32,
    req_cons: u32,
    nr: u32,
    words: usize,
    _t: PhantomData<(Req, Rsp)>,
}

impl<'a, Req: RingEntry, Rsp: RingEntry, const W: usize> BackRing<'a, Req, Rsp, W> {
    /// Attaches to a page the front end initialised (`BACK_RING_INIT`).
    pub fn attach(sring: &'a SharedRing<W>) -> Result<Self, RingError> {
        let words = slot_words::<Req, Rsp>();
        let nr = ring_size(words, W);
        if nr == 0 {
            return Err(RingError::TooBig);
        }
        Ok(Self {
            sring,
            rsp_prod_pvt: 0,
            rsp_published: 0,
            req_cons: 0,
            nr,
            words,
            _t: PhantomData,
        })
    }

    /// Number of slots.
    pub fn size(&self) -> u32 {
        self.nr
    }

    fn available(&self) -> Result<u32, RingError> {
        let prod = self.sring.req_prod.load(Ordering::Acquire);
        let ahead = prod.wrapping_sub(self.req_cons);
        if prod.wrapping_sub(self.rsp_prod_pvt) > self.nr || ahead > self.nr {
            return Err(RingError::ProducerOverflow {
                prod,
                cons: self.req_cons,
            });
        }
        // Never more outstanding requests than slots (RING_UNCONSUMED_REQUESTS).
        let room = self.nr - self.req_cons.wrapping_sub(self.rsp_prod_pvt);
        Ok(ahead.min(room))
    }

    /// Unconsumed requests (`RING_HAS_UNCONSUMED_REQUESTS`), checked.
    pub fn unconsumed_requests(&self) -> Result<u32, RingError> {
        self.available()
    }

    /// Takes (copies out) the next request, if one is published.
    pub fn take_request(&mut self) -> Result<Option<Req>, RingError> {
        if self.available()? == 0 {
            return Ok(None);
        }
        let req = Req::read(&SlotReader {
            words: self.sring.slot(self.req_cons, self.nr, self.words),
        });
        self.req_cons = self.req_cons.wrapping_add(1);
        Ok(Some(req))
    }

    /// Queues the response to the oldest unanswered request.
    pub fn push_response(&mut self, rsp: &Rsp) -> Result<(), RingError> {
        if self.rsp_prod_pvt == self.req_cons {
            return Err(RingError::NoRequest);
        }
        rsp.write(&mut SlotWriter {
            words: self.sring.slot(self.rsp_prod_pvt, self.nr, self.words),
        });
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// Publishes the queued responses (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`);
    /// returns whether the front end must be notified.
    pub fn push_responses(&mut self) -> bool {
        let old = self.rsp_published;
        let new = self.rsp_prod_pvt;
        fence(Ordering::Release);
        self.sring.rsp_prod.store(new, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.rsp_published = new;
        notify(old, new, self.sring.rsp_event.load(Ordering::Relaxed))
    }

    /// Before waiting for a notification (`RING_FINAL_CHECK_FOR_REQUESTS`).
    pub fn final_check_for_requests(&mut self) -> Result<bool, RingError> {
        if self.available()? > 0 {
            return Ok(true);
        }
        self.set_req_event(1);
        Ok(self.available()? > 0)
    }

    /// Asks to be notified only when `req_prod` reaches `req_cons + ahead`.
    pub fn set_req_event(&self, ahead: u32) {
        let at = self.req_cons.wrapping_add(ahead.max(1));
        self.sring.req_event.store(at, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }
}
