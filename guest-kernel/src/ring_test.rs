//! `ring=front peer=N` / `ring=back peer=N`: two domains set up a shared
//! ring in a granted page and an interdomain event channel, then exchange
//! request/response pairs with checksums.
//!
//! How the back end finds the ring without a device store (a fixed
//! convention): the front end, once booted, grants its ring page to the
//! back end as grant reference [`RING_REF`] (the first one not reserved),
//! *then* allocates its first event-channel port, which is therefore
//! [`RING_PORT`] (port 0 is never allocated). The back end retries
//! `bind_interdomain(front, RING_PORT)` (yielding in between) until the
//! front end's port exists; once bound, the grant is in place, so it maps
//! reference `RING_REF` at the first page of its grant-mapping window.
//!
//! Options: `count=N` pairs (default 100000), `batch=N` requests in
//! flight at most (default: the ring size), `die=N` (front end: crash
//! after N responses, to test that the back end survives).
//! A request is `[seq, value]`; the response `[seq, answer(seq, value)]`;
//! both sides keep a checksum of what they saw, printed at the end.

use crate::console::println;
use crate::dt::BootInfo;
use crate::events;
use hypercall_abi::event_channel::{DOMID_SELF, EVTCHNSTAT_INTERDOMAIN, EVTCHNSTAT_UNBOUND};
use hypercall_abi::evtchn_guest as ev;
use hypercall_abi::gnttab_guest as gt;
use hypercall_abi::grant_table::GrantRef;
use hypercall_abi::guest;
use hypercall_abi::memory::{GUEST_GNTTAB_BASE, GUEST_GRANT_MAP_BASE};
use hypercall_abi::ring::{BackRing, FrontRing, SharedRing};

/// The grant reference of the ring page.
pub const RING_REF: GrantRef = 8;
/// The front end's event-channel port.
pub const RING_PORT: u32 = 1;
/// Sequence number that ends the exchange.
const QUIT: u32 = u32::MAX;

/// `[seq, value, t_lo, t_hi]`: `t` is the counter when the request was
/// queued (for the wake-up figure); responses carry `[seq, answer, 0, 0]`.
type Msg = [u32; 4];

/// The back end's answer to request `[seq, value]`.
fn answer(seq: u32, value: u32) -> u32 {
    value.wrapping_mul(2_654_435_761).rotate_left(7) ^ seq
}

/// The value of request `seq`.
fn value(seq: u32) -> u32 {
    seq.wrapping_mul(0x9e37_79b9).wrapping_add(12345)
}

fn mix(sum: u64, a: u32, b: u32) -> u64 {
    (sum ^ ((a as u64) << 32 | b as u64)).wrapping_mul(0x100_0000_01b3)
}

#[repr(C, align(4096))]
struct RingPage([u8; 4096]);

/// The front end's ring page (in its own RAM, granted to the back end).
static mut RING_PAGE: RingPage = RingPage([0; 4096]);

/// A numeric option `key=N` of the command line.
pub fn opt(info: &BootInfo, key: &str) -> Option<u64> {
    info.bootargs
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

fn fail(what: &str, e: impl core::fmt::Display) -> ! {
    println!("guest: ring: FAIL: {what}: {e}");
    guest::crash()
}

fn counter() -> u64 {
    let t: u64;
    // SAFETY: reading the virtual counter has no side effects.
    unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) t, options(nomem, nostack)) };
    t
}

fn peer_gone(port: u32) -> bool {
    ev::status(DOMID_SELF, port).map_or(true, |s| s.status == EVTCHNSTAT_UNBOUND)
}

/// The front end.
pub fn front(info: &BootInfo) -> ! {
    let peer = opt(info, "peer").unwrap_or(2) as u16;
    let count = opt(info, "count").unwrap_or(100_000) as u32;
    let die = opt(info, "die").map(|d| d as u32);
    events::init().unwrap_or_else(|e| fail("map shared info", e));
    let table = gt::map_table_frame(0, GUEST_GNTTAB_BASE >> 12)
        .unwrap_or_else(|e| fail("map grant table frame 0", e));
    let page_addr = core::ptr::addr_of!(RING_PAGE) as usize;
    // SAFETY: RING_PAGE is a page-aligned, zero-initialised static used
    // only through this reference (and by the peer, through the grant);
    // `SharedRing` is all atomics, valid for any bytes, so sharing is sound.
    let sring: &SharedRing = unsafe { &*(page_addr as *const SharedRing) };
    let mut front = FrontRing::<Msg, Msg>::init(sring)
        .unwrap_or_else(|e| fail("ring init", format_args!("{e:?}")));
    let batch = opt(info, "batch").map_or(front.size(), |b| (b as u32).clamp(1, front.size()));
    table[RING_REF as usize].grant(peer, (page_addr >> 12) as u32, false);
    let port = ev::alloc_unbound(peer).unwrap_or_else(|e| fail("alloc_unbound", e));
    if port != RING_PORT {
        fail(
            "first port",
            format_args!("got {port}, the convention says {RING_PORT}"),
        );
    }
    ev::unmask(port).unwrap_or_else(|e| fail("unmask", e));
    // Wait for the back end to bind (its bind marks our port pending too).
    let mut waited = 0u32;
    while ev::status(DOMID_SELF, port).map(|s| s.status) != Ok(EVTCHNSTAT_INTERDOMAIN) {
        if waited == 100_000 {
            fail("waiting for the back end", "it never bound");
        }
        events::yield_with_irqs();
        waited += 1;
    }
    println!("guest: ring front: ref {RING_REF} and port {port} for dom{peer}; {count} pairs, {batch} in flight");
    let t0 = counter();
    let (mut sent, mut got, mut sum) = (0u32, 0u32, 0u64);
    let mut notifies = 0u32;
    while got < count {
        while sent < count && front.outstanding() < batch {
            let t = counter();
            front
                .push_request(&[sent, value(sent), t as u32, (t >> 32) as u32])
                .unwrap_or_else(|e| fail("push", format_args!("{e:?}")));
            sent += 1;
        }
        if front.push_requests() {
            notifies += 1;
            if let Err(e) = ev::send(port) {
                println!(
                    "guest: ring front: send failed ({e}): the back end is gone after {got} pairs"
                );
                guest::poweroff();
            }
        }
        let seen = events::count(port);
        while let Some([seq, ans, _, _]) = front
            .take_response()
            .unwrap_or_else(|e| fail("response index", format_args!("{e:?}")))
        {
            if seq != got || ans != answer(seq, value(seq)) {
                fail("response", format_args!("#{got}: got [{seq}, {ans:#x}]"));
            }
            sum = mix(sum, seq, ans);
            got += 1;
            if die == Some(got) {
                println!("guest: ring front: dying on purpose after {got} pairs");
                guest::crash();
            }
        }
        // Wait only when no more requests may be sent.
        let blocked = sent == count || front.outstanding() >= batch;
        if got < count
            && blocked
            && !front.final_check_for_responses().unwrap_or(true)
            && events::wait(port, seen, || peer_gone(port)).is_none()
        {
            println!("guest: ring front: the back end is gone after {got} pairs");
            guest::poweroff();
        }
    }
    let ticks = counter() - t0;
    println!("guest: ring front: {got} pairs ok, checksum {sum:#018x}, {notifies} notifications");
    println!("BENCH ring_roundtrip_ticks {ticks} {got} {batch}");
    // The back end still has the page mapped: revoking must fail.
    let revoked = table[RING_REF as usize].try_revoke();
    println!(
        "guest: ring front: revoke while mapped refused: {}",
        if revoked { "FAIL" } else { "ok" }
    );
    // Ask the back end to finish, wait for its answer, then revoke.
    front
        .push_request(&[QUIT, 0, 0, 0])
        .unwrap_or_else(|e| fail("push quit", format_args!("{e:?}")));
    if front.push_requests() {
        let _ = ev::send(port);
    }
    loop {
        let seen = events::count(port);
        if let Ok(Some([QUIT, ..])) = front.take_response() {
            break;
        }
        if !front.final_check_for_responses().unwrap_or(true)
            && events::wait(port, seen, || peer_gone(port)).is_none()
        {
            break;
        }
    }
    let mut tries = 0;
    while !table[RING_REF as usize].try_revoke() && tries < 1000 {
        events::yield_with_irqs();
        tries += 1;
    }
    println!(
        "guest: ring front: revoked after the back end unmapped: {}",
        if tries < 1000 { "ok" } else { "FAIL" }
    );
    let _ = ev::close(port);
    println!(
        "guest: ring front: done ({} upcalls)",
        events::UPCALLS.load(core::sync::atomic::Ordering::Relaxed)
    );
    guest::poweroff()
}

/// The back end.
pub fn back(info: &BootInfo) -> ! {
    let peer = opt(info, "peer").unwrap_or(1) as u16;
    events::init().unwrap_or_else(|e| fail("map shared info", e));
    let mut tries = 0u32;
    let port = loop {
        match ev::bind_interdomain(peer, RING_PORT) {
            Ok(p) => break p,
            Err(e) if tries < 100_000 => {
                let _ = e;
                tries += 1;
                let _ = guest::sched_yield();
            }
            Err(e) => fail("bind_interdomain", e),
        }
    };
    ev::unmask(port).unwrap_or_else(|e| fail("unmask", e));
    let handle = gt::map_grant_ref(peer, RING_REF, GUEST_GRANT_MAP_BASE, false)
        .unwrap_or_else(|e| fail("map_grant_ref", e));
    println!("guest: ring back: bound port {port} to dom{peer} port {RING_PORT} after {tries} retries; ring mapped, handle {handle}");
    // SAFETY: the monitor has just mapped the front end's ring page at the
    // first page of the grant window (outside RAM: no Rust object there);
    // it stays mapped until the unmap below. All atomics.
    let sring: &SharedRing = unsafe { &*(GUEST_GRANT_MAP_BASE as *const SharedRing) };
    let mut back = BackRing::<Msg, Msg>::attach(sring)
        .unwrap_or_else(|e| fail("attach", format_args!("{e:?}")));
    let (mut served, mut sum, mut quit, mut gone) = (0u32, 0u64, false, false);
    // Wake-up latency: from a request being queued (its timestamp) to the
    // upcall that woke this domain for it, for requests that found it
    // waiting (every one, with `batch=1`).
    let (mut wake_sum, mut wakes) = (0u64, 0u32);
    let mut woke = false;
    while !quit && !gone {
        let seen = events::count(port);
        loop {
            match back.take_request() {
                Ok(Some([seq, val, tl, th])) => {
                    let t = (th as u64) << 32 | tl as u64;
                    let up = events::LAST_UPCALL_AT.load(core::sync::atomic::Ordering::Relaxed);
                    if seq != QUIT && up > t && served > 0 && woke {
                        wake_sum += up - t;
                        wakes += 1;
                        woke = false;
                    }
                    let ans = if seq == QUIT {
                        quit = true;
                        0
                    } else {
                        answer(seq, val)
                    };
                    if !quit {
                        sum = mix(sum, seq, ans);
                        served += 1;
                    }
                    back.push_response(&[seq, ans, 0, 0])
                        .unwrap_or_else(|e| fail("respond", format_args!("{e:?}")));
                }
                Ok(None) => break,
                Err(e) => fail("request index from the front end", format_args!("{e:?}")),
            }
        }
        if back.push_responses() {
            if let Err(e) = ev::send(port) {
                println!("guest: ring back: send failed: {e}");
                gone = true;
            }
        }
        if !quit && !gone && !back.final_check_for_requests().unwrap_or(true) {
            match events::wait(port, seen, || peer_gone(port)) {
                None => gone = true,
                Some(_) => woke = true,
            }
        }
    }
    if gone {
        let st = ev::status(DOMID_SELF, port).map(|s| s.status);
        let send = ev::send(port);
        println!(
            "guest: ring back: the front end is gone after {served} requests: port status {}, send {}",
            if st == Ok(EVTCHNSTAT_UNBOUND) { "unbound ok" } else { "FAIL" },
            if send == Err(hypercall_abi::Errno::ENOTCONN) { "ENOTCONN ok" } else { "FAIL" },
        );
    } else {
        println!("guest: ring back: {served} requests served, checksum {sum:#018x}");
        println!("BENCH evtchn_wakeup_ticks {wake_sum} {wakes}");
    }
    match gt::unmap_grant_ref(GUEST_GRANT_MAP_BASE, handle) {
        Ok(()) => println!("guest: ring back: ring unmapped"),
        Err(e) => println!("guest: ring back: unmap FAIL: {e}"),
    }
    let _ = ev::close(port);
    println!("guest: ring back: done, shutting down cleanly");
    guest::poweroff()
}
