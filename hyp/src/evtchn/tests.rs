//! Unit and property tests of the event-channel state machine.

use super::*;
use alloc::boxed::Box;
use proptest::prelude::*;

type Ev = EventChannels<Box<SharedInfo>>;

fn setup(n: u16) -> Ev {
    let mut ev = Ev::new();
    for d in 1..=n {
        ev.add_domain(d, 1, Box::new(SharedInfo::new())).unwrap();
    }
    ev
}

/// The comparable part of the state (ports, VIRQs and the pages' bits).
fn snapshot(
    ev: &Ev,
) -> Vec<(
    DomId,
    Vec<PortEntry>,
    Vec<Option<Port>>,
    Vec<u64>,
    Vec<u64>,
    u64,
    u8,
)> {
    use core::sync::atomic::Ordering::Relaxed;
    ev.domains()
        .map(|(id, d)| {
            let p = ev.page(id).unwrap();
            (
                id,
                d.ports().to_vec(),
                d.virqs().to_vec(),
                p.evtchn_pending.iter().map(|w| w.load(Relaxed)).collect(),
                p.evtchn_mask.iter().map(|w| w.load(Relaxed)).collect(),
                p.vcpu_info[0].evtchn_pending_sel.load(Relaxed),
                p.vcpu_info[0].evtchn_upcall_pending.load(Relaxed),
            )
        })
        .collect()
}

#[test]
fn connect_send_close() {
    let mut ev = setup(2);
    let p1 = ev.alloc_unbound(1, DOMID_SELF, 2).unwrap();
    assert_eq!(p1, 1, "port 0 is never allocated");
    assert_eq!(ev.send(1, p1), Err(Errno::ENOTCONN));
    let (p2, up) = ev.bind_interdomain(2, 1, p1).unwrap();
    assert_eq!(
        up,
        Some(Upcall { dom: 2, vcpu: 0 }),
        "the binder's port starts pending"
    );
    assert!(ev.page(2).unwrap().is_pending(p2));
    let s = ev.status(1, DOMID_SELF, p1).unwrap();
    assert_eq!(
        (s.status, s.remote_dom(), s.remote_port()),
        (EVTCHNSTAT_INTERDOMAIN, 2, p2)
    );
    // Send from 1 reaches 2's port; 2's upcall is already pending: no new one.
    ev.page(2).unwrap().take_pending(0, |_| {});
    assert_eq!(ev.send(1, p1), Ok(Some(Upcall { dom: 2, vcpu: 0 })));
    assert_eq!(ev.send(1, p1), Ok(None), "already pending");
    assert!(ev.upcall_pending(2) && !ev.upcall_pending(1));
    assert_eq!(ev.send(2, p2), Ok(Some(Upcall { dom: 1, vcpu: 0 })));
    // Close one end: the other goes back to unbound for the closer.
    ev.close(1, p1).unwrap();
    let s = ev.status(2, 2, p2).unwrap();
    assert_eq!((s.status, s.remote_dom()), (EVTCHNSTAT_UNBOUND, 1));
    assert_eq!(ev.send(2, p2), Err(Errno::ENOTCONN));
    assert_eq!(ev.status(1, 1, p1).unwrap().status, EVTCHNSTAT_CLOSED);
    assert!(!ev.page(1).unwrap().is_pending(p1), "close clears pending");
    // The closer can bind again to the port left unbound.
    let (p1b, _) = ev.bind_interdomain(1, 2, p2).unwrap();
    assert_eq!(ev.send(1, p1b), Ok(None));
    ev.check_invariants().unwrap();
}

#[test]
fn masked_port_is_delivered_on_unmask() {
    let mut ev = setup(2);
    let p1 = ev.alloc_unbound(1, 1, 2).unwrap();
    let (p2, _) = ev.bind_interdomain(2, 1, p1).unwrap();
    let page = ev.page(2).unwrap();
    page.take_pending(0, |_| {});
    page.set_mask(p2, true);
    assert_eq!(ev.send(1, p1), Ok(None), "masked: no upcall");
    assert!(!ev.upcall_pending(2));
    assert_eq!(ev.unmask(2, p2), Ok(Some(Upcall { dom: 2, vcpu: 0 })));
    assert!(ev.upcall_pending(2));
    assert_eq!(ev.unmask(2, 0), Err(Errno::EINVAL));
    assert_eq!(ev.unmask(2, 4000), Err(Errno::EINVAL));
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let mut ev = setup(3);
    let p1 = ev.alloc_unbound(1, 1, 2).unwrap();
    let before = snapshot(&ev);
    let checks: Vec<(&str, Result<(), Errno>, Errno)> = vec![
        (
            "alloc in another domain",
            ev.alloc_unbound(1, 2, 2).map(|_| ()),
            Errno::EPERM,
        ),
        (
            "bind a port meant for another",
            ev.bind_interdomain(3, 1, p1).map(|_| ()),
            Errno::EINVAL,
        ),
        (
            "bind a free port",
            ev.bind_interdomain(2, 1, 7).map(|_| ()),
            Errno::EINVAL,
        ),
        (
            "bind port 0",
            ev.bind_interdomain(2, 1, 0).map(|_| ()),
            Errno::EINVAL,
        ),
        (
            "bind to no such domain",
            ev.bind_interdomain(2, 9, 1).map(|_| ()),
            Errno::ESRCH,
        ),
        (
            "send on a free port",
            ev.send(1, 5).map(|_| ()),
            Errno::EINVAL,
        ),
        ("send on port 0", ev.send(1, 0).map(|_| ()), Errno::EINVAL),
        (
            "send on another domain's port number",
            ev.send(2, p1).map(|_| ()),
            Errno::EINVAL,
        ),
        ("close a free port", ev.close(1, 3), Errno::EINVAL),
        ("close past the table", ev.close(1, u32::MAX), Errno::EINVAL),
        (
            "status of another domain",
            ev.status(2, 1, p1).map(|_| ()),
            Errno::EPERM,
        ),
        (
            "virq out of range",
            ev.bind_virq(1, NR_VIRQS, 0).map(|_| ()),
            Errno::EINVAL,
        ),
        (
            "virq on a missing vcpu",
            ev.bind_virq(1, VIRQ_TIMER, 1).map(|_| ()),
            Errno::ENOENT,
        ),
        (
            "ipi on a missing vcpu",
            ev.bind_ipi(1, 5).map(|_| ()),
            Errno::ENOENT,
        ),
        (
            "bind_vcpu of a free port",
            ev.bind_vcpu(1, 9, 0),
            Errno::EINVAL,
        ),
        (
            "bind_vcpu to a missing vcpu",
            ev.bind_vcpu(1, p1, 3),
            Errno::ENOENT,
        ),
        ("unknown caller", ev.send(7, 1).map(|_| ()), Errno::ESRCH),
    ];
    for (what, got, want) in checks {
        assert_eq!(got, Err(want), "{what}");
    }
    assert_eq!(snapshot(&ev), before, "refused calls change nothing");
    ev.check_invariants().unwrap();
}

#[test]
fn virqs_and_ipis() {
    let mut ev = setup(1);
    let t = ev.bind_virq(1, VIRQ_TIMER, 0).unwrap();
    assert_eq!(
        ev.bind_virq(1, VIRQ_TIMER, 0),
        Err(Errno::EEXIST),
        "binding twice"
    );
    assert_eq!(
        ev.send(1, t),
        Err(Errno::EINVAL),
        "a VIRQ port is not sent on"
    );
    assert_eq!(
        ev.raise_virq(1, VIRQ_TIMER),
        Some(Upcall { dom: 1, vcpu: 0 })
    );
    assert_eq!(ev.raise_virq(1, VIRQ_DEBUG), None, "not bound");
    assert_eq!(ev.raise_virq(1, 999), None);
    // Bound but already pending: no new upcall, yet not "unbound".
    assert_eq!(ev.raise_virq_if_bound(1, VIRQ_TIMER), Some(None));
    assert_eq!(ev.raise_virq_if_bound(1, VIRQ_DEBUG), None, "not bound");
    assert_eq!(ev.raise_virq_if_bound(1, 999), None);
    assert_eq!(ev.raise_virq_if_bound(2, VIRQ_TIMER), None, "other domain");
    ev.page(1).unwrap().take_pending(0, |_| {});
    ev.raise_virq_all(VIRQ_TIMER);
    assert!(ev.page(1).unwrap().is_pending(t) && ev.upcall_pending(1));
    assert_eq!(ev.status(1, 1, t).unwrap().virq(), VIRQ_TIMER);
    assert_eq!(
        ev.bind_vcpu(1, t, 0),
        Err(Errno::EINVAL),
        "per-vCPU VIRQs cannot move"
    );
    let c = ev.bind_virq(1, VIRQ_DOM_EXC, 0).unwrap();
    ev.bind_vcpu(1, c, 0).unwrap();
    ev.close(1, t).unwrap();
    assert_eq!(ev.raise_virq(1, VIRQ_TIMER), None);
    let t2 = ev.bind_virq(1, VIRQ_TIMER, 0).unwrap();
    assert_eq!(t2, t, "the lowest free port is reused");
    let i = ev.bind_ipi(1, 0).unwrap();
    ev.page(1).unwrap().take_pending(0, |_| {});
    assert_eq!(ev.send(1, i), Ok(Some(Upcall { dom: 1, vcpu: 0 })));
    assert_eq!(ev.status(1, DOMID_SELF, i).unwrap().status, EVTCHNSTAT_IPI);
    ev.check_invariants().unwrap();
}

#[test]
fn destroying_a_domain_unbinds_its_peers() {
    let mut ev = setup(3);
    let a = ev.alloc_unbound(1, 1, 2).unwrap();
    let (b, _) = ev.bind_interdomain(2, 1, a).unwrap();
    let c = ev.alloc_unbound(3, 3, 1).unwrap();
    let (d, _) = ev.bind_interdomain(1, 3, c).unwrap();
    assert!(ev.remove_domain(1).is_some());
    assert!(ev.remove_domain(1).is_none());
    assert_eq!(ev.status(2, 2, b).unwrap().status, EVTCHNSTAT_UNBOUND);
    assert_eq!(ev.send(2, b), Err(Errno::ENOTCONN));
    assert_eq!(ev.send(3, c), Err(Errno::ENOTCONN));
    assert_eq!(ev.bind_interdomain(2, 1, a).map(|_| ()), Err(Errno::ESRCH));
    let _ = d;
    ev.check_invariants().unwrap();
    // A new domain cannot take over the dead one's ports.
    ev.add_domain(4, 1, Box::new(SharedInfo::new())).unwrap();
    assert_eq!(ev.bind_interdomain(4, 2, b).map(|_| ()), Err(Errno::EINVAL));
    assert_eq!(
        ev.add_domain(4, 1, Box::new(SharedInfo::new())),
        Err(Errno::EEXIST)
    );
}

#[test]
fn ports_run_out_cleanly() {
    let mut ev = setup(1);
    for _ in 1..NR_EVENT_CHANNELS {
        ev.bind_ipi(1, 0).unwrap();
    }
    assert_eq!(ev.bind_ipi(1, 0), Err(Errno::ENOSPC));
    assert_eq!(
        ev.domain(1).unwrap().ports().len(),
        NR_EVENT_CHANNELS as usize
    );
}

#[derive(Clone, Debug)]
enum Op {
    Alloc(u16, u16, u16),
    Bind(u16, u16, u32),
    Virq(u16, u32),
    Ipi(u16),
    Close(u16, u32),
    Send(u16, u32),
    Unmask(u16, u32),
    Mask(u16, u32),
    Handle(u16),
    Status(u16, u16, u32),
    BindVcpu(u16, u32),
    Destroy(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let d = 0u16..5; // 0 and 4: not domains
    let p = 0u32..8;
    prop_oneof![
        (d.clone(), d.clone(), d.clone()).prop_map(|(a, b, c)| Op::Alloc(a, b, c)),
        (d.clone(), d.clone(), p.clone()).prop_map(|(a, b, c)| Op::Bind(a, b, c)),
        (d.clone(), 0u32..30).prop_map(|(a, v)| Op::Virq(a, v)),
        d.clone().prop_map(Op::Ipi),
        (d.clone(), p.clone()).prop_map(|(a, b)| Op::Close(a, b)),
        (d.clone(), p.clone()).prop_map(|(a, b)| Op::Send(a, b)),
        (d.clone(), p.clone()).prop_map(|(a, b)| Op::Unmask(a, b)),
        (d.clone(), p.clone()).prop_map(|(a, b)| Op::Mask(a, b)),
        d.clone().prop_map(Op::Handle),
        (d.clone(), d.clone(), p.clone()).prop_map(|(a, b, c)| Op::Status(a, b, c)),
        (d.clone(), p.clone()).prop_map(|(a, b)| Op::BindVcpu(a, b)),
        (1u16..4).prop_map(Op::Destroy),
    ]
}

proptest! {
    /// Random operation sequences across three domains: cross-references
    /// stay consistent after every step, refused operations change nothing,
    /// and the 2-level delivery rules hold (an unmasked pending port has
    /// its selector bit set and the upcall raised until the guest handles
    /// it; handled ports are delivered exactly once).
    #[test]
    fn random_sequences_keep_the_invariants(ops in proptest::collection::vec(op(), 1..120)) {
        let mut ev = setup(3);
        for o in ops {
            let before = snapshot(&ev);
            let r: Result<(), Errno> = match o.clone() {
                Op::Alloc(c, d, r) => ev.alloc_unbound(c, d, r).map(|_| ()),
                Op::Bind(c, r, p) => ev.bind_interdomain(c, r, p).map(|_| ()),
                Op::Virq(c, v) => ev.bind_virq(c, v, 0).map(|_| ()),
                Op::Ipi(c) => ev.bind_ipi(c, 0).map(|_| ()),
                Op::Close(c, p) => ev.close(c, p),
                Op::Send(c, p) => {
                    let target = ev.domain(c).and_then(|d| d.ports().get(p as usize)).map(|e| e.state);
                    let r = ev.send(c, p).map(|_| ());
                    if r.is_ok() {
                        let (td, tp) = match target {
                            Some(PortState::Interdomain { remote, port }) => (remote, port),
                            _ => (c, p),
                        };
                        let page = ev.page(td).unwrap();
                        prop_assert!(page.is_pending(tp));
                        if !page.is_masked(tp) {
                            prop_assert!(page.vcpu_info[0].upcall_pending());
                        }
                    }
                    r
                }
                Op::Unmask(c, p) => ev.unmask(c, p).map(|_| ()),
                Op::Mask(c, p) => { if let Some(pg) = ev.page(c) { pg.set_mask(p, true) }; Ok(()) }
                Op::Handle(c) => {
                    if let Some(pg) = ev.page(c) {
                        let mut seen = Vec::new();
                        pg.take_pending(0, |p| seen.push(p));
                        for p in &seen { prop_assert!(!pg.is_masked(*p)); }
                        let mut dedup = seen.clone();
                        dedup.dedup();
                        prop_assert_eq!(dedup, seen);
                    }
                    Ok(())
                }
                Op::Status(c, d, p) => ev.status(c, d, p).map(|_| ()),
                Op::BindVcpu(c, p) => ev.bind_vcpu(c, p, 0),
                Op::Destroy(d) => { ev.remove_domain(d); Ok(()) }
            };
            if r.is_err() {
                prop_assert_eq!(snapshot(&ev), before, "{:?} failed with {:?} but changed the state", o, r);
            }
            prop_assert_eq!(ev.check_invariants(), Ok(()));
            // No port refers to a domain that is gone.
            for (_, d) in ev.domains() {
                for e in d.ports() {
                    if let PortState::Interdomain { remote, .. } = e.state {
                        prop_assert!(ev.domain(remote).is_some());
                    }
                }
            }
        }
    }
}
