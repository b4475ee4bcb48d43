//! Device store: permissions, quotas, watches, transactions, the wire
//! protocol, random operation sequences against a model, and random bytes
//! fed to the wire parser.

use super::wire::*;
use super::*;
use alloc::string::ToString;
use hypercall_abi::io::xs_wire::*;
use proptest::prelude::*;

fn store() -> Store {
    let mut s = Store::new(Limits::default());
    s.set_privileged(0, true);
    s.introduce(1).unwrap();
    s.introduce(2).unwrap();
    s
}

#[test]
fn own_subtree_only_unless_granted() {
    let mut s = store();
    s.write(1, 0, "data/x", b"1").unwrap();
    assert_eq!(s.read(1, 0, "/local/domain/1/data/x").unwrap(), b"1");
    assert_eq!(s.read(2, 0, "/local/domain/1/data/x"), Err(XsError::EACCES));
    assert_eq!(
        s.write(2, 0, "/local/domain/1/data/y", b"2"),
        Err(XsError::EACCES)
    );
    assert_eq!(
        s.write(1, 0, "/local/domain/2/z", b"2"),
        Err(XsError::EACCES)
    );
    assert_eq!(s.write(1, 0, "/elsewhere", b"2"), Err(XsError::EACCES));
    assert_eq!(s.rm(2, 0, "/local/domain/1/data"), Err(XsError::EACCES));
    assert_eq!(s.directory(2, 0, "/local/domain"), Err(XsError::EACCES));
    // The privileged domain sees and does everything.
    assert_eq!(s.directory(0, 0, "/local/domain").unwrap(), ["1", "2"]);
    s.write(0, 0, "/local/domain/1/data/y", b"from 0").unwrap();
    assert_eq!(s.read(1, 0, "data/y").unwrap(), b"from 0");
    // The toolstack grants domain 2 read access to one node.
    s.set_perms(
        0,
        0,
        "/local/domain/1/data/x",
        &[
            Perm { dom: 1, access: 0 },
            Perm {
                dom: 2,
                access: PERM_READ,
            },
        ],
    )
    .unwrap();
    assert_eq!(s.read(2, 0, "/local/domain/1/data/x").unwrap(), b"1");
    assert_eq!(
        s.write(2, 0, "/local/domain/1/data/x", b"no"),
        Err(XsError::EACCES)
    );
    // A domain cannot give its node away; it can share it.
    assert_eq!(
        s.set_perms(1, 0, "data/y", &[Perm { dom: 2, access: 3 }]),
        Err(XsError::EPERM)
    );
    s.set_perms(
        1,
        0,
        "data/y",
        &[Perm { dom: 1, access: 0 }, Perm { dom: 2, access: 3 }],
    )
    .unwrap();
    s.write(2, 0, "/local/domain/1/data/y", b"shared").unwrap();
    // Nodes created below a shared node belong to their creator.
    s.write(2, 0, "/local/domain/1/data/y/child", b"c").unwrap();
    assert_eq!(
        s.get_perms(0, 0, "/local/domain/1/data/y/child").unwrap()[0].dom,
        2
    );
}

#[test]
fn paths_are_checked() {
    let mut s = store();
    for bad in ["", "/a//b", "/a/", "a b", "/a/\u{e9}", "/a/b\0"] {
        assert_eq!(s.write(0, 0, bad, b""), Err(XsError::EINVAL), "{bad:?}");
    }
    let long = "/".to_string() + &"a".repeat(XENSTORE_ABS_PATH_MAX);
    assert_eq!(s.write(0, 0, &long, b""), Err(XsError::EINVAL));
    assert_eq!(
        s.write(0, 0, &"a".repeat(XENSTORE_REL_PATH_MAX + 1), b""),
        Err(XsError::EINVAL)
    );
    assert_eq!(s.read(0, 0, "/nope"), Err(XsError::ENOENT));
    assert_eq!(s.rm(0, 0, "/"), Err(XsError::EINVAL));
    assert_eq!(
        s.write(0, 0, "/v", &alloc::vec![0; s.limits().value_max + 1]),
        Err(XsError::E2BIG)
    );
}

#[test]
fn quotas() {
    let mut s = Store::new(Limits {
        nodes_per_domain: 5,
        watches_per_domain: 2,
        transactions_per_domain: 1,
        ..Limits::default()
    });
    s.introduce(1).unwrap();
    // Home counts as one node: four more fit, as one write of a deep path or several.
    s.write(1, 0, "a/b/c", b"").unwrap();
    assert_eq!(s.write(1, 0, "d/e", b""), Err(XsError::ENOSPC));
    assert!(
        !s.paths().iter().any(|p| p.ends_with("/d")),
        "nothing created on refusal"
    );
    s.write(1, 0, "d", b"").unwrap();
    assert_eq!(s.write(1, 0, "f", b""), Err(XsError::ENOSPC));
    s.rm(1, 0, "a").unwrap();
    s.write(1, 0, "f", b"").unwrap();
    s.watch(1, "a", "t1").unwrap();
    s.watch(1, "b", "t2").unwrap();
    assert_eq!(s.watch(1, "c", "t3"), Err(XsError::E2BIG));
    assert_eq!(s.watch(1, "b", "t2"), Err(XsError::EEXIST));
    let t = s.transaction_start(1).unwrap();
    assert_eq!(s.transaction_start(1), Err(XsError::ENOSPC));
    s.transaction_end(1, t, false).unwrap();
    s.transaction_start(1).unwrap();
}

#[test]
fn watches_fire_for_subtree_changes_the_watcher_may_read() {
    let mut s = store();
    s.watch(2, "device", "dev").unwrap();
    s.watch(0, "/local/domain/2/device/vbd", "vbd").unwrap();
    s.watch(1, "/local/domain/2", "spy").unwrap();
    assert_eq!(
        s.take_events(2),
        [WatchEvent {
            path: "device".into(),
            token: "dev".into()
        }]
    );
    s.take_events(0);
    s.take_events(1);
    s.write(0, 0, "/local/domain/2/device/vbd/0/state", b"1")
        .unwrap();
    let ev = s.take_events(2);
    assert_eq!(
        ev.len(),
        4,
        "device, device/vbd, device/vbd/0, device/vbd/0/state were created: {ev:?}"
    );
    assert_eq!(
        ev[3],
        WatchEvent {
            path: "device/vbd/0/state".into(),
            token: "dev".into()
        }
    );
    assert_eq!(
        s.take_events(0).last().unwrap().path,
        "/local/domain/2/device/vbd/0/state"
    );
    assert_eq!(
        s.take_events(1),
        [],
        "domain 1 may not read domain 2's nodes"
    );
    s.write(0, 0, "/local/domain/2/other", b"x").unwrap();
    assert_eq!(s.take_events(0), []);
    s.rm(0, 0, "/local/domain/2/device").unwrap();
    let ev = s.take_events(2);
    assert_eq!(ev.len(), 4);
    assert!(ev.iter().any(|e| e.path == "device/vbd/0/state"));
    s.unwatch(2, "device", "dev").unwrap();
    assert_eq!(s.unwatch(2, "device", "dev"), Err(XsError::ENOENT));
    s.write(0, 0, "/local/domain/2/device", b"").unwrap();
    assert_eq!(s.take_events(2), []);
    // Special paths.
    s.watch(0, "@releaseDomain", "rel").unwrap();
    s.take_events(0);
    s.release(2);
    assert_eq!(
        s.take_events(0),
        [WatchEvent {
            path: "@releaseDomain".into(),
            token: "rel".into()
        }]
    );
    assert_eq!(s.watch(0, "@", "x"), Err(XsError::EINVAL));
}

#[test]
fn transactions_commit_abort_and_conflict() {
    let mut s = store();
    s.write(1, 0, "a", b"0").unwrap();
    s.watch(1, "a", "w").unwrap();
    s.take_events(1);
    let t = s.transaction_start(1).unwrap();
    assert_eq!(s.read(1, t, "a").unwrap(), b"0");
    s.write(1, t, "a", b"1").unwrap();
    s.write(1, t, "b/c", b"new").unwrap();
    assert_eq!(s.read(1, 0, "a").unwrap(), b"0", "invisible outside");
    assert_eq!(s.read(1, t, "a").unwrap(), b"1", "visible inside");
    assert_eq!(s.take_events(1), [], "no events before the commit");
    s.transaction_end(1, t, true).unwrap();
    assert_eq!(s.read(1, 0, "a").unwrap(), b"1");
    assert_eq!(s.read(1, 0, "b/c").unwrap(), b"new");
    assert_eq!(
        s.take_events(1),
        [WatchEvent {
            path: "a".into(),
            token: "w".into()
        }]
    );
    // Conflict: someone else changes what the transaction read.
    let t = s.transaction_start(1).unwrap();
    s.read(1, t, "a").unwrap();
    s.write(1, t, "x", b"1").unwrap();
    s.write(0, 0, "/local/domain/1/a", b"2").unwrap();
    assert_eq!(s.transaction_end(1, t, true), Err(XsError::EAGAIN));
    assert_eq!(s.read(1, 0, "x"), Err(XsError::ENOENT), "nothing applied");
    // Conflict on a node both created.
    let t = s.transaction_start(1).unwrap();
    s.write(1, t, "y", b"tx").unwrap();
    s.write(1, 0, "y", b"direct").unwrap();
    assert_eq!(s.transaction_end(1, t, true), Err(XsError::EAGAIN));
    assert_eq!(s.read(1, 0, "y").unwrap(), b"direct");
    // Abort, unknown and foreign transactions.
    let t = s.transaction_start(1).unwrap();
    s.rm(1, t, "a").unwrap();
    s.transaction_end(1, t, false).unwrap();
    assert_eq!(s.read(1, 0, "a").unwrap(), b"2");
    let t = s.transaction_start(1).unwrap();
    assert_eq!(s.read(2, t, "/local/domain/2"), Err(XsError::ENOENT));
    assert_eq!(s.transaction_end(2, t, true), Err(XsError::ENOENT));
    assert_eq!(s.transaction_end(1, 999, true), Err(XsError::ENOENT));
    // An unrelated change does not conflict; a removal inside commits.
    s.write(0, 0, "/local/domain/2/z", b"").unwrap();
    s.rm(1, t, "b").unwrap();
    s.transaction_end(1, t, true).unwrap();
    assert_eq!(s.read(1, 0, "b/c"), Err(XsError::ENOENT));
}

fn msg(kind: u32, req_id: u32, tx: u32, parts: &[&[u8]]) -> alloc::vec::Vec<u8> {
    encode_message(kind, req_id, tx, parts).unwrap()
}

fn replies(out: &[u8]) -> alloc::vec::Vec<(XsdSockmsg, alloc::vec::Vec<u8>)> {
    let mut r = MessageReader::new();
    r.feed(out);
    core::iter::from_fn(|| r.next_message().unwrap()).collect()
}

#[test]
fn wire_protocol_requests_and_errors() {
    let mut s = store();
    let mut c = Connection::new();
    let input = [
        msg(XS_WRITE, 1, 0, &[b"dev/state\0", b"4"]),
        msg(XS_READ, 2, 0, &[b"dev/state\0"]),
        msg(XS_DIRECTORY, 3, 0, &[b"dev\0"]),
        msg(XS_READ, 4, 0, &[b"/local/domain/2\0"]),
        msg(XS_READ, 5, 0, &[b"missing\0"]),
        msg(XS_READ, 6, 0, &[b"a\0b\0"]),
        msg(77, 7, 0, &[]),
        msg(XS_WATCH_EVENT, 8, 0, &[b"a\0b\0"]),
        msg(XS_GET_PERMS, 9, 0, &[b"dev\0"]),
        msg(XS_GET_DOMAIN_PATH, 10, 0, &[b"7\0"]),
        msg(XS_INTRODUCE, 11, 0, &[b"5\0", b"0\0", b"1\0"]),
        msg(XS_TRANSACTION_START, 12, 0, &[b"\0"]),
        msg(XS_DEBUG_LIKE, 13, 0, &[b"print\0"]),
        msg(XS_READ, 14, 0, &[&[0xff, 0xfe, 0]]),
    ];
    for m in &input {
        c.feed(m);
    }
    let r = replies(&c.process(&mut s, 1));
    let got: alloc::vec::Vec<(u32, u32, &[u8])> = r
        .iter()
        .map(|(h, p)| (h.kind, h.req_id, p.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            (XS_WRITE, 1, &b"OK\0"[..]),
            (XS_READ, 2, b"4"),
            (XS_DIRECTORY, 3, b"state\0"),
            (XS_ERROR, 4, b"EACCES\0"),
            (XS_ERROR, 5, b"ENOENT\0"),
            (XS_ERROR, 6, b"EINVAL\0"),
            (XS_ERROR, 7, b"EINVAL\0"),
            (XS_ERROR, 8, b"EINVAL\0"),
            (XS_GET_PERMS, 9, b"n1\0"),
            (XS_GET_DOMAIN_PATH, 10, b"/local/domain/7\0"),
            (XS_ERROR, 11, b"EACCES\0"),
            (XS_TRANSACTION_START, 12, b"1\0"),
            (XS_ERROR, 13, b"ENOSYS\0"),
            (XS_ERROR, 14, b"EINVAL\0"),
        ]
    );
    // A transaction over the wire, then a watch event.
    c.feed(&msg(XS_WRITE, 20, 1, &[b"dev/state\0", b"5"]));
    c.feed(&msg(XS_TRANSACTION_END, 21, 1, &[b"T\0"]));
    c.feed(&msg(XS_WATCH, 22, 0, &[b"dev\0", b"tok\0"]));
    c.feed(&msg(XS_WRITE, 23, 0, &[b"dev/state\0", b"6"]));
    let r = replies(&c.process(&mut s, 1));
    let got: alloc::vec::Vec<(u32, u32, u32, &[u8])> = r
        .iter()
        .map(|(h, p)| (h.kind, h.req_id, h.tx_id, p.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            (XS_WRITE, 20, 1, &b"OK\0"[..]),
            (XS_TRANSACTION_END, 21, 1, b"OK\0"),
            (XS_WATCH, 22, 0, b"OK\0"),
            (XS_WRITE, 23, 0, b"OK\0"),
            (XS_WATCH_EVENT, 0, 0, b"dev\0tok\0"),
            (XS_WATCH_EVENT, 0, 0, b"dev/state\0tok\0"),
        ]
    );
}

const XS_DEBUG_LIKE: u32 = XS_CONTROL;

#[test]
fn oversize_header_is_answered_and_the_stream_restarts() {
    let mut s = store();
    let mut c = Connection::new();
    let mut bad = msg(XS_READ, 1, 0, &[]);
    bad[12..16].copy_from_slice(&(XENSTORE_PAYLOAD_MAX as u32 + 1).to_le_bytes());
    c.feed(&bad);
    c.feed(b"junk that follows");
    let r = replies(&c.process(&mut s, 1));
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].0.kind, r[0].0.req_id, r[0].1.as_slice()),
        (XS_ERROR, 1, &b"E2BIG\0"[..])
    );
    assert_eq!(c.protocol_errors, 1);
    c.feed(&msg(XS_WRITE, 2, 0, &[b"k\0", b"v"]));
    let r = replies(&c.process(&mut s, 1));
    assert_eq!(r[0].1, b"OK\0");
}

#[test]
fn serve_ring_pumps_the_store_page() {
    let mut s = store();
    let mut c = Connection::new();
    let page = alloc::boxed::Box::new(XenstoreDomainInterface::new());
    let m = msg(XS_WRITE, 9, 0, &[b"name\0", b"guest-1"]);
    assert_eq!(page.req_ring().write(&m), Ok(m.len()));
    assert_eq!(serve_ring(&mut c, &mut s, 1, &page), Ok(true));
    let mut out = [0u8; 64];
    let n = page.rsp_ring().read(&mut out).unwrap();
    let r = replies(&out[..n]);
    assert_eq!((r[0].0.req_id, r[0].1.as_slice()), (9, &b"OK\0"[..]));
    assert_eq!(s.read(0, 0, "/local/domain/1/name").unwrap(), b"guest-1");
    // Many replies larger than the 1 KiB reply ring: they come out in turns.
    for i in 0..40 {
        let m = msg(XS_READ, 100 + i, 0, &[b"name\0"]);
        while page.req_ring().write(&m) != Ok(m.len()) {
            serve_ring(&mut c, &mut s, 1, &page).unwrap();
            let n = page.rsp_ring().read(&mut [0u8; 1024]).unwrap();
            assert!(n > 0);
        }
    }
    // Corrupt indices from the guest: refused, reported.
    page.req_prod.store(
        page.req_cons
            .load(core::sync::atomic::Ordering::Relaxed)
            .wrapping_add(5000),
        core::sync::atomic::Ordering::Relaxed,
    );
    assert!(serve_ring(&mut c, &mut s, 1, &page).is_err());
}

#[derive(Clone, Debug)]
enum Op {
    Write(usize, u8),
    Mkdir(usize),
    Rm(usize),
    Read(usize),
    Dir(usize),
}

const NAMES: [&str; 8] = [
    "/a",
    "/a/b",
    "/a/b/c",
    "/a/d",
    "/e",
    "/e/f",
    "/local/domain/1/g",
    "/local/domain/1/g/h",
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..NAMES.len(), any::<u8>()).prop_map(|(p, v)| Op::Write(p, v)),
        (0..NAMES.len()).prop_map(Op::Mkdir),
        (0..NAMES.len()).prop_map(Op::Rm),
        (0..NAMES.len()).prop_map(Op::Read),
        (0..NAMES.len()).prop_map(Op::Dir),
    ]
}

proptest! {
    /// Random operations by the privileged domain, directly or in a
    /// transaction that commits, against a map of path to value.
    #[test]
    fn operations_match_a_model(ops in proptest::collection::vec(op(), 1..60), use_tx in any::<bool>()) {
        let mut s = store();
        let mut model: alloc::collections::BTreeMap<alloc::string::String, alloc::vec::Vec<u8>> =
            s.paths().into_iter().map(|p| (p, alloc::vec::Vec::new())).collect();
        let tx = if use_tx { s.transaction_start(0).unwrap() } else { 0 };
        let ancestors = |p: &str| -> alloc::vec::Vec<alloc::string::String> {
            let mut v = alloc::vec::Vec::new();
            let mut cur = p;
            while let Some(q) = path::parent(cur) { v.push(q.to_string()); cur = q; }
            v
        };
        for o in ops {
            match o {
                Op::Write(i, v) => {
                    s.write(0, tx, NAMES[i], &[v]).unwrap();
                    for a in ancestors(NAMES[i]) { model.entry(a).or_default(); }
                    model.insert(NAMES[i].to_string(), alloc::vec![v]);
                }
                Op::Mkdir(i) => {
                    s.mkdir(0, tx, NAMES[i]).unwrap();
                    for a in ancestors(NAMES[i]) { model.entry(a).or_default(); }
                    model.entry(NAMES[i].to_string()).or_default();
                }
                Op::Rm(i) => {
                    let r = s.rm(0, tx, NAMES[i]);
                    if model.contains_key(NAMES[i]) {
                        prop_assert_eq!(r, Ok(()));
                        model.retain(|k, _| !path::is_under(k, NAMES[i]));
                    } else {
                        prop_assert_eq!(r, Err(XsError::ENOENT));
                    }
                }
                Op::Read(i) => prop_assert_eq!(s.read(0, tx, NAMES[i]), model.get(NAMES[i]).cloned().ok_or(XsError::ENOENT)),
                Op::Dir(i) => {
                    let want = if model.contains_key(NAMES[i]) {
                        Ok(model.keys().filter(|k| path::parent(k) == Some(NAMES[i])).map(|k| k.rsplit('/').next().unwrap().to_string()).collect::<alloc::vec::Vec<_>>())
                    } else { Err(XsError::ENOENT) };
                    prop_assert_eq!(s.directory(0, tx, NAMES[i]), want);
                }
            }
        }
        if use_tx { s.transaction_end(0, tx, true).unwrap(); }
        prop_assert_eq!(s.paths(), model.keys().cloned().collect::<alloc::vec::Vec<_>>());
        for (k, v) in &model { prop_assert_eq!(&s.read(0, 0, k).unwrap(), v); }
    }

    /// Random bytes (and random well-framed messages with random
    /// payloads) from an unprivileged domain: never a panic, every
    /// complete request gets exactly one reply with its req_id.
    #[test]
    fn wire_parser_survives_garbage(
        junk in proptest::collection::vec(any::<u8>(), 0..600),
        msgs in proptest::collection::vec((0u32..30, proptest::collection::vec(any::<u8>(), 0..40)), 0..20)
    ) {
        let mut s = store();
        let mut c = Connection::new();
        let _ = c.process(&mut s, 2);
        c.feed(&junk);
        let _ = c.process(&mut s, 2);
        // Start over on a clean stream: framed messages with random payloads.
        let mut c = Connection::new();
        for (i, (kind, payload)) in msgs.iter().enumerate() {
            c.feed(&msg(*kind, i as u32, 0, &[payload]));
        }
        let r = replies(&c.process(&mut s, 2));
        let ids: alloc::vec::Vec<u32> = r.iter().filter(|(h, _)| h.kind != XS_WATCH_EVENT).map(|(h, _)| h.req_id).collect();
        prop_assert_eq!(ids, (0..msgs.len() as u32).collect::<alloc::vec::Vec<_>>());
        // Domain 2 never touched domain 1's nodes.
        prop_assert!(s.paths().iter().all(|p| !p.starts_with("/local/domain/1/")));
    }
}

#[test]
fn generation_changes_exactly_when_the_tree_does() {
    let mut s = store();
    let mut g = s.generation();
    let changed = |s: &Store, g: &mut u64, want: bool, what: &str| {
        assert_eq!(s.generation() != *g, want, "{what}");
        *g = s.generation();
    };
    s.write(1, 0, "data/x", b"1").unwrap();
    changed(&s, &mut g, true, "write");
    s.read(1, 0, "data/x").unwrap();
    let _ = s.directory(1, 0, "data");
    changed(&s, &mut g, false, "reads");
    // A refused write may move it (a spurious re-read costs nothing).
    assert!(s.write(2, 0, "/local/domain/1/data/x", b"2").is_err());
    g = s.generation();
    s.mkdir(1, 0, "data/d").unwrap();
    changed(&s, &mut g, true, "mkdir");
    s.set_perms(
        1,
        0,
        "data/x",
        &[
            Perm { dom: 1, access: 0 },
            Perm {
                dom: 2,
                access: PERM_READ,
            },
        ],
    )
    .unwrap();
    changed(&s, &mut g, true, "set_perms");
    let tx = s.transaction_start(1).unwrap();
    s.write(1, tx, "data/y", b"3").unwrap();
    changed(&s, &mut g, false, "write inside a transaction");
    s.transaction_end(1, tx, true).unwrap();
    changed(&s, &mut g, true, "commit");
    let tx = s.transaction_start(1).unwrap();
    s.write(1, tx, "data/z", b"4").unwrap();
    s.transaction_end(1, tx, false).unwrap();
    changed(&s, &mut g, false, "aborted transaction");
    s.rm(1, 0, "data/x").unwrap();
    changed(&s, &mut g, true, "rm");
}
