//! Guest modes on the paravirtual network interface of driver domain
//! `backend=N` (found through the store, `device/vif/0`), with `netsvc`
//! over `pv::net_front` (address `ip=A.B.C.D`, /24, gateway `A.B.C.2`):
//!
//! * `net=serve` (`requests=R`, default 1; `stream=BYTES`, default 0):
//!   serves HTTP on port 80 and answers pings until R requests were
//!   answered and (with `stream`) a checked stream of BYTES arrived on
//!   port 5001, then powers off.
//! * `net=ping peer=P` (`count=N`, default 5; `fetch=0|1`, default 1;
//!   `stream=BYTES`, default 0; `port=`, default 5001; `spin=1`): pings P
//!   N times, fetches its page, sends it BYTES of the checked stream on
//!   `port` (`BENCH net_stream_ticks` line). With `spin=1` it waits by
//!   yielding instead of sleeping on a timer: a peer outside the machine
//!   (the host, through the uplink) answers in host time, and under
//!   `-icount` a sleeping machine's clock jumps to its next timer.
//! * `reconnect=1` (`net=serve`, `net=ping`): survive the driver domain's
//!   death: when its ports go unbound, wait for a new driver domain and
//!   reconnect the session and the vif (`pv::Session::reconnect`,
//!   `NetFront::reconnect`); `net=ping` then (after waiting up to
//!   `limit=MS` for the death) pings and fetches again.
//! * `net=bad peer=P`: malformed tx requests (offsets, sizes, fragment
//!   chains, extra info, grant references it never gave), each answered
//!   `NETIF_RSP_ERROR`, then pings P and fetches its page: the vif still
//!   works.

use crate::console::println;
use crate::dt::BootInfo;
use crate::pv::net_front::NetFront;
use crate::ring_test::opt;
use crate::tally::Tally;
use crate::time::{counter, now_ns};
use alloc::vec::Vec;
use hypercall_abi::guest;
use hypercall_abi::io::netif::*;
use netsvc::{Blaster, HttpGet, HttpServer, Ipv4Config, Pinger, Sink, Stack};

/// The page `net=serve` answers with.
pub const BODY: &[u8] = b"hello from a pvh guest over netif\n";
/// The stream's port.
const STREAM_PORT: u16 = 5001;
/// `spin=1`: [`run_until`] yields instead of sleeping.
static SPIN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

fn fail(what: &str) -> ! {
    println!("guest: net: FAIL: {what}");
    guest::crash()
}

fn now_ms() -> i64 {
    (now_ns() / 1_000_000) as i64
}

fn ip_arg(info: &BootInfo, key: &str) -> Option<[u8; 4]> {
    let v = info
        .bootargs
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))?;
    Ipv4Config::parse(&alloc::format!("{v}/32")).map(|c| c.addr)
}

fn setup(info: &BootInfo) -> (crate::pv::Session, Stack<NetFront>, [u8; 4]) {
    let Some(ip) = ip_arg(info, "ip") else {
        fail("no ip=A.B.C.D on the command line")
    };
    let backend = opt(info, "backend").map(|b| b as u16);
    let mut s = crate::pv::start(backend, 30_000_000_000).unwrap_or_else(|e| fail(e));
    println!(
        "guest: net: store and console connected through dom{}",
        s.backend
    );
    let nf = NetFront::connect(&mut s.store, &mut s.grants, 0).unwrap_or_else(|e| {
        println!("guest: net: connecting vif 0: {e:?}");
        fail("vif 0")
    });
    let m = nf.mac;
    println!(
        "guest: net: vif 0 connected, mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, ip {}.{}.{}.{}",
        m[0], m[1], m[2], m[3], m[4], m[5], ip[0], ip[1], ip[2], ip[3]
    );
    let cfg = Ipv4Config {
        addr: ip,
        prefix: 24,
        gateway: Some([ip[0], ip[1], ip[2], 2]),
    };
    (s, Stack::new(nf, m, cfg, now_ms()), ip)
}

/// Polls the stack and calls `step` until it returns true or `limit_ms`
/// pass; sleeps (`sched_op(block)`) when nothing is due.
fn run_until(
    stack: &mut Stack<NetFront>,
    limit_ms: i64,
    mut step: impl FnMut(&mut Stack<NetFront>, i64) -> bool,
) -> bool {
    let end = now_ms() + limit_ms;
    loop {
        let now = now_ms();
        let busy = stack.poll(now);
        if step(stack, now) {
            return true;
        }
        if now > end {
            return false;
        }
        if !busy && !stack.dev.io.rx_pending() {
            let d = stack.poll_delay_ms(now).unwrap_or(10).min(10);
            if SPIN.load(core::sync::atomic::Ordering::Relaxed) {
                crate::events::yield_with_irqs();
            } else if d > 0 {
                crate::events::sleep(d * 1_000_000);
            }
        }
    }
}

/// `net=serve`.
pub fn serve(info: &BootInfo) -> ! {
    let (mut s, mut stack, ip) = setup(info);
    let mut t = Tally::new("net");
    let reconnect = opt(info, "reconnect") == Some(1);
    let requests = opt(info, "requests").unwrap_or(1) as u32;
    let stream = opt(info, "stream").unwrap_or(0);
    let mut http = HttpServer::new(&mut stack, 80, BODY);
    let mut sink = (stream > 0).then(|| Sink::new(&mut stack, STREAM_PORT));
    println!(
        "guest: net: http: listening on {}.{}.{}.{}:80, {requests} request(s) to serve",
        ip[0], ip[1], ip[2], ip[3]
    );
    let mut served = 0;
    let mut done_at: Option<i64> = None;
    let ok = run_until(&mut stack, 60_000, |st, now| {
        if reconnect && !s.backend_alive() {
            relink(&mut s, st, &mut t);
        }
        http.poll(st);
        if let Some(k) = sink.as_mut() {
            k.poll(st);
        }
        if http.served != served {
            served = http.served;
            println!("guest: net: http: served request {served}");
        }
        let finished =
            served >= requests && sink.as_ref().map_or(true, |k| k.finished || k.corrupt);
        if finished && done_at.is_none() {
            done_at = Some(now);
        }
        // Linger so that the last responses and FINs go out.
        done_at.is_some_and(|t| now - t > 300)
    });
    t.check(
        "http served",
        ok && served >= requests,
        format_args!("{served} of {requests}, {} refused", http.refused),
    );
    if let Some(k) = sink {
        t.check(
            "stream received",
            k.received == stream && !k.corrupt,
            format_args!("{} of {stream} bytes, pattern checked", k.received),
        );
    }
    println!("guest: net: frames sent/received {:?}", stack.dev.frames);
    println!("guest: net checks passed {}/{}", t.ok, t.all);
    guest::poweroff()
}

fn ping(stack: &mut Stack<NetFront>, peer: [u8; 4], count: u16) -> (u16, u16) {
    ping_with(stack, peer, count, 2000)
}

fn ping_with(
    stack: &mut Stack<NetFront>,
    peer: [u8; 4],
    count: u16,
    timeout_ms: i64,
) -> (u16, u16) {
    let mut p = Pinger::new(stack, peer, count);
    run_until(stack, 20_000, |st, now| {
        p.poll(st, now, timeout_ms);
        p.done()
    });
    (p.replies, p.lost)
}

fn fetch(stack: &mut Stack<NetFront>, peer: [u8; 4], local_port: u16) -> Option<(u16, Vec<u8>)> {
    let mut g = HttpGet::new(stack, peer, 80, local_port);
    run_until(stack, 20_000, |st, _| g.poll(st));
    g.result().map(|(c, b)| (c, b.to_vec()))
}

/// The driver domain went away: waits for a new one, reconnects the
/// session (store, console) and the vif; two checks.
fn relink(s: &mut crate::pv::Session, stack: &mut Stack<NetFront>, t: &mut Tally) {
    let old = s.backend;
    println!("guest: net: dom{old} gone; waiting for a new driver domain");
    let t0 = now_ns();
    let r = s.reconnect(30_000_000_000);
    let waited = (now_ns() - t0) / 1_000_000;
    t.check(
        "store and console reconnected",
        r.is_ok_and(|d| d != old),
        format_args!(
            "to dom{} (generation {}) after {waited} ms: {r:?}",
            s.backend,
            s.tracker.generation()
        ),
    );
    let r = if r.is_ok() {
        stack.dev.io.reconnect(&mut s.store, &mut s.grants)
    } else {
        Err(crate::pv::net_front::NetError::BackendGone)
    };
    t.check("vif reconnected", r.is_ok(), format_args!("{r:?}"));
}

/// `net=ping`.
pub fn ping_mode(info: &BootInfo) -> ! {
    let (mut s, mut stack, _) = setup(info);
    let Some(peer) = ip_arg(info, "peer") else {
        fail("no peer=A.B.C.D")
    };
    let count = opt(info, "count").unwrap_or(5) as u16;
    let stream = opt(info, "stream").unwrap_or(0);
    let port = opt(info, "port").unwrap_or(STREAM_PORT as u64) as u16;
    SPIN.store(
        opt(info, "spin") == Some(1),
        core::sync::atomic::Ordering::Relaxed,
    );
    let mut t = Tally::new("net");
    if count > 0 {
        let (replies, lost) = ping(&mut stack, peer, count);
        t.check(
            "ping",
            replies == count,
            format_args!("{replies}/{count} checked replies, {lost} lost"),
        );
    }
    if opt(info, "fetch").unwrap_or(1) != 0 {
        let r = fetch(&mut stack, peer, 42000);
        t.check(
            "http get",
            r.as_ref().is_some_and(|(c, b)| *c == 200 && b == BODY),
            format_args!("status {:?}", r.as_ref().map(|r| r.0)),
        );
    }
    if opt(info, "reconnect") == Some(1) {
        // Until the driver domain goes away (within `limit=MS`).
        let limit = now_ns() + opt(info, "limit").unwrap_or(30_000) * 1_000_000;
        while s.backend_alive() && now_ns() < limit {
            crate::events::sleep(10_000_000);
        }
        let gone = !s.backend_alive();
        t.check(
            "back end gone",
            gone,
            format_args!("at {} ms", now_ns() / 1_000_000),
        );
        if gone {
            relink(&mut s, &mut stack, &mut t);
        }
        // The peer reconnects on its own: wait until it answers.
        let mut tries = 1;
        while ping_with(&mut stack, peer, 1, 500).0 == 0 && tries < 40 {
            tries += 1;
        }
        println!("guest: net: peer answered after {tries} attempt(s)");
        let (replies, lost) = ping(&mut stack, peer, count);
        t.check(
            "ping after reconnecting",
            replies == count,
            format_args!("{replies}/{count} checked replies, {lost} lost"),
        );
        let r = fetch(&mut stack, peer, 42001);
        t.check(
            "http get after reconnecting",
            r.as_ref().is_some_and(|(c, b)| *c == 200 && b == BODY),
            format_args!("status {:?}", r.as_ref().map(|r| r.0)),
        );
    }
    if stream > 0 {
        let mut b = Blaster::new(&mut stack, peer, port, stream);
        let t0 = counter();
        let done = run_until(&mut stack, 50_000, |st, _| b.poll(st));
        let dt = counter() - t0;
        t.check(
            "stream sent",
            done,
            format_args!("{} of {stream} bytes acknowledged", b.sent),
        );
        if done {
            println!("guest: cntfrq {}", crate::time::frequency());
            println!("BENCH net_stream_ticks {dt} {stream}");
        }
    }
    println!(
        "guest: net: frames sent/received {:?}, refused {}",
        stack.dev.frames, stack.dev.send_refused
    );
    println!("guest: net checks passed {}/{}", t.ok, t.all);
    guest::poweroff()
}

fn req(gref: u32, offset: u16, size: u16, id: u16, flags: u16) -> NetifTxRequest {
    NetifTxRequest {
        gref,
        offset,
        flags,
        id,
        size,
    }
}

/// `net=bad`.
pub fn bad(info: &BootInfo) -> ! {
    let (_s, mut stack, _) = setup(info);
    let Some(peer) = ip_arg(info, "peer") else {
        fail("no peer=A.B.C.D")
    };
    let mut t = Tally::new("net");
    let good = stack.dev.io.tx_gref();
    let mut id = 100u16;
    let mut next = |n: u16| {
        let i = id;
        id += n;
        i
    };
    let more = NETTXF_MORE_DATA;
    let mut cases: Vec<(&str, Vec<NetifTxRequest>)> = Vec::new();
    let i = next(1);
    cases.push((
        "fragment crossing its page",
        alloc::vec![req(good, 4000, 200, i, 0)],
    ));
    let i = next(1);
    cases.push(("offset 4096", alloc::vec![req(good, 4096, 60, i, 0)]));
    let i = next(1);
    cases.push(("larger than a frame", alloc::vec![req(good, 0, 2000, i, 0)]));
    let i = next(1);
    cases.push(("shorter than a header", alloc::vec![req(good, 0, 10, i, 0)]));
    let i = next(2);
    cases.push((
        "fragments exceeding the total",
        alloc::vec![req(good, 0, 100, i, more), req(good, 200, 300, i + 1, 0)],
    ));
    let i = next(1);
    cases.push((
        "extra info",
        alloc::vec![req(good, 0, 60, i, NETTXF_EXTRA_INFO)],
    ));
    let i = next(1);
    cases.push(("grant never given", alloc::vec![req(400, 0, 60, i, 0)]));
    let i = next(1);
    cases.push((
        "grant past the table",
        alloc::vec![req(0xffff_0000, 0, 60, i, 0)],
    ));
    let i = next(2);
    cases.push((
        "chain with a foreign grant",
        alloc::vec![req(good, 0, 100, i, more), req(401, 0, 40, i + 1, 0)],
    ));
    let n = XEN_NETIF_NR_SLOTS_MIN as u16 + 1;
    let i = next(n);
    cases.push((
        "chain past the slot limit",
        (0..n).map(|k| req(good, 0, 60, i + k, more)).collect(),
    ));
    for (what, reqs) in cases {
        if stack.dev.io.send_raw(&reqs).is_err() {
            fail("cannot queue requests");
        }
        let want: Vec<u16> = reqs.iter().map(|r| r.id).collect();
        let mut got = Vec::new();
        let end = now_ms() + 5000;
        while got.len() < want.len() && now_ms() < end {
            got.extend(stack.dev.io.take_raw_responses().unwrap_or_default());
            if got.len() < want.len() {
                crate::events::sleep(5_000_000);
            }
        }
        let ids: Vec<u16> = got.iter().map(|r| r.id).collect();
        let all_err = got.iter().all(|r| r.status == NETIF_RSP_ERROR);
        t.check(
            what,
            ids == want && all_err,
            format_args!(
                "{} request(s), {} error response(s)",
                want.len(),
                got.iter().filter(|r| r.status == NETIF_RSP_ERROR).count()
            ),
        );
    }
    let (replies, lost) = ping(&mut stack, peer, 3);
    t.check(
        "ping after bad requests",
        replies == 3,
        format_args!("{replies}/3 checked replies, {lost} lost"),
    );
    let r = fetch(&mut stack, peer, 43000);
    t.check(
        "http get after bad requests",
        r.as_ref().is_some_and(|(c, b)| *c == 200 && b == BODY),
        format_args!("status {:?}", r.as_ref().map(|r| r.0)),
    );
    println!("guest: net checks passed {}/{}", t.ok, t.all);
    guest::poweroff()
}
