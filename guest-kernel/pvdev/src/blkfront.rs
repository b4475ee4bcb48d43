//! The block front end's bookkeeping: splits an I/O into ring requests of
//! at most 11 segments, keeps several requests in flight, and matches
//! responses to I/Os by request id. Granting pages and pushing to the
//! ring are the caller's (the guest driver's) job.
//!
//! An I/O is `nr_sectors` 512-byte sectors starting at `sector`, whose
//! data lies in consecutive granted pages `grefs`, beginning at sector
//! `offset` (0..=7) of the first page. Each request gets a fresh id; an I/O
//! completes when all its requests are answered, with `BLKIF_RSP_OKAY`
//! only if every one was. A response with an unknown id (a confused or
//! hostile back end) is reported, never trusted.
//!
//! ```
//! use pvdev::blkfront::*;
//! use hypercall_abi::io::blkif::*;
//! let mut f = BlkFront::new();
//! // 96 sectors (48 KiB) from 12 pages: two requests (11 + 1 segments).
//! let grefs: Vec<u32> = (100..112).collect();
//! let io = f.submit(BLKIF_OP_READ, 0, 96, &grefs, 0).unwrap();
//! let reqs: Vec<BlkifRequest> = core::iter::from_fn(|| f.next_request()).collect();
//! assert_eq!(reqs.len(), 2);
//! assert_eq!((reqs[0].nr_segments, reqs[1].nr_segments, reqs[1].sector_number), (11, 1, 88));
//! assert_eq!(f.on_response(&BlkifResponse { id: reqs[1].id, operation: 0, status: 0 }), Ok(None));
//! let done = f.on_response(&BlkifResponse { id: reqs[0].id, operation: 0, status: 0 }).unwrap();
//! assert_eq!(done, Some(Completion { io, status: BLKIF_RSP_OKAY }));
//! ```

use alloc::collections::{BTreeMap, VecDeque};
use hypercall_abi::grant_table::GrantRef;
use hypercall_abi::io::blkif::*;

/// An I/O handle.
pub type IoId = u64;

/// A finished I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The I/O.
    pub io: IoId,
    /// `BLKIF_RSP_OKAY`, or the first failing request's status.
    pub status: i16,
}

/// Why an I/O or a response was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontError {
    /// Zero sectors, an offset over 7, or too few pages for the sectors.
    BadIo,
    /// The operation cannot carry data (use `flush`).
    BadOperation,
    /// A response whose id matches no request in flight.
    UnknownId(u64),
}

struct Pending {
    io: IoId,
}

struct Io {
    left: u32,
    status: i16,
}

/// The front end's request bookkeeping.
#[derive(Default)]
pub struct BlkFront {
    next_id: u64,
    next_io: IoId,
    queue: VecDeque<BlkifRequest>,
    inflight: BTreeMap<u64, Pending>,
    ios: BTreeMap<IoId, Io>,
}

impl BlkFront {
    /// No I/O yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn new_io(&mut self, reqs: u32) -> IoId {
        let io = self.next_io;
        self.next_io += 1;
        self.ios.insert(
            io,
            Io {
                left: reqs,
                status: BLKIF_RSP_OKAY,
            },
        );
        io
    }

    fn queue(&mut self, mut r: BlkifRequest, io: IoId) {
        r.id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.inflight.insert(r.id, Pending { io });
        self.queue.push_back(r);
    }

    /// Plans a read or write (`BLKIF_OP_READ`, `BLKIF_OP_WRITE`,
    /// `BLKIF_OP_WRITE_BARRIER`, `BLKIF_OP_FLUSH_DISKCACHE`): splits it into
    /// requests (queued for [`next_request`](Self::next_request)).
    pub fn submit(
        &mut self,
        op: u8,
        sector: u64,
        nr_sectors: u64,
        grefs: &[GrantRef],
        offset: u8,
    ) -> Result<IoId, FrontError> {
        if op > BLKIF_OP_FLUSH_DISKCACHE {
            return Err(FrontError::BadOperation);
        }
        let per = SECTORS_PER_PAGE as u64;
        if nr_sectors == 0
            || offset >= SECTORS_PER_PAGE
            || (offset as u64 + nr_sectors).div_ceil(per) > grefs.len() as u64
        {
            return Err(FrontError::BadIo);
        }
        // Segments: one per page.
        // Pages used, then requests of up to 11 segments each, built in
        // place (no intermediate lists: this is the data path).
        let pages = (offset as u64 + nr_sectors).div_ceil(per) as usize;
        let io = self.new_io(pages.div_ceil(BLKIF_MAX_SEGMENTS_PER_REQUEST) as u32);
        let (mut left, mut first, mut at) = (nr_sectors, offset as u64, sector);
        for chunk in grefs[..pages].chunks(BLKIF_MAX_SEGMENTS_PER_REQUEST) {
            let mut r = BlkifRequest::new(op, 0, at);
            for &g in chunk {
                let n = (per - first).min(left);
                // At most 11 per chunk: cannot fail.
                let _ = r.push_segment(BlkifSegment {
                    gref: g,
                    first_sect: first as u8,
                    last_sect: (first + n - 1) as u8,
                });
                left -= n;
                at += n;
                first = 0;
            }
            self.queue(r, io);
        }
        Ok(io)
    }

    /// Plans a cache flush with no data.
    pub fn flush(&mut self) -> IoId {
        let io = self.new_io(1);
        self.queue(BlkifRequest::new(BLKIF_OP_FLUSH_DISKCACHE, 0, 0), io);
        io
    }

    /// The next request to put on the ring (call while the ring has room).
    pub fn next_request(&mut self) -> Option<BlkifRequest> {
        self.queue.pop_front()
    }

    /// Requests handed out or queued and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Takes a response; returns the I/O it completes, if any.
    pub fn on_response(&mut self, rsp: &BlkifResponse) -> Result<Option<Completion>, FrontError> {
        let p = self
            .inflight
            .remove(&rsp.id)
            .ok_or(FrontError::UnknownId(rsp.id))?;
        let Some(io) = self.ios.get_mut(&p.io) else {
            return Ok(None);
        };
        if rsp.status != BLKIF_RSP_OKAY && io.status == BLKIF_RSP_OKAY {
            io.status = rsp.status;
        }
        io.left -= 1;
        if io.left == 0 {
            let status = io.status;
            self.ios.remove(&p.io);
            return Ok(Some(Completion { io: p.io, status }));
        }
        Ok(None)
    }

    /// The back end went away: fails every I/O in flight with
    /// `BLKIF_RSP_ERROR` and forgets its requests.
    pub fn fail_all(&mut self) -> alloc::vec::Vec<Completion> {
        self.queue.clear();
        self.inflight.clear();
        let ios = core::mem::take(&mut self.ios);
        ios.into_keys()
            .map(|io| Completion {
                io,
                status: BLKIF_RSP_ERROR,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blkback::{BlkBack, MemGrants, RamDisk};
    use proptest::prelude::*;

    #[test]
    fn refuses_bad_ios_and_unknown_ids() {
        let mut f = BlkFront::new();
        assert_eq!(
            f.submit(BLKIF_OP_READ, 0, 0, &[1], 0),
            Err(FrontError::BadIo)
        );
        assert_eq!(
            f.submit(BLKIF_OP_READ, 0, 8, &[1], 1),
            Err(FrontError::BadIo)
        );
        assert_eq!(
            f.submit(BLKIF_OP_READ, 0, 1, &[1], 8),
            Err(FrontError::BadIo)
        );
        assert_eq!(
            f.submit(BLKIF_OP_DISCARD, 0, 1, &[1], 0),
            Err(FrontError::BadOperation)
        );
        assert_eq!(f.in_flight(), 0);
        assert_eq!(
            f.on_response(&BlkifResponse {
                id: 42,
                operation: 0,
                status: 0
            }),
            Err(FrontError::UnknownId(42))
        );
    }

    #[test]
    fn failure_of_one_part_fails_the_io_and_fail_all_on_disconnect() {
        let mut f = BlkFront::new();
        let grefs: alloc::vec::Vec<u32> = (0..23).collect();
        let io = f.submit(BLKIF_OP_WRITE, 0, 23 * 8, &grefs, 0).unwrap();
        let reqs: alloc::vec::Vec<_> = core::iter::from_fn(|| f.next_request()).collect();
        assert_eq!(
            reqs.iter()
                .map(|r| r.nr_segments)
                .collect::<alloc::vec::Vec<_>>(),
            [11, 11, 1]
        );
        assert_eq!(
            f.on_response(&BlkifResponse {
                id: reqs[0].id,
                operation: 1,
                status: BLKIF_RSP_ERROR
            }),
            Ok(None)
        );
        assert_eq!(
            f.on_response(&BlkifResponse {
                id: reqs[1].id,
                operation: 1,
                status: 0
            }),
            Ok(None)
        );
        // Same id twice: the second is unknown.
        assert_eq!(
            f.on_response(&BlkifResponse {
                id: reqs[1].id,
                operation: 1,
                status: 0
            }),
            Err(FrontError::UnknownId(reqs[1].id))
        );
        assert_eq!(
            f.on_response(&BlkifResponse {
                id: reqs[2].id,
                operation: 1,
                status: 0
            }),
            Ok(Some(Completion {
                io,
                status: BLKIF_RSP_ERROR
            }))
        );
        let io2 = f.submit(BLKIF_OP_READ, 0, 4, &[1], 2).unwrap();
        let flush = f.flush();
        assert_eq!(f.in_flight(), 2);
        let mut failed = f.fail_all();
        failed.sort_by_key(|c| c.io);
        assert_eq!(
            failed,
            [
                Completion {
                    io: io2,
                    status: BLKIF_RSP_ERROR
                },
                Completion {
                    io: flush,
                    status: BLKIF_RSP_ERROR
                }
            ]
        );
        assert_eq!(f.in_flight(), 0);
    }

    proptest! {
        /// Front end and back end together: random writes and reads (any
        /// size, offset, order of answers) give back what was written.
        #[test]
        fn front_and_back_agree(ios in proptest::collection::vec((any::<bool>(), 0u64..200, 1u64..120, 0u8..8), 1..12), seed in any::<u64>()) {
            let sectors = 400u64;
            let mut back = BlkBack::new(RamDisk::new(sectors));
            let mut f = BlkFront::new();
            let mut model = alloc::vec![0u8; (sectors * 512) as usize];
            let mut g = MemGrants::default();
            let mut next_ref = 0u32;
            let mut rng = seed;
            for (write, sector, n, off) in ios {
                let n = n.min(sectors - sector);
                let pages = (off as u64 + n).div_ceil(8) as usize;
                let grefs: alloc::vec::Vec<u32> = (0..pages as u32).map(|i| next_ref + i).collect();
                next_ref += pages as u32;
                for &r in &grefs {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    g.grant(r, core::array::from_fn(|i| (rng >> 33) as u8 ^ i as u8));
                }
                let op = if write { BLKIF_OP_WRITE } else { BLKIF_OP_READ };
                let io = f.submit(op, sector, n, &grefs, off).unwrap();
                let mut reqs: alloc::vec::Vec<_> = core::iter::from_fn(|| f.next_request()).collect();
                reqs.reverse(); // answers out of order
                let mut done = None;
                for r in &reqs {
                    let rsp = back.execute(r, &mut g);
                    prop_assert_eq!(rsp.status, BLKIF_RSP_OKAY);
                    if let Some(c) = f.on_response(&rsp).unwrap() { done = Some(c); }
                }
                prop_assert_eq!(done, Some(Completion { io, status: BLKIF_RSP_OKAY }));
                // The bytes of the I/O, in page order.
                let mut bytes = alloc::vec::Vec::new();
                for &r in &grefs { bytes.extend_from_slice(g.page(r).unwrap()); }
                let data = &bytes[off as usize * 512..(off as u64 + n) as usize * 512];
                let range = (sector * 512) as usize..((sector + n) * 512) as usize;
                if write { model[range].copy_from_slice(data); } else { prop_assert_eq!(data, &model[range]); }
            }
            prop_assert_eq!(back.disk().bytes(), &model[..]);
        }

        /// The back end dies at any point: every I/O submitted gets
        /// exactly one completion (from its responses, or failed by
        /// `fail_all`), nothing is left in flight, and a response the dead
        /// back end had produced (arriving late) completes nothing.
        #[test]
        fn every_io_completes_once_across_a_disconnect(
            ios in proptest::collection::vec((1u64..60, any::<bool>()), 1..10),
            answered in proptest::collection::vec(any::<bool>(), 0..40),
        ) {
            let mut f = BlkFront::new();
            let grefs: alloc::vec::Vec<u32> = (0..8).collect();
            let mut submitted = alloc::vec::Vec::new();
            let mut reqs = alloc::vec::Vec::new();
            for (n, flush) in ios {
                let io = if flush { f.flush() } else { f.submit(BLKIF_OP_READ, 0, n, &grefs, 0).unwrap() };
                submitted.push(io);
                reqs.extend(core::iter::from_fn(|| f.next_request()));
            }
            let mut done = alloc::vec::Vec::new();
            let mut late = alloc::vec::Vec::new();
            for (k, r) in reqs.iter().enumerate() {
                let rsp = BlkifResponse { id: r.id, operation: r.operation, status: BLKIF_RSP_OKAY };
                if answered.get(k).copied().unwrap_or(false) {
                    if let Some(c) = f.on_response(&rsp).unwrap() { done.push(c); }
                } else {
                    late.push(rsp);
                }
            }
            let failed = f.fail_all();
            prop_assert!(failed.iter().all(|c| c.status == BLKIF_RSP_ERROR));
            prop_assert_eq!(f.in_flight(), 0);
            for rsp in &late {
                prop_assert_eq!(f.on_response(rsp), Err(FrontError::UnknownId(rsp.id)));
            }
            let mut all: alloc::vec::Vec<IoId> = done.iter().chain(failed.iter()).map(|c| c.io).collect();
            all.sort_unstable();
            submitted.sort_unstable();
            prop_assert_eq!(all, submitted);
        }
    }
}
