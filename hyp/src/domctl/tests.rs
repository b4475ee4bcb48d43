//! The handlers against a simulated monitor.

use super::*;
use hypercall_abi::domctl::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Dom {
    name: String,
    mem_mib: u32,
    vcpus: u32,
    weight: u16,
    cap: u16,
    paused: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Sim {
    privileged: u16,
    driver: Option<u16>,
    free_kib: u64,
    doms: BTreeMap<u16, Dom>,
}

impl Sim {
    fn new() -> Self {
        let mut s = Sim {
            privileged: 0,
            driver: None,
            free_kib: 64 * 1024,
            doms: BTreeMap::new(),
        };
        for (id, name) in [(0, "ctl"), (1, "a"), (2, "b")] {
            s.doms.insert(
                id,
                Dom {
                    name: name.into(),
                    mem_mib: 16,
                    vcpus: 2,
                    weight: 256,
                    cap: 0,
                    paused: false,
                },
            );
        }
        s
    }
}

impl Manager for Sim {
    fn privileged(&self) -> u16 {
        self.privileged
    }
    fn driver(&self) -> Option<u16> {
        self.driver
    }
    fn exists(&self, dom: u16) -> bool {
        self.doms.contains_key(&dom)
    }
    fn name_in_use(&self, name: &str) -> bool {
        self.doms.values().any(|d| d.name == name)
    }
    fn free_kib(&self) -> u64 {
        self.free_kib
    }
    fn create(&mut self, d: &NewDomain<'_>) -> Result<u16, Errno> {
        let id = (0..).find(|i| !self.doms.contains_key(i)).unwrap();
        self.free_kib -= u64::from(d.mem_mib) * 1024;
        self.doms.insert(
            id,
            Dom {
                name: d.name.into(),
                mem_mib: d.mem_mib,
                vcpus: d.vcpus,
                weight: d.weight,
                cap: d.cap,
                paused: false,
            },
        );
        Ok(id)
    }
    fn destroy(&mut self, dom: u16) -> Result<(), Errno> {
        let d = self.doms.remove(&dom).unwrap();
        self.free_kib += u64::from(d.mem_mib) * 1024;
        Ok(())
    }
    fn pause(&mut self, dom: u16) -> Result<(), Errno> {
        self.doms.get_mut(&dom).unwrap().paused = true;
        Ok(())
    }
    fn unpause(&mut self, dom: u16) -> Result<(), Errno> {
        self.doms.get_mut(&dom).unwrap().paused = false;
        Ok(())
    }
    fn info_from(&self, from: u16) -> Option<DomainInfo> {
        let (&id, d) = self.doms.range(from..).next()?;
        let mut name = [0; DOMCTL_NAME_LEN];
        name[..d.name.len()].copy_from_slice(d.name.as_bytes());
        Some(DomainInfo {
            domain: id,
            flags: if d.paused { DOMINF_PAUSED } else { 0 },
            vcpus: d.vcpus,
            mem_kib: u64::from(d.mem_mib) * 1024,
            weight: d.weight.into(),
            cap: d.cap.into(),
            name,
            ..DomainInfo::default()
        })
    }
    fn vcpus(&self, dom: u16) -> u32 {
        self.doms[&dom].vcpus
    }
    fn sched_params(&self, dom: u16) -> (u16, u16) {
        (self.doms[&dom].weight, self.doms[&dom].cap)
    }
    fn set_sched_params(&mut self, dom: u16, weight: u16, cap: u16) -> Result<(), Errno> {
        let d = self.doms.get_mut(&dom).unwrap();
        d.weight = weight;
        d.cap = cap;
        Ok(())
    }
}

/// Runs `op` as `caller`; on error asserts that nothing changed.
fn call(m: &mut Sim, caller: u16, op: &mut Domctl) -> Result<u64, Errno> {
    let (before, op_before) = (m.clone(), *op);
    let r = domctl(m, caller, op);
    if r.is_err() {
        assert_eq!(*m, before, "monitor changed on error");
        assert_eq!(*op, op_before, "argument changed on error");
    }
    r
}

fn create(name: &str) -> Domctl {
    let mut op = Domctl::new(DOMCTL_CREATEDOMAIN, 0);
    op.create = CreateDomain::new(name, "hello").unwrap();
    op
}

#[test]
fn create_list_and_destroy() {
    let mut m = Sim::new();
    let free = m.free_kib;
    let mut op = create("web");
    op.create.vcpus = 4;
    op.create.cap = 250;
    op.create.kernel = KERNEL_IMAGE;
    assert_eq!(call(&mut m, 0, &mut op), Ok(0));
    let id = op.domain;
    assert_eq!(id, 3);
    let d = &m.doms[&id];
    assert_eq!(
        (d.name.as_str(), d.vcpus, d.weight, d.cap),
        ("web", 4, DEFAULT_WEIGHT, 250)
    );
    // List every domain through GETDOMAININFO.
    let mut ids = vec![];
    let mut next = 0;
    loop {
        let mut op = Domctl::new(DOMCTL_GETDOMAININFO, next);
        match call(&mut m, 0, &mut op) {
            Ok(_) => {
                ids.push(op.info.domain);
                next = op.info.domain + 1;
            }
            Err(e) => {
                assert_eq!(e, Errno::ESRCH);
                break;
            }
        }
    }
    assert_eq!(ids, [0, 1, 2, 3]);
    let mut op = Domctl::new(DOMCTL_GETDOMAININFO, 3);
    call(&mut m, 0, &mut op).unwrap();
    assert_eq!((op.info.vcpus, op.info.mem_kib), (4, 16 * 1024));
    assert_eq!(until_nul(&op.info.name), Some(&b"web"[..]));
    assert_eq!(
        call(&mut m, 0, &mut Domctl::new(DOMCTL_DESTROYDOMAIN, id)),
        Ok(0)
    );
    assert!(!m.doms.contains_key(&id));
    assert_eq!(m.free_kib, free, "memory returned");
}

#[test]
fn pause_unpause_and_scheduler_params() {
    let mut m = Sim::new();
    assert_eq!(
        call(&mut m, 0, &mut Domctl::new(DOMCTL_PAUSEDOMAIN, 1)),
        Ok(0)
    );
    assert!(m.doms[&1].paused);
    let mut op = Domctl::new(DOMCTL_GETDOMAININFO, 1);
    call(&mut m, 0, &mut op).unwrap();
    assert_eq!(op.info.flags & DOMINF_PAUSED, DOMINF_PAUSED);
    assert_eq!(
        call(&mut m, 0, &mut Domctl::new(DOMCTL_UNPAUSEDOMAIN, 1)),
        Ok(0)
    );
    assert!(!m.doms[&1].paused);
    let mut op = Domctl::new(DOMCTL_SCHEDULER_OP, 2);
    op.sched = SchedCredit {
        op: SCHEDOP_PUTINFO,
        weight: 512,
        cap: 200,
    };
    assert_eq!(call(&mut m, 0, &mut op), Ok(0));
    let mut op = Domctl::new(DOMCTL_SCHEDULER_OP, 2);
    op.sched.op = SCHEDOP_GETINFO;
    assert_eq!(call(&mut m, 0, &mut op), Ok(0));
    assert_eq!((op.sched.weight, op.sched.cap), (512, 200));
}

#[test]
fn unprivileged_callers_get_eperm() {
    let mut m = Sim::new();
    for cmd in [
        DOMCTL_CREATEDOMAIN,
        DOMCTL_DESTROYDOMAIN,
        DOMCTL_PAUSEDOMAIN,
        DOMCTL_UNPAUSEDOMAIN,
        DOMCTL_GETDOMAININFO,
        DOMCTL_SCHEDULER_OP,
    ] {
        let mut op = create("x");
        op.cmd = cmd;
        op.domain = 2;
        assert_eq!(call(&mut m, 1, &mut op), Err(Errno::EPERM), "cmd {cmd}");
    }
    // Another domain can be the privileged one.
    m.privileged = 1;
    assert_eq!(
        call(&mut m, 0, &mut Domctl::new(DOMCTL_PAUSEDOMAIN, 2)),
        Err(Errno::EPERM)
    );
    assert_eq!(
        call(&mut m, 1, &mut Domctl::new(DOMCTL_PAUSEDOMAIN, 2)),
        Ok(0)
    );
}

#[test]
fn bad_ids_versions_and_commands() {
    let mut m = Sim::new();
    for cmd in [
        DOMCTL_DESTROYDOMAIN,
        DOMCTL_PAUSEDOMAIN,
        DOMCTL_UNPAUSEDOMAIN,
        DOMCTL_SCHEDULER_OP,
    ] {
        assert_eq!(
            call(&mut m, 0, &mut Domctl::new(cmd, 9)),
            Err(Errno::ESRCH),
            "cmd {cmd}"
        );
    }
    assert_eq!(
        call(&mut m, 0, &mut Domctl::new(DOMCTL_GETDOMAININFO, 3)),
        Err(Errno::ESRCH)
    );
    assert_eq!(
        call(&mut m, 0, &mut Domctl::new(DOMCTL_DESTROYDOMAIN, 0)),
        Err(Errno::EINVAL),
        "itself"
    );
    assert_eq!(
        call(&mut m, 0, &mut Domctl::new(DOMCTL_PAUSEDOMAIN, 0)),
        Err(Errno::EINVAL),
        "itself"
    );
    assert_eq!(call(&mut m, 0, &mut Domctl::new(99, 1)), Err(Errno::ENOSYS));
    let mut op = Domctl::new(DOMCTL_PAUSEDOMAIN, 1);
    op.interface_version = DOMCTL_INTERFACE_VERSION + 1;
    assert_eq!(call(&mut m, 0, &mut op), Err(Errno::EACCES));
}

#[test]
fn bad_create_requests_get_einval_enomem_eexist() {
    let mut m = Sim::new();
    type Edit = fn(&mut CreateDomain);
    let einval: &[(&str, Edit)] = &[
        ("no vcpus", |c| c.vcpus = 0),
        ("too many vcpus", |c| c.vcpus = MAX_VCPUS as u32 + 1),
        ("weight too big", |c| c.weight = 65536),
        ("cap above vcpus", |c| {
            c.vcpus = 2;
            c.cap = 201
        }),
        ("mem too small", |c| c.mem_mib = MIN_MEM_MIB - 1),
        ("mem too big", |c| c.mem_mib = MAX_MEM_MIB + 1),
        ("kernel", |c| c.kernel = 2),
        ("unknown flags", |c| c.flags = 1 << 5),
        ("empty name", |c| c.name = [0; DOMCTL_NAME_LEN]),
        ("bad name", |c| c.name[0] = b' '),
        ("unterminated name", |c| c.name = [b'a'; DOMCTL_NAME_LEN]),
        ("unterminated cmdline", |c| {
            c.cmdline = [b'a'; DOMCTL_CMDLINE_LEN]
        }),
        ("non-UTF-8 cmdline", |c| c.cmdline[0] = 0xff),
    ];
    for (what, edit) in einval {
        let mut op = create("new");
        edit(&mut op.create);
        assert_eq!(call(&mut m, 0, &mut op), Err(Errno::EINVAL), "{what}");
    }
    let mut op = create("new");
    op.create.mem_mib = 128; // 64 MiB free
    assert_eq!(call(&mut m, 0, &mut op), Err(Errno::ENOMEM));
    assert_eq!(call(&mut m, 0, &mut create("a")), Err(Errno::EEXIST));
    let mut op = create("new");
    op.create.mem_mib = 64;
    op.create.vcpus = MAX_VCPUS as u32;
    op.create.cap = 100 * MAX_VCPUS as u32;
    op.create.weight = 65535;
    assert_eq!(call(&mut m, 0, &mut op), Ok(0), "limits are inclusive");
    assert_eq!(m.free_kib, 0);
}

#[test]
fn bad_scheduler_params_get_einval() {
    let mut m = Sim::new();
    for (op_, w, c) in [
        (SCHEDOP_PUTINFO, 0, 0),
        (SCHEDOP_PUTINFO, 1, 201),
        (7, 1, 0),
    ] {
        let mut op = Domctl::new(DOMCTL_SCHEDULER_OP, 1);
        op.sched = SchedCredit {
            op: op_,
            weight: w,
            cap: c,
        };
        assert_eq!(call(&mut m, 0, &mut op), Err(Errno::EINVAL));
    }
}

#[test]
fn the_driver_domain_may_list_domains_and_nothing_else() {
    let mut m = Sim::new();
    m.driver = Some(2);
    let mut op = Domctl::new(DOMCTL_GETDOMAININFO, 0);
    assert_eq!(domctl(&mut m, 2, &mut op), Ok(0));
    assert_eq!(op.info.domain, 0);
    let before = m.clone();
    for cmd in [
        DOMCTL_PAUSEDOMAIN,
        DOMCTL_DESTROYDOMAIN,
        DOMCTL_UNPAUSEDOMAIN,
        DOMCTL_SCHEDULER_OP,
    ] {
        let mut op = Domctl::new(cmd, 1);
        assert_eq!(domctl(&mut m, 2, &mut op), Err(Errno::EPERM), "cmd {cmd}");
    }
    let mut op = Domctl::new(DOMCTL_GETDOMAININFO, 0);
    assert_eq!(
        domctl(&mut m, 1, &mut op),
        Err(Errno::EPERM),
        "an ordinary domain may not list"
    );
    assert_eq!(m, before);
}

#[test]
fn a_driver_domain_may_be_created_when_there_is_none() {
    let mut m = Sim::new();
    let mut op = Domctl::new(DOMCTL_CREATEDOMAIN, 0);
    op.create = CreateDomain::new("drv2", "driver").unwrap();
    op.create.flags = DOMCTL_CDF_DRIVER;
    let d = check_create(&op.create).unwrap();
    assert!(d.driver);
    m.driver = Some(1);
    let before = m.clone();
    assert_eq!(
        domctl(&mut m, 0, &mut op),
        Err(Errno::EEXIST),
        "one driver domain at a time"
    );
    assert_eq!(m, before);
    m.driver = None;
    assert_eq!(domctl(&mut m, 0, &mut op), Ok(0));
    op.create.flags = 2;
    assert_eq!(check_create(&op.create), Err(Errno::EINVAL), "unknown flag");
}
