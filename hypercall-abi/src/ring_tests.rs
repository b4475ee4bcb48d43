//! Host tests of the shared ring: behaviour, notification thresholds, and
//! a hostile peer's indices (property tests drive random operation
//! sequences with random pokes; see also `tests/ring_loom.rs` and `fuzz/`).

use crate::ring::*;
use proptest::prelude::*;

#[test]
fn sizes_follow_ring_h() {
    assert_eq!(ring_size(28, PAGE_SLOT_WORDS), 32); // blkif: 112-byte requests
    assert_eq!(ring_size(3, PAGE_SLOT_WORDS), 256); // netif tx: 12 bytes
    assert_eq!(ring_size(2, PAGE_SLOT_WORDS), 256); // netif rx: 8 bytes
    assert_eq!(ring_size(1, PAGE_SLOT_WORDS), 512);
    assert_eq!(ring_size(0, PAGE_SLOT_WORDS), 0);
    assert_eq!(ring_size(PAGE_SLOT_WORDS + 1, PAGE_SLOT_WORDS), 0);
    let page = SharedRing::new();
    assert_eq!(
        FrontRing::<[u32; 28], [u32; 4]>::init(&page)
            .unwrap()
            .size(),
        32
    );
    assert_eq!(
        FrontRing::<[u32; 2000], u32>::init(&page).err(),
        Some(RingError::TooBig)
    );
}

#[test]
fn init_sets_events_and_full_ring_refuses() {
    let page = SharedRing::<8>::new();
    let mut f = FrontRing::<u64, u64, 8>::init(&page).unwrap();
    assert_eq!(f.size(), 4);
    for i in 0..4 {
        f.push_request(&i).unwrap();
    }
    assert_eq!(f.push_request(&9), Err(RingError::Full));
    assert!(
        f.push_requests(),
        "req_event starts at 1: the first push notifies"
    );
    let mut b = BackRing::<u64, u64, 8>::attach(&page).unwrap();
    assert_eq!(b.push_response(&0), Err(RingError::NoRequest));
    for i in 0..4 {
        assert_eq!(b.take_request(), Ok(Some(i)));
    }
    assert_eq!(b.take_request(), Ok(None));
    b.push_response(&100).unwrap();
    assert!(b.push_responses());
    assert_eq!(f.take_response(), Ok(Some(100)));
    assert_eq!(f.free_requests(), 1);
}

#[test]
fn notification_only_when_the_threshold_is_crossed() {
    let page = SharedRing::<64>::new();
    let mut f = FrontRing::<u32, u32, 64>::init(&page).unwrap();
    let mut b = BackRing::<u32, u32, 64>::attach(&page).unwrap();
    f.push_request(&1).unwrap();
    assert!(f.push_requests());
    // The back end has not re-armed req_event: no further notification.
    f.push_request(&2).unwrap();
    assert!(!f.push_requests());
    assert_eq!(b.take_request(), Ok(Some(1)));
    assert_eq!(b.take_request(), Ok(Some(2)));
    // Nothing more: the final check arms req_event = req_cons + 1.
    assert_eq!(b.final_check_for_requests(), Ok(false));
    f.push_request(&3).unwrap();
    assert!(f.push_requests());
    // Batching: ask to be woken only after 4 more requests.
    assert_eq!(b.take_request(), Ok(Some(3)));
    b.set_req_event(4);
    for i in 0..3 {
        f.push_request(&(10 + i)).unwrap();
        assert!(!f.push_requests(), "request {i} of the batch");
    }
    f.push_request(&13).unwrap();
    assert!(f.push_requests(), "the fourth crosses the threshold");
    // Responses: pushing none notifies nobody.
    assert!(!b.push_responses());
}

#[test]
fn hostile_request_producer_is_refused() {
    let page = SharedRing::<64>::new();
    let mut f = FrontRing::<u32, u32, 64>::init(&page).unwrap();
    let mut b = BackRing::<u32, u32, 64>::attach(&page).unwrap();
    let n = b.size();
    // Runs ahead of what the ring can hold.
    page.poke(n + 1, 0);
    assert_eq!(
        b.take_request(),
        Err(RingError::ProducerOverflow {
            prod: n + 1,
            cons: 0
        })
    );
    // Exactly a full ring is legitimate.
    page.poke(n, 0);
    for _ in 0..n {
        assert!(b.take_request().unwrap().is_some());
    }
    assert_eq!(b.take_request(), Ok(None), "no room until responses go out");
    // Going backwards is refused too.
    page.poke(3, 0);
    assert!(matches!(
        b.take_request(),
        Err(RingError::ProducerOverflow { prod: 3, .. })
    ));
    // The front end refuses responses it never asked for.
    page.poke(0, 5);
    assert!(matches!(
        f.take_response(),
        Err(RingError::ProducerOverflow { prod: 5, cons: 0 })
    ));
    f.push_request(&1).unwrap();
    f.push_requests();
    page.poke(1, 1);
    assert!(f.take_response().unwrap().is_some());
}

/// One step of a front/back conversation, or a hostile poke.
#[derive(Clone, Debug)]
enum Op {
    Request(u32),
    PushRequests,
    TakeRequest,
    Respond,
    PushResponses,
    TakeResponse,
    FinalCheckBack,
    FinalCheckFront,
    PokeReqProd(u32),
    PokeRspProd(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u32>().prop_map(Op::Request),
        2 => Just(Op::PushRequests),
        4 => Just(Op::TakeRequest),
        4 => Just(Op::Respond),
        2 => Just(Op::PushResponses),
        4 => Just(Op::TakeResponse),
        1 => Just(Op::FinalCheckBack),
        1 => Just(Op::FinalCheckFront),
        1 => any::<u32>().prop_map(Op::PokeReqProd),
        1 => any::<u32>().prop_map(Op::PokeRspProd),
    ]
}

proptest! {
    /// Honest traffic: every request reaches the back end exactly once, in
    /// order, and every response the front end exactly once, in order.
    #[test]
    fn honest_peers_lose_and_duplicate_nothing(ops in proptest::collection::vec(op(), 0..400)) {
        let page = SharedRing::<16>::new();
        let mut f = FrontRing::<u32, u32, 16>::init(&page).unwrap();
        let mut b = BackRing::<u32, u32, 16>::attach(&page).unwrap();
        let (mut sent, mut published, mut got_req) = (Vec::new(), 0usize, Vec::new());
        let (mut answered, mut rsp_published, mut got_rsp) = (Vec::new(), 0usize, Vec::new());
        for o in ops {
            match o {
                Op::Request(v) => if f.push_request(&v).is_ok() { sent.push(v) }
                    else { prop_assert_eq!(f.outstanding(), f.size()) },
                Op::PushRequests => { f.push_requests(); published = sent.len(); }
                Op::TakeRequest => if let Some(r) = b.take_request().unwrap() { got_req.push(r) },
                Op::Respond => {
                    let next = answered.len();
                    if next < got_req.len() {
                        let v = got_req[next] ^ 0xffff_ffff;
                        b.push_response(&v).unwrap();
                        answered.push(v);
                    } else {
                        prop_assert_eq!(b.push_response(&0), Err(RingError::NoRequest));
                    }
                }
                Op::PushResponses => { b.push_responses(); rsp_published = answered.len(); }
                Op::TakeResponse => if let Some(r) = f.take_response().unwrap() { got_rsp.push(r) },
                Op::FinalCheckBack => { b.final_check_for_requests().unwrap(); }
                Op::FinalCheckFront => { f.final_check_for_responses().unwrap(); }
                Op::PokeReqProd(_) | Op::PokeRspProd(_) => {}
            }
            prop_assert!(got_req.len() <= published);
            prop_assert_eq!(&got_req[..], &sent[..got_req.len()]);
            prop_assert!(got_rsp.len() <= rsp_published);
            prop_assert_eq!(&got_rsp[..], &answered[..got_rsp.len()]);
        }
    }

    /// A hostile peer that writes any producer index, at any time: the
    /// honest side never panics, never takes more entries than the ring can
    /// hold outstanding, and reports `ProducerOverflow` for impossible
    /// indices.
    #[test]
    fn hostile_indices_are_contained(ops in proptest::collection::vec(op(), 0..400)) {
        let page = SharedRing::<16>::new();
        let mut f = FrontRing::<u32, u32, 16>::init(&page).unwrap();
        let mut b = BackRing::<u32, u32, 16>::attach(&page).unwrap();
        let n = b.size();
        let (mut taken_req, mut answered, mut taken_rsp, mut published) = (0u32, 0u32, 0u32, 0u32);
        for o in ops {
            match o {
                Op::Request(v) => { let _ = f.push_request(&v); }
                Op::PushRequests => { f.push_requests(); published = f.outstanding() + taken_rsp; }
                Op::TakeRequest => match b.take_request() {
                    Ok(Some(_)) => taken_req += 1,
                    Ok(None) => {}
                    Err(RingError::ProducerOverflow { prod, cons }) => {
                        prop_assert_eq!(cons, taken_req);
                        prop_assert!(prod.wrapping_sub(answered) > n || prod.wrapping_sub(cons) > n);
                    }
                    Err(e) => prop_assert!(false, "unexpected {:?}", e),
                },
                Op::Respond => if b.push_response(&1).is_ok() { answered += 1 },
                Op::PushResponses => { b.push_responses(); }
                Op::TakeResponse => match f.take_response() {
                    Ok(Some(_)) => taken_rsp += 1,
                    Ok(None) => {}
                    Err(RingError::ProducerOverflow { prod, cons }) => {
                        prop_assert_eq!(cons, taken_rsp);
                        prop_assert!(prod.wrapping_sub(cons) > published.wrapping_sub(cons));
                    }
                    Err(e) => prop_assert!(false, "unexpected {:?}", e),
                },
                Op::FinalCheckBack => { let _ = b.final_check_for_requests(); }
                Op::FinalCheckFront => { let _ = f.final_check_for_responses(); }
                Op::PokeReqProd(v) => page.poke(v, page.rsp_prod()),
                Op::PokeRspProd(v) => page.poke(page.req_prod(), v),
            }
            // The back end never holds more than n unanswered requests, and
            // the front end never takes more responses than it published.
            prop_assert!(taken_req.wrapping_sub(answered) <= n);
            prop_assert!(taken_rsp <= published);
        }
    }
}
