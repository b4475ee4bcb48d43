//! Model check of the shared ring with `loom`: one producer thread (the
//! front end) and one consumer thread (the back end) exchange requests and
//! responses with the real ring code (compiled here against loom's
//! atomics and fences), notifying each other through flags that stand for
//! event-channel sends, and sleeping only after the `final_check`
//! handshake. Every interleaving (up to the preemption bound) must deliver
//! each message exactly once and in order, with no lost wake-up (a lost
//! one would leave a thread waiting forever, which loom reports).

#![allow(dead_code)]

mod sync {
    pub(crate) use loom::sync::atomic::{fence, AtomicU32, Ordering};
}

#[path = "../src/ring.rs"]
mod ring;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use ring::{BackRing, FrontRing, SharedRing};

/// An event channel reduced to a pending flag.
struct Event(AtomicBool);

impl Event {
    fn send(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Blocks until a send, then consumes it.
    fn wait(&self) {
        // Spin on a load (loom needs read-only spins to prune the loop),
        // then consume the event.
        while !self.0.load(Ordering::SeqCst) {
            loom::thread::yield_now();
        }
        self.0.store(false, Ordering::SeqCst);
    }
}

const MSGS: u32 = 3;

#[test]
fn one_producer_one_consumer_no_loss_no_duplicates() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(|| {
        // 4 words of slot space, u32 entries: a 4-slot ring.
        let page = Arc::new(SharedRing::<4>::new());
        let to_back = Arc::new(Event(AtomicBool::new(false)));
        let to_front = Arc::new(Event(AtomicBool::new(false)));
        // The front end initialises the page before sharing it.
        let mut front = FrontRing::<u32, u32, 4>::init(&page).unwrap();
        let back = {
            let (page, to_back, to_front) = (page.clone(), to_back.clone(), to_front.clone());
            loom::thread::spawn(move || {
                let mut back = BackRing::<u32, u32, 4>::attach(&page).unwrap();
                let mut seen = Vec::new();
                while seen.len() < MSGS as usize {
                    while let Some(r) = back.take_request().unwrap() {
                        seen.push(r);
                        back.push_response(&(r * 10)).unwrap();
                        if back.push_responses() {
                            to_front.send();
                        }
                    }
                    if seen.len() < MSGS as usize && !back.final_check_for_requests().unwrap() {
                        to_back.wait();
                    }
                }
                seen
            })
        };
        let mut got = Vec::new();
        let mut next = 0;
        while got.len() < MSGS as usize {
            while next < MSGS && front.free_requests() > 0 {
                front.push_request(&next).unwrap();
                next += 1;
                if front.push_requests() {
                    to_back.send();
                }
            }
            while let Some(r) = front.take_response().unwrap() {
                got.push(r);
            }
            if got.len() < MSGS as usize && !front.final_check_for_responses().unwrap() {
                to_front.wait();
            }
        }
        let seen = back.join().unwrap();
        assert_eq!(seen, (0..MSGS).collect::<Vec<_>>());
        assert_eq!(got, (0..MSGS).map(|r| r * 10).collect::<Vec<_>>());
    });
}
