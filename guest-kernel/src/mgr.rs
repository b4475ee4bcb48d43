//! `mgr=N`: domain management from the privileged domain. N rounds of:
//! create a child (which idles), check it is listed, pause it, unpause it,
//! change its weight, destroy it, and check it is gone. Then the refusals:
//! bad arguments, unknown domains, destroying itself. Run in an
//! unprivileged domain, every call must be refused with `EPERM`.
//!
//! `kill=NAME@MS`: at system time MS, destroy the domain named NAME
//! (`DOMCTL_DESTROYDOMAIN`), then shut down (e.g. a manager that takes a
//! driver domain away under its guests). With `respawn=NEW[@MS2]`, it
//! then (at system time MS2, if given) creates a new driver domain named
//! NEW (`DOMCTL_CDF_DRIVER`, `drvmem=MIB` MiB, default 64) whose command
//! line is `driver` followed by `drvargs=A,B,...` (commas become spaces,
//! e.g. `drvargs=disk=virtio`), then shuts down.
//!
//! `idle`: block forever (`wfi` with nothing pending): a domain that uses no
//! CPU until it is destroyed.

use crate::console::println;
use hypercall_abi::domctl::*;
use hypercall_abi::{guest, Errno};

fn create(name: &str, mem_mib: u32, vcpus: u32, args: &str) -> Result<u16, Errno> {
    create_flags(name, mem_mib, vcpus, args, 0)
}

fn create_flags(
    name: &str,
    mem_mib: u32,
    vcpus: u32,
    args: &str,
    flags: u32,
) -> Result<u16, Errno> {
    let mut op = Domctl::new(DOMCTL_CREATEDOMAIN, 0);
    op.create.flags = flags;
    op.create.name[..name.len()].copy_from_slice(name.as_bytes());
    op.create.mem_mib = mem_mib;
    op.create.vcpus = vcpus;
    op.create.cmdline[..args.len()].copy_from_slice(args.as_bytes());
    guest::domctl(&mut op).map(|_| op.domain)
}

fn simple(cmd: u32, dom: u16) -> Result<u64, Errno> {
    guest::domctl(&mut Domctl::new(cmd, dom))
}

fn info(from: u16) -> Result<DomainInfo, Errno> {
    let mut op = Domctl::new(DOMCTL_GETDOMAININFO, from);
    guest::domctl(&mut op).map(|_| op.info)
}

/// How many domains there are and the lowest id, through GETDOMAININFO
/// from 0 upwards.
fn list() -> (usize, u16) {
    let (mut n, mut first) = (0, 0);
    let mut from = 0u16;
    while let Ok(i) = info(from) {
        if n == 0 {
            first = i.domain;
        }
        n += 1;
        from = i.domain + 1;
    }
    (n, first)
}

struct Tally {
    ok: u32,
    all: u32,
}

impl Tally {
    fn check(&mut self, what: &str, good: bool) {
        self.all += 1;
        if good {
            self.ok += 1;
        } else {
            println!("guest: mgr FAIL: {what}");
        }
    }
}

/// `mgr=N`.
pub fn run(arg: &str) -> ! {
    let rounds: u32 = arg.parse().unwrap_or(3);
    let mut t = Tally { ok: 0, all: 0 };
    let me = list();
    if info(0) == Err(Errno::EPERM) {
        // Not the privileged domain: everything is refused.
        t.check(
            "create refused",
            create("x", 8, 1, "idle") == Err(Errno::EPERM),
        );
        t.check(
            "destroy refused",
            simple(DOMCTL_DESTROYDOMAIN, 1) == Err(Errno::EPERM),
        );
        t.check(
            "pause refused",
            simple(DOMCTL_PAUSEDOMAIN, 1) == Err(Errno::EPERM),
        );
        println!(
            "guest: mgr: not privileged: {}/{} refusals as expected",
            t.ok, t.all
        );
        guest::poweroff()
    }
    println!("guest: mgr: {} domain(s) at the start", me.0);
    for r in 1..=rounds {
        let id = match create("child", 8, 2, "idle") {
            Ok(id) => id,
            Err(e) => {
                t.check("create", false);
                println!("guest: mgr: create failed: {e}");
                break;
            }
        };
        let i = info(id);
        t.check(
            "child listed",
            i.is_ok_and(|i| i.domain == id && i.vcpus == 2 && i.mem_kib >= 8 * 1024),
        );
        t.check("pause", simple(DOMCTL_PAUSEDOMAIN, id).is_ok());
        t.check(
            "paused flag",
            info(id).is_ok_and(|i| i.flags & DOMINF_PAUSED != 0),
        );
        t.check("unpause", simple(DOMCTL_UNPAUSEDOMAIN, id).is_ok());
        t.check(
            "unpaused flag",
            info(id).is_ok_and(|i| i.flags & DOMINF_PAUSED == 0),
        );
        let mut op = Domctl::new(DOMCTL_SCHEDULER_OP, id);
        op.sched = SchedCredit {
            op: SCHEDOP_PUTINFO,
            weight: 512,
            cap: 50,
        };
        t.check("set weight", guest::domctl(&mut op).is_ok());
        let mut op = Domctl::new(DOMCTL_SCHEDULER_OP, id);
        op.sched.op = SCHEDOP_GETINFO;
        t.check(
            "get weight",
            guest::domctl(&mut op).is_ok() && op.sched.weight == 512 && op.sched.cap == 50,
        );
        t.check("destroy", simple(DOMCTL_DESTROYDOMAIN, id).is_ok());
        // A destroyed domain whose vCPU was on another CPU is listed as
        // dying until that CPU lets go of it.
        t.check(
            "child gone or dying",
            info(id).map_or(true, |i| i.domain != id || i.flags & DOMINF_DYING != 0),
        );
        let mut waits = 0;
        while info(id).is_ok_and(|i| i.domain == id) && waits < 10_000 {
            let _ = guest::sched_yield();
            waits += 1;
        }
        t.check("child gone", info(id).map(|i| i.domain) != Ok(id));
        t.check("no more domains than at the start", list().0 <= me.0);
        println!(
            "guest: mgr round {r}: created, paused, unpaused, reweighted and destroyed dom{id}"
        );
    }
    // The privileged domain is the first configured one here.
    let self_id = me.1;
    t.check(
        "zero vcpus refused",
        create("bad", 8, 0, "idle") == Err(Errno::EINVAL),
    );
    t.check(
        "bad name refused",
        create("no/slash", 8, 1, "idle") == Err(Errno::EINVAL),
    );
    t.check(
        "too much memory refused",
        create("big", 1024, 1, "idle") == Err(Errno::ENOMEM),
    );
    t.check(
        "unknown domain",
        simple(DOMCTL_DESTROYDOMAIN, 999) == Err(Errno::ESRCH),
    );
    t.check(
        "destroying itself refused",
        simple(DOMCTL_DESTROYDOMAIN, self_id) == Err(Errno::EINVAL),
    );
    let mut op = Domctl::new(DOMCTL_GETDOMAININFO, 0);
    op.interface_version = 99;
    t.check(
        "wrong interface version",
        guest::domctl(&mut op) == Err(Errno::EACCES),
    );
    let mut op = Domctl::new(DOMCTL_SCHEDULER_OP, self_id);
    op.sched = SchedCredit {
        op: SCHEDOP_PUTINFO,
        weight: 0,
        cap: 0,
    };
    t.check(
        "weight 0 refused",
        guest::domctl(&mut op) == Err(Errno::EINVAL),
    );
    println!("guest: mgr checks passed {}/{}", t.ok, t.all);
    guest::poweroff()
}

/// `idle`.
pub fn idle() -> ! {
    loop {
        // SAFETY: waiting has no memory effects; nothing ever wakes us.
        unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
    }
}

/// `kill=NAME@MS`.
pub fn kill(boot: &crate::dt::BootInfo) -> ! {
    let arg = boot
        .bootargs
        .split_whitespace()
        .find_map(|w| w.strip_prefix("kill="))
        .unwrap_or("");
    let Some((name, ms)) = arg
        .split_once('@')
        .and_then(|(n, t)| Some((n, t.parse::<u64>().ok()?)))
    else {
        println!("guest: kill: FAIL: expected kill=NAME@MS, got '{arg}'");
        guest::crash()
    };
    let _ = crate::events::init();
    let _ = crate::events::bind_timer();
    while crate::time::now_ns() < ms * 1_000_000 {
        crate::events::sleep(ms * 1_000_000 - crate::time::now_ns());
    }
    let mut from = 0u16;
    let mut target = None;
    while let Ok(i) = info(from) {
        if until_nul(&i.name) == Some(name.as_bytes()) {
            target = Some(i.domain);
            break;
        }
        from = i.domain.wrapping_add(1);
        if from == 0 {
            break;
        }
    }
    match target {
        Some(d) => {
            let r = simple(DOMCTL_DESTROYDOMAIN, d);
            println!(
                "guest: kill: destroyed dom{d} ({name}) at {} ms: {:?}",
                crate::time::now_ns() / 1_000_000,
                r.map(|_| ())
            );
            // A destroyed domain is listed no more (or only as dying).
            let gone = info(d).map_or(true, |i| i.domain != d || i.flags & DOMINF_DYING != 0);
            if !gone {
                println!("guest: kill: FAIL: dom{d} still listed after its destruction");
            }
        }
        None => println!("guest: kill: FAIL: no domain named {name}"),
    }
    if let Some(new) = word(boot, "respawn=") {
        respawn(boot, new);
    }
    guest::poweroff()
}

/// The value of the first `key...` word of the command line.
fn word<'a>(boot: &'a crate::dt::BootInfo, key: &str) -> Option<&'a str> {
    boot.bootargs
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key))
}

/// `respawn=NEW[@MS]`: a new driver domain.
fn respawn(boot: &crate::dt::BootInfo, arg: &str) {
    let (name, at) = match arg.split_once('@') {
        Some((n, t)) => (n, t.parse::<u64>().unwrap_or(0)),
        None => (arg, 0),
    };
    while crate::time::now_ns() < at * 1_000_000 {
        crate::events::sleep(at * 1_000_000 - crate::time::now_ns());
    }
    let mem = word(boot, "drvmem=")
        .and_then(|m| m.parse().ok())
        .unwrap_or(64);
    let mut args = alloc::string::String::from("driver");
    for a in word(boot, "drvargs=")
        .unwrap_or("")
        .split(',')
        .filter(|a| !a.is_empty())
    {
        args.push(' ');
        args.push_str(a);
    }
    // The destroyed domain's memory comes back once no CPU runs it any
    // more: a creation refused for memory meanwhile is tried again.
    let mut tries = 0;
    let r = loop {
        let r = create_flags(name, mem, 1, &args, DOMCTL_CDF_DRIVER);
        tries += 1;
        if r != Err(Errno::ENOMEM) || tries >= 100 {
            break r;
        }
        crate::events::sleep(10_000_000);
    };
    match r {
        Ok(d) => println!(
            "guest: kill: created driver domain dom{d} ({name}, \"{args}\") at {} ms",
            crate::time::now_ns() / 1_000_000
        ),
        Err(e) => println!("guest: kill: FAIL: creating driver domain {name}: {e}"),
    }
}
