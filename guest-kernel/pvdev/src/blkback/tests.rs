//! Block back end: validation of each malformed case, execution against a
//! RAM disk, grant failures leaving the disk unchanged, barrier/flush
//! ordering, and a property test against a byte-array model.

use super::*;
use alloc::string::String;
use proptest::prelude::*;

fn page(fill: u8) -> [u8; 4096] {
    core::array::from_fn(|i| fill ^ (i as u8))
}

fn req(op: u8, id: u64, sector: u64, segs: &[(u32, u8, u8)]) -> BlkifRequest {
    let mut r = BlkifRequest::new(op, id, sector);
    for &(gref, first_sect, last_sect) in segs {
        r.push_segment(BlkifSegment {
            gref,
            first_sect,
            last_sect,
        })
        .unwrap();
    }
    r
}

#[test]
fn malformed_requests_are_refused_without_touching_anything() {
    let mut back = BlkBack::new(RamDisk::new(100));
    let mut g = MemGrants::default();
    g.grant(1, page(1));
    let cases: [(BlkifRequest, i16); 8] = [
        (req(9, 1, 0, &[(1, 0, 7)]), BLKIF_RSP_ERROR),
        (req(BLKIF_OP_DISCARD, 2, 0, &[]), BLKIF_RSP_EOPNOTSUPP),
        (req(BLKIF_OP_READ, 3, 0, &[]), BLKIF_RSP_ERROR),
        (
            BlkifRequest {
                nr_segments: 12,
                ..req(BLKIF_OP_WRITE, 4, 0, &[(1, 0, 7)])
            },
            BLKIF_RSP_ERROR,
        ),
        (req(BLKIF_OP_WRITE, 5, 0, &[(1, 4, 3)]), BLKIF_RSP_ERROR),
        (req(BLKIF_OP_WRITE, 6, 0, &[(1, 0, 8)]), BLKIF_RSP_ERROR),
        (req(BLKIF_OP_WRITE, 7, 93, &[(1, 0, 7)]), BLKIF_RSP_ERROR),
        (
            req(BLKIF_OP_READ, 8, u64::MAX - 2, &[(1, 0, 7)]),
            BLKIF_RSP_ERROR,
        ),
    ];
    for (r, want) in cases {
        let rsp = back.execute(&r, &mut g);
        assert_eq!(
            (rsp.id, rsp.operation, rsp.status),
            (r.id, r.operation, want),
            "{r:?}"
        );
    }
    assert!(
        back.disk().bytes().iter().all(|&b| b == 0),
        "disk untouched"
    );
    assert_eq!(
        g.page(1).unwrap(),
        &page(1)[..],
        "front end's page untouched"
    );
    assert_eq!(back.stats.refused, 8);
    // The largest legal request right at the end of the disk passes.
    let r = req(BLKIF_OP_WRITE, 9, 92, &[(1, 0, 7)]);
    assert_eq!(back.execute(&r, &mut g).status, BLKIF_RSP_OKAY);
}

#[test]
fn validate_names_the_problem() {
    assert_eq!(
        validate(&req(7, 0, 0, &[]), 10, false),
        Err(Refusal::BadOperation(7))
    );
    assert_eq!(
        validate(&req(BLKIF_OP_INDIRECT, 0, 0, &[]), 10, false),
        Err(Refusal::Unsupported(6))
    );
    assert_eq!(
        validate(&req(BLKIF_OP_WRITE, 0, 0, &[]), 10, false),
        Err(Refusal::BadSegmentCount(0))
    );
    assert_eq!(
        validate(
            &req(BLKIF_OP_READ, 0, 0, &[(1, 0, 0), (1, 9, 9)]),
            10,
            false
        ),
        Err(Refusal::BadSegment(1))
    );
    assert_eq!(
        validate(&req(BLKIF_OP_WRITE, 0, 0, &[(1, 0, 0)]), 10, true),
        Err(Refusal::ReadOnly)
    );
    assert_eq!(
        validate(&req(BLKIF_OP_READ, 0, 0, &[(1, 0, 0)]), 10, true),
        Ok(1)
    );
    assert_eq!(
        validate(&req(BLKIF_OP_FLUSH_DISKCACHE, 0, 0, &[]), 10, true),
        Ok(0)
    );
    let eleven: alloc::vec::Vec<(u32, u8, u8)> = (0..11).map(|i| (i, 0, 7)).collect();
    assert_eq!(
        validate(&req(BLKIF_OP_READ, 0, 0, &eleven), 88, false),
        Ok(88)
    );
    assert_eq!(
        validate(&req(BLKIF_OP_READ, 0, 1, &eleven), 88, false),
        Err(Refusal::OutOfRange)
    );
}

#[test]
fn ungranted_or_readonly_grants_fail_and_leave_the_disk_unchanged() {
    let mut back = BlkBack::new(RamDisk::new(64));
    let mut g = MemGrants::default();
    g.grant(1, page(1));
    g.grant_readonly(2, page(2));
    // Write from pages 1 and 7 (never granted): error, nothing written.
    let r = req(BLKIF_OP_WRITE, 1, 0, &[(1, 0, 7), (7, 0, 7)]);
    assert_eq!(back.execute(&r, &mut g).status, BLKIF_RSP_ERROR);
    assert!(back.disk().bytes().iter().all(|&b| b == 0));
    // Reading into a read-only grant fails.
    let r = req(BLKIF_OP_READ, 2, 0, &[(2, 0, 7)]);
    assert_eq!(back.execute(&r, &mut g).status, BLKIF_RSP_ERROR);
    assert_eq!(g.page(2).unwrap(), &page(2)[..]);
    // Writing from a read-only grant is fine.
    let r = req(BLKIF_OP_WRITE, 3, 0, &[(2, 0, 7)]);
    assert_eq!(back.execute(&r, &mut g).status, BLKIF_RSP_OKAY);
    assert_eq!(&back.disk().bytes()[..4096], &page(2)[..]);
    assert_eq!(back.stats.failed, 2);
}

#[test]
fn partial_pages_and_multi_segment_round_trip() {
    let mut back = BlkBack::new(RamDisk::new(64));
    let mut g = MemGrants::default();
    g.grant(1, page(0x11));
    g.grant(2, page(0x22));
    g.grant(3, [0; 4096]);
    // Sectors 2..=3 of page 1 then 0..=5 of page 2: 8 sectors at sector 10.
    let w = req(BLKIF_OP_WRITE, 1, 10, &[(1, 2, 3), (2, 0, 5)]);
    assert_eq!(back.execute(&w, &mut g).status, BLKIF_RSP_OKAY);
    let d = back.disk().bytes();
    assert_eq!(&d[10 * 512..12 * 512], &page(0x11)[1024..2048]);
    assert_eq!(&d[12 * 512..18 * 512], &page(0x22)[..3072]);
    assert!(d[18 * 512..].iter().all(|&b| b == 0));
    let r = req(BLKIF_OP_READ, 2, 12, &[(3, 1, 6)]);
    assert_eq!(back.execute(&r, &mut g).status, BLKIF_RSP_OKAY);
    let p3 = g.page(3).unwrap();
    assert_eq!(&p3[512..3584], &page(0x22)[..3072]);
    assert!(p3[..512].iter().all(|&b| b == 0) && p3[3584..].iter().all(|&b| b == 0));
    assert_eq!(back.stats.bytes_written, 4096);
    assert_eq!(back.stats.bytes_read, 3072);
}

/// A disk that logs what it is asked to do.
struct LogDisk(RamDisk, alloc::vec::Vec<String>);
impl Disk for LogDisk {
    fn sectors(&self) -> u64 {
        self.0.sectors()
    }
    fn read(&mut self, s: u64, b: &mut [u8]) -> Result<(), DiskError> {
        self.1.push(alloc::format!("read {s}"));
        self.0.read(s, b)
    }
    fn write(&mut self, s: u64, b: &[u8]) -> Result<(), DiskError> {
        self.1.push(alloc::format!("write {s}"));
        self.0.write(s, b)
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        self.1.push(String::from("flush"));
        self.0.flush()
    }
}

#[test]
fn barrier_and_flush_ordering() {
    let mut back = BlkBack::new(LogDisk(RamDisk::new(64), alloc::vec::Vec::new()));
    let mut g = MemGrants::default();
    g.grant(1, page(1));
    let reqs = [
        req(BLKIF_OP_WRITE, 1, 0, &[(1, 0, 0)]),
        req(BLKIF_OP_WRITE_BARRIER, 2, 8, &[(1, 0, 0)]),
        req(BLKIF_OP_WRITE, 3, 16, &[(1, 0, 0)]),
        req(BLKIF_OP_FLUSH_DISKCACHE, 4, 0, &[]),
        req(BLKIF_OP_FLUSH_DISKCACHE, 5, 24, &[(1, 0, 0)]),
        req(BLKIF_OP_WRITE_BARRIER, 6, 0, &[]),
    ];
    for r in &reqs {
        assert_eq!(back.execute(r, &mut g).status, BLKIF_RSP_OKAY);
    }
    assert_eq!(
        back.disk().1,
        [
            "write 0", "flush", "write 8", "flush", "write 16", "flush", "write 24", "flush",
            "flush", "flush"
        ]
    );
}

proptest! {
    /// Random requests (valid and not) against a byte-array model: the
    /// back end answers OKAY exactly when the request is well formed and
    /// its grants usable, and the disk matches the model afterwards.
    #[test]
    fn random_requests_match_a_model(
        ops in proptest::collection::vec(
            (0u8..8, 0u64..40, proptest::collection::vec((0u32..5, 0u8..9, 0u8..9), 0..13)),
            1..40)
    ) {
        let sectors = 40u64;
        let mut back = BlkBack::new(RamDisk::new(sectors));
        let mut g = MemGrants::default();
        for r in 0..4u32 { g.grant(r, page(r as u8 * 17)); } // ref 4 is never granted
        let mut model = alloc::vec![0u8; (sectors * 512) as usize];
        for (i, (op, sector, segs)) in ops.into_iter().enumerate() {
            let mut r = BlkifRequest::new(op, i as u64, sector);
            r.nr_segments = segs.len() as u8;
            for (k, &(gref, a, b)) in segs.iter().take(11).enumerate() {
                r.seg[k] = BlkifSegment { gref, first_sect: a, last_sect: b };
            }
            let well_formed = op <= 3
                && segs.len() <= 11
                && !(segs.is_empty() && op <= 1)
                && segs.iter().all(|&(_, a, b)| a <= b && b <= 7)
                && sector + segs.iter().map(|&(_, a, b)| (b.saturating_sub(a) + 1) as u64).sum::<u64>() <= sectors;
            let grants_ok = segs.iter().all(|&(gref, _, _)| gref < 4);
            let before: alloc::vec::Vec<alloc::vec::Vec<u8>> = (0..4).map(|r| g.page(r).unwrap().to_vec()).collect();
            let rsp = back.execute(&r, &mut g);
            prop_assert_eq!(rsp.id, i as u64);
            prop_assert_eq!(rsp.status == BLKIF_RSP_OKAY, well_formed && grants_ok);
            if well_formed && grants_ok && op != BLKIF_OP_READ {
                let mut at = (sector * 512) as usize;
                for &(gref, a, b) in &segs {
                    let src = &before[gref as usize][a as usize * 512..(b as usize + 1) * 512];
                    model[at..at + src.len()].copy_from_slice(src);
                    at += src.len();
                }
            }
            prop_assert!(back.disk().bytes() == &model[..], "disk differs from the model after request {}", i);
            let distinct = segs.iter().enumerate().all(|(k, x)| segs[..k].iter().all(|y| y.0 != x.0));
            if well_formed && grants_ok && op == BLKIF_OP_READ && distinct {
                let mut at = (sector * 512) as usize;
                for &(gref, a, b) in &segs {
                    let len = (b - a + 1) as usize * 512;
                    prop_assert!(g.page(gref).unwrap()[a as usize * 512..][..len] == model[at..at + len], "read data differs");
                    at += len;
                }
            }
        }
    }
}

/// A RAM disk that hides its bytes: the back end must use its bounce
/// buffer.
struct Opaque(RamDisk);
impl Disk for Opaque {
    fn sectors(&self) -> u64 {
        self.0.sectors()
    }
    fn read(&mut self, s: u64, b: &mut [u8]) -> Result<(), DiskError> {
        self.0.read(s, b)
    }
    fn write(&mut self, s: u64, b: &[u8]) -> Result<(), DiskError> {
        self.0.write(s, b)
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        self.0.flush()
    }
}

#[test]
fn pattern_disk_reads_its_pattern() {
    let mut back = BlkBack::new(RamDisk::with_pattern(16, |i| (i * 7 % 251) as u8));
    let mut g = MemGrants::default();
    g.grant(3, page(0));
    assert_eq!(
        back.execute(&req(BLKIF_OP_READ, 1, 8, &[(3, 0, 7)]), &mut g)
            .status,
        BLKIF_RSP_OKAY
    );
    let want: alloc::vec::Vec<u8> = (4096..8192u64).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(g.page(3).unwrap(), &want[..]);
}

proptest! {
    /// The direct path (disk in memory, copied straight to and from the
    /// granted pages) and the bounce-buffer path give the same answers,
    /// disks and pages, whatever the requests.
    #[test]
    fn direct_and_bounce_paths_agree(
        ops in proptest::collection::vec(
            (0u8..5, 0u64..40, proptest::collection::vec((0u32..5, 0u8..9, 0u8..9), 0..12)),
            1..30)
    ) {
        let mut direct = BlkBack::new(RamDisk::with_pattern(40, |i| i as u8));
        let mut bounce = BlkBack::new(Opaque(RamDisk::with_pattern(40, |i| i as u8)));
        let (mut g1, mut g2) = (MemGrants::default(), MemGrants::default());
        for r in 0..3u32 { g1.grant(r, page(r as u8 + 1)); g2.grant(r, page(r as u8 + 1)); }
        g1.grant_readonly(3, page(9));
        g2.grant_readonly(3, page(9));
        for (i, (op, sector, segs)) in ops.into_iter().enumerate() {
            let mut r = BlkifRequest::new(op, i as u64, sector);
            r.nr_segments = segs.len() as u8;
            for (k, &(gref, a, b)) in segs.iter().take(11).enumerate() {
                r.seg[k] = BlkifSegment { gref, first_sect: a, last_sect: b };
            }
            prop_assert_eq!(direct.execute(&r, &mut g1), bounce.execute(&r, &mut g2));
            prop_assert!(direct.disk().bytes() == bounce.disk().0.bytes());
            for p in 0..4 { prop_assert_eq!(g1.page(p), g2.page(p)); }
        }
    }
}

#[test]
fn the_disk_outlives_its_back_end() {
    let mut back = BlkBack::new(RamDisk::new(16));
    let mut g = MemGrants::default();
    g.grant(3, page(7));
    assert_eq!(
        back.execute(&req(BLKIF_OP_WRITE, 1, 8, &[(3, 0, 7)]), &mut g)
            .status,
        BLKIF_RSP_OKAY
    );
    let disk = back.into_disk();
    assert_eq!(&disk.bytes()[8 * 512..16 * 512], &page(7)[..]);
    // A new back end on the same disk reads what the first one wrote.
    let mut again = BlkBack::new(disk);
    g.grant(4, [0; 4096]);
    assert_eq!(
        again
            .execute(&req(BLKIF_OP_READ, 2, 8, &[(4, 0, 7)]), &mut g)
            .status,
        BLKIF_RSP_OKAY
    );
    assert_eq!(g.page(4).unwrap(), &page(7)[..]);
}
