//! Host tests of the device protocols: layouts against Xen's sizes and
//! offsets, ring capacities, byte rings against a hostile peer, and
//! proptest round trips of every encode/decode pair.

use super::blkif::*;
use super::byte_ring::*;
use super::console::*;
use super::netif::*;
use super::xenbus::*;
use super::xs_wire::*;
use super::CodecError;
use crate::ring::{BackRing, FrontRing, SharedRing};
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, AtomicU8};
use proptest::prelude::*;

#[test]
fn layouts_match_xen() {
    assert_eq!(size_of::<BlkifSegment>(), 8);
    assert_eq!(size_of::<BlkifRequest>(), BLKIF_REQUEST_BYTES);
    assert_eq!(offset_of!(BlkifRequest, id), 8);
    assert_eq!(offset_of!(BlkifRequest, sector_number), 16);
    assert_eq!(offset_of!(BlkifRequest, seg), 24);
    assert_eq!(size_of::<BlkifResponse>(), BLKIF_RESPONSE_BYTES);
    assert_eq!(offset_of!(BlkifResponse, status), 10);
    assert_eq!(size_of::<NetifTxRequest>(), 12);
    assert_eq!(size_of::<NetifTxResponse>(), 4);
    assert_eq!(size_of::<NetifRxRequest>(), 8);
    assert_eq!(offset_of!(NetifRxRequest, gref), 4);
    assert_eq!(size_of::<NetifRxResponse>(), 8);
    assert_eq!(size_of::<NetifExtraInfo>(), 8);
    assert_eq!(size_of::<XsdSockmsg>(), XSD_SOCKMSG_BYTES);
    assert_eq!(size_of::<XenconsInterface>(), 3088);
}

#[test]
fn encoded_bytes_are_the_c_layout() {
    let mut r = BlkifRequest::new(BLKIF_OP_WRITE, 0x1122_3344_5566_7788, 0x99);
    r.handle = 0xabcd;
    r.push_segment(BlkifSegment {
        gref: 0x0102_0304,
        first_sect: 2,
        last_sect: 5,
    })
    .unwrap();
    let mut b = [0xffu8; BLKIF_REQUEST_BYTES];
    r.encode(&mut b).unwrap();
    assert_eq!(&b[..8], &[1, 1, 0xcd, 0xab, 0, 0, 0, 0]);
    assert_eq!(&b[8..16], &0x1122_3344_5566_7788u64.to_le_bytes());
    assert_eq!(&b[16..24], &0x99u64.to_le_bytes());
    assert_eq!(&b[24..32], &[4, 3, 2, 1, 2, 5, 0, 0]);
    assert!(b[32..].iter().all(|&x| x == 0), "unused segments are zero");
    let rsp = BlkifResponse {
        id: 5,
        operation: 1,
        status: BLKIF_RSP_ERROR,
    };
    let mut b = [0u8; 16];
    rsp.encode(&mut b).unwrap();
    assert_eq!(b, [5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0xff, 0xff, 0, 0, 0, 0]);
}

#[test]
fn ring_capacities() {
    assert_eq!(BLKIF_RING_SIZE, 32);
    assert_eq!(NET_TX_RING_SIZE, 256);
    assert_eq!(NET_RX_RING_SIZE, 256);
    let page = SharedRing::new();
    assert_eq!(
        FrontRing::<BlkifRequest, BlkifResponse>::init(&page)
            .unwrap()
            .size(),
        32
    );
    assert_eq!(
        FrontRing::<NetifTxRequest, NetifTxResponse>::init(&page)
            .unwrap()
            .size(),
        256
    );
    assert_eq!(
        FrontRing::<NetifRxRequest, NetifRxResponse>::init(&page)
            .unwrap()
            .size(),
        256
    );
}

#[test]
fn short_buffers_are_refused() {
    let r = BlkifRequest::default();
    assert_eq!(
        r.encode(&mut [0; 111]),
        Err(CodecError::Short {
            need: 112,
            have: 111
        })
    );
    assert_eq!(
        BlkifRequest::decode(&[0; 5]),
        Err(CodecError::Short { need: 112, have: 5 })
    );
    assert_eq!(
        BlkifResponse::decode(&[0; 15]).unwrap_err(),
        CodecError::Short { need: 16, have: 15 }
    );
    assert!(NetifTxRequest::decode(&[0; 11]).is_err());
    assert!(NetifRxResponse::decode(&[0; 7]).is_err());
    assert!(XsdSockmsg::decode(&[0; 15]).is_err());
}

#[test]
fn twelfth_segment_refused_and_segments_clamped() {
    let mut r = BlkifRequest::new(BLKIF_OP_READ, 1, 0);
    for i in 0..11 {
        r.push_segment(BlkifSegment {
            gref: i,
            first_sect: 0,
            last_sect: 7,
        })
        .unwrap();
    }
    let before = r;
    assert_eq!(
        r.push_segment(BlkifSegment::default()),
        Err(CodecError::TooLarge)
    );
    assert_eq!(r, before);
    assert_eq!(r.total_bytes(), 11 * 4096);
    r.nr_segments = 200; // as a hostile front end may write
    assert_eq!(r.segments().len(), 11);
    assert_eq!(
        BlkifSegment {
            gref: 0,
            first_sect: 3,
            last_sect: 2
        }
        .sectors(),
        None
    );
    assert_eq!(
        BlkifSegment {
            gref: 0,
            first_sect: 0,
            last_sect: 8
        }
        .sectors(),
        None
    );
    assert_eq!(
        BlkifSegment {
            gref: 0,
            first_sect: 7,
            last_sect: 7
        }
        .sectors(),
        Some(1)
    );
}

#[test]
fn xenbus_states_are_xens_numbers() {
    let all = [
        (XenbusState::Unknown, 0),
        (XenbusState::Initialising, 1),
        (XenbusState::InitWait, 2),
        (XenbusState::Initialised, 3),
        (XenbusState::Connected, 4),
        (XenbusState::Closing, 5),
        (XenbusState::Closed, 6),
        (XenbusState::Reconfiguring, 7),
        (XenbusState::Reconfigured, 8),
    ];
    for (s, n) in all {
        assert_eq!(s as u32, n);
        assert_eq!(XenbusState::from_u32(n), Some(s));
        assert_eq!(XenbusState::parse(s.as_str()), Some(s));
    }
    assert_eq!(XenbusState::parse(" 6\0"), Some(XenbusState::Closed));
    assert_eq!(XenbusState::parse("-1"), None);
    assert_eq!(XenbusState::parse("four"), None);
}

#[test]
fn xs_numbers_and_errors() {
    assert_eq!(
        (XS_DIRECTORY, XS_READ, XS_WATCH, XS_TRANSACTION_END),
        (1, 2, 4, 7)
    );
    assert_eq!(
        (XS_WRITE, XS_RM, XS_WATCH_EVENT, XS_ERROR, XS_RESET_WATCHES),
        (11, 13, 15, 16, 21)
    );
    for name in ["EINVAL", "EACCES", "ENOENT", "EAGAIN", "E2BIG", "EQUOTA"] {
        assert_eq!(XsError::from_name(name).unwrap().name(), name);
    }
    assert_eq!(XsError::from_name("EWHATEVER"), None);
}

#[test]
fn byte_ring_refuses_corrupt_indices_and_wraps() {
    let buf: [AtomicU8; 16] = Default::default();
    let (cons, prod) = (AtomicU32::new(u32::MAX - 3), AtomicU32::new(u32::MAX - 3));
    let ring = ByteRing::new(&buf, &cons, &prod);
    assert_eq!(ring.write(b"0123456789"), Ok(10));
    let mut out = [0u8; 4];
    assert_eq!(ring.read(&mut out), Ok(4));
    assert_eq!(&out, b"0123");
    assert_eq!(ring.write(b"abcdefghij"), Ok(10)); // 6 + 10 = 16: full
    assert_eq!(ring.write(b"x"), Ok(0));
    let mut all = [0u8; 32];
    assert_eq!(ring.read(&mut all), Ok(16));
    assert_eq!(&all[..16], b"456789abcdefghij");
    // A hostile peer moves prod too far ahead: refused, nothing changes.
    prod.store(
        cons.load(core::sync::atomic::Ordering::Relaxed)
            .wrapping_add(17),
        core::sync::atomic::Ordering::Relaxed,
    );
    let c = cons.load(core::sync::atomic::Ordering::Relaxed);
    assert!(ring.read(&mut all).is_err());
    assert!(ring.write(b"z").is_err());
    assert_eq!(cons.load(core::sync::atomic::Ordering::Relaxed), c);
}

#[test]
fn store_page_rings_are_independent() {
    let page = Box::new(XenstoreDomainInterface::new());
    page.req_ring().write(b"req").unwrap();
    page.rsp_ring().write(b"reply").unwrap();
    let mut b = [0u8; 8];
    assert_eq!(page.req_ring().read(&mut b), Ok(3));
    assert_eq!(&b[..3], b"req");
    assert_eq!(page.rsp_ring().read(&mut b), Ok(5));
    assert_eq!(&b[..5], b"reply");
}

fn seg() -> impl Strategy<Value = BlkifSegment> {
    (any::<u32>(), any::<u8>(), any::<u8>()).prop_map(|(gref, first_sect, last_sect)| {
        BlkifSegment {
            gref,
            first_sect,
            last_sect,
        }
    })
}

fn blk_req() -> impl Strategy<Value = BlkifRequest> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<u64>(),
        any::<u64>(),
        proptest::array::uniform11(seg()),
    )
        .prop_map(
            |(operation, nr_segments, handle, id, sector_number, seg)| BlkifRequest {
                operation,
                nr_segments,
                handle,
                id,
                sector_number,
                seg,
            },
        )
}

/// N raw words of a slot (to look at what an entry's `write` stored, or
/// to store arbitrary words for its `read`).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Raw<const N: usize>([u32; N]);

impl<const N: usize> crate::ring::RingEntry for Raw<N> {
    const WORDS: usize = N;
    fn write(&self, slot: &mut crate::ring::SlotWriter<'_>) {
        for (i, w) in self.0.iter().enumerate() {
            slot.put(i, *w);
        }
    }
    fn read(slot: &crate::ring::SlotReader<'_>) -> Self {
        Raw(core::array::from_fn(|i| slot.get(i)))
    }
}

fn words<const N: usize>(b: &[u8]) -> [u32; N] {
    core::array::from_fn(|i| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()))
}

proptest! {
    /// The word-by-word ring form of block requests and responses is
    /// exactly the byte encoding (Xen's C layout), both ways.
    #[test]
    fn blkif_slot_words_are_the_encoding(r in blk_req(), raw in proptest::collection::vec(any::<u8>(), 112), id in any::<u64>(), op in any::<u8>(), st in any::<i16>(), raw_rsp in proptest::collection::vec(any::<u8>(), 16)) {
        const RQ: usize = BLKIF_REQUEST_BYTES / 4;
        const RS: usize = BLKIF_RESPONSE_BYTES / 4;
        let mut b = [0u8; BLKIF_REQUEST_BYTES];
        r.encode(&mut b).unwrap();
        let page = Box::new(SharedRing::new());
        let mut f = FrontRing::<BlkifRequest, Raw<RS>>::init(&page).unwrap();
        let mut back = BackRing::<Raw<RQ>, BlkifResponse>::attach(&page).unwrap();
        f.push_request(&r).unwrap();
        f.push_requests();
        prop_assert_eq!(back.take_request().unwrap(), Some(Raw(words::<RQ>(&b))));
        let rsp = BlkifResponse { id, operation: op, status: st };
        let mut rb = [0u8; BLKIF_RESPONSE_BYTES];
        rsp.encode(&mut rb).unwrap();
        back.push_response(&rsp).unwrap();
        back.push_responses();
        prop_assert_eq!(f.take_response().unwrap(), Some(Raw(words::<RS>(&rb))));
        // Any words a peer writes read as the byte decoding of them.
        let page = Box::new(SharedRing::new());
        let mut f = FrontRing::<Raw<RQ>, BlkifResponse>::init(&page).unwrap();
        let mut back = BackRing::<BlkifRequest, Raw<RS>>::attach(&page).unwrap();
        f.push_request(&Raw(words::<RQ>(&raw))).unwrap();
        f.push_requests();
        prop_assert_eq!(back.take_request().unwrap(), Some(BlkifRequest::decode(&raw).unwrap()));
        back.push_response(&Raw(words::<RS>(&raw_rsp))).unwrap();
        back.push_responses();
        prop_assert_eq!(f.take_response().unwrap(), Some(BlkifResponse::decode(&raw_rsp).unwrap()));
    }

    #[test]
    fn blkif_round_trips(r in blk_req(), id in any::<u64>(), op in any::<u8>(), st in any::<i16>()) {
        let mut b = [0u8; BLKIF_REQUEST_BYTES];
        r.encode(&mut b).unwrap();
        prop_assert_eq!(BlkifRequest::decode(&b), Ok(r));
        let rsp = BlkifResponse { id, operation: op, status: st };
        let mut b = [0u8; BLKIF_RESPONSE_BYTES];
        rsp.encode(&mut b).unwrap();
        prop_assert_eq!(BlkifResponse::decode(&b), Ok(rsp));
    }

    #[test]
    fn blkif_through_the_ring(reqs in proptest::collection::vec(blk_req(), 1..32)) {
        let page = Box::new(SharedRing::new());
        let mut f = FrontRing::<BlkifRequest, BlkifResponse>::init(&page).unwrap();
        let mut back = BackRing::<BlkifRequest, BlkifResponse>::attach(&page).unwrap();
        for r in &reqs { f.push_request(r).unwrap(); }
        f.push_requests();
        for r in &reqs { prop_assert_eq!(back.take_request().unwrap(), Some(*r)); }
    }

    #[test]
    fn any_bytes_decode(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        // Decoding never panics; it fails only on a short buffer, and
        // re-encoding what it read gives the bytes back (padding aside).
        match BlkifRequest::decode(&b) {
            Ok(r) => { let mut o = [0u8; 112]; r.encode(&mut o).unwrap(); prop_assert_eq!(BlkifRequest::decode(&o), Ok(r)); }
            Err(e) => { let short = matches!(e, CodecError::Short { .. }); prop_assert!(b.len() < 112 && short) }
        }
        let _ = NetifTxRequest::decode(&b);
        let _ = NetifRxResponse::decode(&b);
        let _ = XsdSockmsg::decode(&b);
        if b.len() >= 12 {
            let t = NetifTxRequest::decode(&b).unwrap();
            let mut o = [0u8; 12]; t.encode(&mut o).unwrap();
            prop_assert_eq!(&o[..], &b[..12]);
        }
    }

    #[test]
    fn netif_round_trips(gref in any::<u32>(), a in any::<u16>(), c in any::<u16>(), d in any::<u16>(), e in any::<u16>(), s in any::<i16>(), data in any::<[u8; 6]>()) {
        let tx = NetifTxRequest { gref, offset: a, flags: c, id: d, size: e };
        let mut b = [0u8; 12]; tx.encode(&mut b).unwrap();
        prop_assert_eq!(NetifTxRequest::decode(&b), Ok(tx));
        let txr = NetifTxResponse { id: a, status: s };
        let mut b = [0u8; 4]; txr.encode(&mut b).unwrap();
        prop_assert_eq!(NetifTxResponse::decode(&b), Ok(txr));
        let rx = NetifRxRequest { id: c, gref };
        let mut b = [0u8; 8]; rx.encode(&mut b).unwrap();
        prop_assert_eq!(NetifRxRequest::decode(&b), Ok(rx));
        let rxr = NetifRxResponse { id: a, offset: c, flags: d, status: s };
        let mut b = [0u8; 8]; rxr.encode(&mut b).unwrap();
        prop_assert_eq!(NetifRxResponse::decode(&b), Ok(rxr));
        let x = NetifExtraInfo { kind: a as u8, flags: c as u8, data };
        let mut b = [0u8; 8]; x.encode(&mut b).unwrap();
        prop_assert_eq!(NetifExtraInfo::decode(&b), Ok(x));
    }

    #[test]
    fn sockmsg_round_trips(kind in any::<u32>(), req_id in any::<u32>(), tx_id in any::<u32>(), len in any::<u32>()) {
        let h = XsdSockmsg { kind, req_id, tx_id, len };
        let mut b = [0u8; 16]; h.encode(&mut b).unwrap();
        prop_assert_eq!(XsdSockmsg::decode(&b), Ok(h));
    }

    #[test]
    fn byte_ring_is_a_fifo(ops in proptest::collection::vec((any::<bool>(), 0usize..40), 1..60), start in any::<u32>()) {
        let buf: [AtomicU8; 32] = Default::default();
        let (cons, prod) = (AtomicU32::new(start), AtomicU32::new(start));
        let ring = ByteRing::new(&buf, &cons, &prod);
        let mut model = std::collections::VecDeque::new();
        let mut next = 0u8;
        for (write, n) in ops {
            if write {
                let data: Vec<u8> = (0..n).map(|_| { next = next.wrapping_add(1); next }).collect();
                let w = ring.write(&data).unwrap();
                prop_assert_eq!(w, n.min(32 - model.len()));
                model.extend(&data[..w]);
                next = next.wrapping_sub((n - w) as u8);
            } else {
                let mut out = vec![0u8; n];
                let r = ring.read(&mut out).unwrap();
                prop_assert_eq!(r, n.min(model.len()));
                for &o in &out[..r] { prop_assert_eq!(Some(o), model.pop_front()); }
            }
        }
    }
}
