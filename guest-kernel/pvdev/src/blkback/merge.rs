//! Batches of requests: adjacent reads (or writes) of consecutive sectors
//! merged into one disk I/O.
//!
//! A front end splits a large I/O into requests of at most 11 segments
//! (44 KiB); a disk with a per-I/O cost (a virtio request: descriptors, a
//! device round trip) serves it better as one I/O. [`BlkBack::execute_batch`]
//! takes the requests the back end found on its ring, validates each and
//! checks its grants exactly as [`BlkBack::execute`] does, and gathers a
//! *run* of accepted requests while each one is the same operation (read or
//! write) and starts at the sector where the previous one ended, up to
//! [`Disk::merge_limit`] bytes. A run is one [`Disk::read_pieces`] or
//! [`Disk::write_pieces`]; each piece the disk hands over is copied straight
//! to or from the granted pages it covers ([`Run::pieces`]). Anything else
//! (a flush, a barrier) ends the run and is executed alone, in ring order;
//! a refused request, or one with a bad grant, is answered without touching
//! the disk and does not end the run. The results (responses, disk contents,
//! granted pages) are those of executing the batch one request at a time.

use super::*;

/// One segment of a run: `len` bytes at `page_off` of page `gref`, at byte
/// `at` of the run, belonging to member `member`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seg {
    member: usize,
    gref: GrantRef,
    page_off: usize,
    len: usize,
    at: usize,
}

/// Accepted requests of consecutive sectors, one disk I/O.
#[derive(Clone, Debug)]
pub(super) struct Run {
    write: bool,
    sector: u64,
    bytes: usize,
    /// Indices of the member requests in the batch.
    members: Vec<usize>,
    segs: Vec<Seg>,
}

impl Run {
    fn new(index: usize, req: &BlkifRequest) -> Run {
        let mut r = Run {
            write: req.operation == BLKIF_OP_WRITE,
            sector: req.sector_number,
            bytes: 0,
            members: Vec::with_capacity(16),
            // A front end's largest I/O is typically 128 pages.
            segs: Vec::with_capacity(128),
        };
        r.push(index, req);
        r
    }

    fn push(&mut self, index: usize, req: &BlkifRequest) {
        let member = self.members.len();
        self.members.push(index);
        for s in req.segments() {
            let len = (s.last_sect - s.first_sect + 1) as usize * SECTOR_SIZE as usize;
            self.segs.push(Seg {
                member,
                gref: s.gref,
                page_off: s.first_sect as usize * SECTOR_SIZE as usize,
                len,
                at: self.bytes,
            });
            self.bytes += len;
        }
    }

    /// Adds a validated request of `bytes` bytes if it continues the run
    /// within `limit` bytes.
    fn try_add(&mut self, index: usize, req: &BlkifRequest, bytes: usize, limit: usize) -> bool {
        let end = self.sector + (self.bytes as u64) / SECTOR_SIZE;
        if (req.operation == BLKIF_OP_WRITE) != self.write
            || req.sector_number != end
            || self.bytes + bytes > limit
        {
            return false;
        }
        self.push(index, req);
        true
    }

    /// Calls `f(segment, range in the piece, offset in the page)` for each
    /// segment overlapping bytes `off..off + len` of the run.
    fn pieces(
        &self,
        off: usize,
        len: usize,
        mut f: impl FnMut(&Seg, core::ops::Range<usize>, usize),
    ) {
        let end = off + len;
        let first = self.segs.partition_point(|s| s.at + s.len <= off);
        for s in self.segs[first..].iter().take_while(|s| s.at < end) {
            let (a, b) = (s.at.max(off), (s.at + s.len).min(end));
            f(s, a - off..b - off, s.page_off + (a - s.at));
        }
    }
}

impl<D: Disk> BlkBack<D> {
    /// Validates and executes `reqs` (in ring order), adjacent reads or
    /// writes of consecutive sectors merged into one disk I/O of at most
    /// [`Disk::merge_limit`] bytes; returns one response per request, in
    /// the same order. Same results as [`execute`](Self::execute) on each.
    pub fn execute_batch(
        &mut self,
        reqs: &[BlkifRequest],
        grants: &mut impl GrantAccess,
    ) -> Vec<BlkifResponse> {
        let limit = self.disk.merge_limit();
        let mut status = vec![BLKIF_RSP_OKAY; reqs.len()];
        let mut run: Option<Run> = None;
        for (i, req) in reqs.iter().enumerate() {
            if limit == 0 || !matches!(req.operation, BLKIF_OP_READ | BLKIF_OP_WRITE) {
                if let Some(r) = run.take() {
                    self.run_merged(&r, grants, &mut status);
                }
                status[i] = self.execute(req, grants).status;
                continue;
            }
            let total = match validate(req, self.disk.sectors(), self.disk.read_only()) {
                Err(r) => {
                    self.stats.refused += 1;
                    status[i] = r.status();
                    continue;
                }
                Ok(t) => t,
            };
            let to_page = req.operation == BLKIF_OP_READ;
            if req
                .segments()
                .iter()
                .any(|s| grants.check(s.gref, to_page).is_err())
            {
                self.stats.failed += 1;
                status[i] = BLKIF_RSP_ERROR;
                continue;
            }
            let bytes = (total * SECTOR_SIZE) as usize;
            if run
                .as_mut()
                .is_some_and(|r| r.try_add(i, req, bytes, limit))
            {
                continue;
            }
            if let Some(r) = run.take() {
                self.run_merged(&r, grants, &mut status);
            }
            run = Some(Run::new(i, req));
        }
        if let Some(r) = run.take() {
            self.run_merged(&r, grants, &mut status);
        }
        reqs.iter()
            .zip(status)
            .map(|(r, status)| BlkifResponse {
                id: r.id,
                operation: r.operation,
                status,
            })
            .collect()
    }

    /// One disk I/O for run `r`; sets its members' statuses.
    fn run_merged(&mut self, r: &Run, grants: &mut impl GrantAccess, status: &mut [i16]) {
        let mut failed = vec![false; r.members.len()];
        let res = if r.write {
            self.disk.write_pieces(r.sector, r.bytes, &mut |off, buf| {
                let mut ok = true;
                r.pieces(off, buf.len(), |s, range, page_off| {
                    ok &= grants.read(s.gref, page_off, &mut buf[range]).is_ok();
                });
                if ok {
                    Ok(())
                } else {
                    Err(())
                }
            })
        } else {
            self.disk.read_pieces(r.sector, r.bytes, &mut |off, data| {
                r.pieces(off, data.len(), |s, range, page_off| {
                    if grants.write(s.gref, page_off, &data[range]).is_err() {
                        failed[s.member] = true;
                    }
                });
            })
        };
        if res.is_ok() {
            if r.write {
                self.stats.bytes_written += r.bytes as u64;
            } else {
                self.stats.bytes_read += r.bytes as u64;
            }
        }
        for (m, &i) in r.members.iter().enumerate() {
            if res.is_ok() && !failed[m] {
                self.stats.ok += 1;
                status[i] = BLKIF_RSP_OKAY;
            } else {
                self.stats.failed += 1;
                status[i] = BLKIF_RSP_ERROR;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A RAM disk that merges and hands data over in pieces of `piece`
    /// bytes, reads in reverse order (as a device completing out of order
    /// might), and counts its I/Os.
    struct PieceDisk {
        ram: RamDisk,
        limit: usize,
        piece: usize,
        ios: usize,
    }

    impl Disk for PieceDisk {
        fn sectors(&self) -> u64 {
            self.ram.sectors()
        }
        fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
            self.ram.read(sector, buf)
        }
        fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), DiskError> {
            self.ram.write(sector, buf)
        }
        fn flush(&mut self) -> Result<(), DiskError> {
            self.ram.flush()
        }
        fn merge_limit(&self) -> usize {
            self.limit
        }
        fn read_pieces(
            &mut self,
            sector: u64,
            len: usize,
            out: &mut dyn FnMut(usize, &[u8]),
        ) -> Result<(), DiskError> {
            self.ios += 1;
            let mut buf = vec![0; len];
            self.ram.read(sector, &mut buf)?;
            let starts: Vec<usize> = (0..len).step_by(self.piece).collect();
            for &at in starts.iter().rev() {
                out(at, &buf[at..(at + self.piece).min(len)]);
            }
            Ok(())
        }
        fn write_pieces(
            &mut self,
            sector: u64,
            len: usize,
            fill: &mut dyn FnMut(usize, &mut [u8]) -> Result<(), ()>,
        ) -> Result<(), DiskError> {
            self.ios += 1;
            let mut buf = vec![0; len];
            for at in (0..len).step_by(self.piece) {
                let end = (at + self.piece).min(len);
                fill(at, &mut buf[at..end]).map_err(|_| DiskError)?;
            }
            self.ram.write(sector, &buf)
        }
    }

    fn pattern(sectors: u64) -> RamDisk {
        RamDisk::with_pattern(sectors, disk_pattern)
    }

    fn piece_disk(limit: usize, piece: usize) -> PieceDisk {
        PieceDisk {
            ram: pattern(256),
            limit,
            piece,
            ios: 0,
        }
    }

    /// A request of `pages` whole pages at `sector`, grants `g0..`.
    fn full(op: u8, id: u64, sector: u64, g0: u32, pages: u32) -> BlkifRequest {
        let mut r = BlkifRequest::new(op, id, sector);
        for g in g0..g0 + pages {
            r.push_segment(BlkifSegment {
                gref: g,
                first_sect: 0,
                last_sect: 7,
            })
            .unwrap();
        }
        r
    }

    fn grants(n: u32) -> MemGrants {
        let mut g = MemGrants::default();
        for r in 0..n {
            g.grant(
                r,
                core::array::from_fn(|i| (r as u8) ^ (i as u8).wrapping_mul(3)),
            );
        }
        g
    }

    #[test]
    fn adjacent_reads_become_one_io_and_land_in_the_right_pages() {
        let mut back = BlkBack::new(piece_disk(1 << 20, 3 * 512));
        let mut g = grants(40);
        // 11 + 11 + 5 pages at consecutive sectors: one I/O of 108 KiB.
        let reqs = [
            full(BLKIF_OP_READ, 1, 8, 0, 11),
            full(BLKIF_OP_READ, 2, 96, 11, 11),
            full(BLKIF_OP_READ, 3, 184, 22, 5),
        ];
        let rsp = back.execute_batch(&reqs, &mut g);
        assert!(rsp.iter().all(|r| r.status == BLKIF_RSP_OKAY), "{rsp:?}");
        assert_eq!(rsp.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(back.disk().ios, 1);
        for p in 0..27u32 {
            let page = g.page(p).unwrap();
            let at = (8 * 512 + p as u64 * 4096) as usize;
            assert!(
                page.iter()
                    .enumerate()
                    .all(|(k, &b)| b == disk_pattern((at + k) as u64)),
                "page {p}"
            );
        }
        assert_eq!(back.stats.ok, 3);
        assert_eq!(back.stats.bytes_read, 27 * 4096);
    }

    #[test]
    fn runs_end_at_gaps_operation_changes_flushes_and_the_limit() {
        let mut back = BlkBack::new(piece_disk(8 * 4096, 4096));
        let mut g = grants(64);
        let reqs = [
            full(BLKIF_OP_WRITE, 1, 0, 0, 4),
            full(BLKIF_OP_WRITE, 2, 32, 4, 4), // merged: 8 pages = the limit
            full(BLKIF_OP_WRITE, 3, 64, 8, 1), // over the limit: a new run
            full(BLKIF_OP_READ, 4, 72, 9, 1),  // another operation
            full(BLKIF_OP_READ, 5, 88, 10, 1), // a gap (80..88)
            BlkifRequest::new(BLKIF_OP_FLUSH_DISKCACHE, 6, 0),
            full(BLKIF_OP_READ, 7, 96, 11, 1), // after the flush: a new run
        ];
        let rsp = back.execute_batch(&reqs, &mut g);
        assert!(rsp.iter().all(|r| r.status == BLKIF_RSP_OKAY), "{rsp:?}");
        assert_eq!(back.disk().ios, 5);
        assert_eq!(back.disk().ram.flushes, 1);
    }

    #[test]
    fn refused_and_bad_grant_requests_are_answered_without_touching_the_disk() {
        let mut back = BlkBack::new(piece_disk(1 << 20, 4096));
        let mut g = grants(8);
        g.grant_readonly(100, [0x77; 4096]);
        let before = back.disk().ram.bytes().to_vec();
        let reqs = [
            full(BLKIF_OP_WRITE, 1, 0, 0, 2),
            full(BLKIF_OP_WRITE, 2, 16, 500, 1), // never granted
            full(BLKIF_OP_WRITE, 3, 16, 2, 3),   // continues the run
            full(BLKIF_OP_READ, 4, 250, 3, 1),   // past the end
            full(BLKIF_OP_READ, 5, 40, 100, 1),  // read into a read-only grant
            BlkifRequest {
                nr_segments: 200,
                ..full(BLKIF_OP_WRITE, 6, 0, 0, 1)
            },
        ];
        let rsp = back.execute_batch(&reqs, &mut g);
        let st: Vec<i16> = rsp.iter().map(|r| r.status).collect();
        assert_eq!(
            st,
            [
                BLKIF_RSP_OKAY,
                BLKIF_RSP_ERROR,
                BLKIF_RSP_OKAY,
                BLKIF_RSP_ERROR,
                BLKIF_RSP_ERROR,
                BLKIF_RSP_ERROR
            ]
        );
        assert_eq!(back.disk().ios, 1, "requests 1 and 3 merged");
        let after = back.disk().ram.bytes();
        assert_eq!(&after[..5 * 4096], {
            let mut w = Vec::new();
            for p in 0..5 {
                w.extend_from_slice(g.page(p).unwrap());
            }
            w
        });
        assert_eq!(&after[5 * 4096..], &before[5 * 4096..]);
        assert_eq!(
            (back.stats.ok, back.stats.refused, back.stats.failed),
            (2, 2, 2)
        );
    }

    #[test]
    fn a_failed_disk_io_fails_every_member() {
        struct Broken(PieceDisk);
        impl Disk for Broken {
            fn sectors(&self) -> u64 {
                self.0.sectors()
            }
            fn read(&mut self, _: u64, _: &mut [u8]) -> Result<(), DiskError> {
                Err(DiskError)
            }
            fn write(&mut self, _: u64, _: &[u8]) -> Result<(), DiskError> {
                Err(DiskError)
            }
            fn flush(&mut self) -> Result<(), DiskError> {
                Ok(())
            }
            fn merge_limit(&self) -> usize {
                1 << 20
            }
        }
        let mut back = BlkBack::new(Broken(piece_disk(0, 512)));
        let mut g = grants(8);
        let reqs = [
            full(BLKIF_OP_READ, 1, 0, 0, 2),
            full(BLKIF_OP_READ, 2, 16, 2, 2),
        ];
        let rsp = back.execute_batch(&reqs, &mut g);
        assert!(rsp.iter().all(|r| r.status == BLKIF_RSP_ERROR));
        assert_eq!((back.stats.ok, back.stats.failed), (0, 2));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Read,
        Write,
        Flush,
        Barrier,
        Bad,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Read),
            4 => Just(Op::Write),
            1 => Just(Op::Flush),
            1 => Just(Op::Barrier),
            1 => Just(Op::Bad),
        ]
    }

    proptest! {
        /// Any batch: merged execution gives the responses, disk contents,
        /// granted pages and byte counts of one-by-one execution.
        #[test]
        fn merged_batches_match_one_by_one_execution(
            items in proptest::collection::vec(
                (op(), 0u64..40, 0u8..8, 1u8..8, 1usize..12, any::<bool>()),
                1..24,
            ),
            limit_pages in 1usize..40,
            piece in 1usize..20,
        ) {
            // Requests often continue where the previous one ended.
            let mut reqs = Vec::new();
            let mut next_sector = 0u64;
            for (i, (op, sector, first, span, pages, contiguous)) in items.into_iter().enumerate() {
                let code = match op {
                    Op::Read => BLKIF_OP_READ,
                    Op::Write => BLKIF_OP_WRITE,
                    Op::Flush => BLKIF_OP_FLUSH_DISKCACHE,
                    Op::Barrier => BLKIF_OP_WRITE_BARRIER,
                    Op::Bad => 77,
                };
                let at = if contiguous { next_sector } else { sector * 8 };
                let mut r = BlkifRequest::new(code, i as u64, at);
                // Distinct pages per request (g = 16 * i + k), partial first
                // and last pages.
                for k in 0..pages.min(BLKIF_MAX_SEGMENTS_PER_REQUEST) {
                    let f = if k == 0 { first } else { 0 };
                    let l = if k + 1 == pages { (f + span - 1).min(7) } else { 7 };
                    let _ = r.push_segment(BlkifSegment { gref: (16 * i + k) as u32, first_sect: f, last_sect: l });
                }
                next_sector = at + r.total_bytes() / 512;
                reqs.push(r);
            }
            let mut g1 = grants(16 * 24);
            // An ungranted reference in some requests.
            if let Some(r) = reqs.get_mut(3) {
                r.seg[0].gref = 9999;
            }
            let mut g2 = g1.clone();
            let mut one = BlkBack::new(pattern(400));
            let mut batch = BlkBack::new(PieceDisk { ram: pattern(400), limit: limit_pages * 4096, piece: piece * 512, ios: 0 });
            let want: Vec<BlkifResponse> = reqs.iter().map(|r| one.execute(r, &mut g1)).collect();
            let got = batch.execute_batch(&reqs, &mut g2);
            prop_assert_eq!(got, want);
            prop_assert_eq!(batch.disk().ram.bytes(), one.disk().bytes());
            prop_assert_eq!(batch.stats, one.stats);
            for r in 0..16 * 24 {
                prop_assert_eq!(g1.page(r), g2.page(r));
            }
        }
    }
}
