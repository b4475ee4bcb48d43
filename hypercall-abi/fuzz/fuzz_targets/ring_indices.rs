//! Fuzz target: a honest front end and back end share a ring while the
//! input also plays a hostile peer that overwrites the producer indices
//! and slot contents. Neither side may panic, take more entries than the
//! ring holds, or accept an impossible producer index.
#![no_main]

use hypercall_abi::ring::{BackRing, FrontRing, RingError, SharedRing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let page = SharedRing::<32>::new();
    let mut f = FrontRing::<u64, u64, 32>::init(&page).unwrap();
    let mut b = BackRing::<u64, u64, 32>::attach(&page).unwrap();
    let n = b.size();
    let (mut taken, mut answered) = (0u32, 0u32);
    let mut it = data.chunks(5);
    while let Some(c) = it.next() {
        let arg = c.get(1..5).map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        match c[0] % 8 {
            0 => { let _ = f.push_request(&(arg as u64)); }
            1 => { f.push_requests(); }
            2 => match b.take_request() {
                Ok(Some(_)) => taken += 1,
                Ok(None) | Err(RingError::ProducerOverflow { .. }) => {}
                Err(e) => panic!("unexpected {e:?}"),
            },
            3 => if b.push_response(&1).is_ok() { answered += 1 },
            4 => { b.push_responses(); }
            5 => { let _ = f.take_response(); }
            6 => page.poke(arg, page.rsp_prod()),
            _ => page.poke(page.req_prod(), arg),
        }
        assert!(taken.wrapping_sub(answered) <= n);
    }
});
