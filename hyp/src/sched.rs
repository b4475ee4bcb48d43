//! A credit scheduler for vCPUs on physical CPUs, in the spirit of Xen's
//! credit scheduler (`sched_credit`), driven entirely by its caller.
//!
//! The scheduler owns no timer, lock or global: the monitor calls
//! [`Scheduler::pick`] on a physical CPU at every tick, yield, block or kick,
//! passing the current time (any monotonic clock in nanoseconds), and runs
//! what it is told until [`Decision::run_until`]. Other events
//! ([`wake`](Scheduler::wake), [`block`](Scheduler::block),
//! [`pause`](Scheduler::pause), ...) return the CPUs that must be kicked
//! (made to call `pick` soon) for the decision to take effect. With SMP the
//! caller serialises all calls (one lock around the scheduler).
//!
//! # Model
//!
//! * A **domain** has a weight (`1..=65535`, default [`DEFAULT_WEIGHT`]) and
//!   a cap (`0` = none, else the percent of one CPU the whole domain may use
//!   per accounting period, up to [`MAX_CAP`]).
//! * Every **accounting period** ([`Params::period_ns`], 30 ms) the CPU time
//!   of the period on all CPUs is handed out as *credit* to the active
//!   vCPUs (runnable, or ran during the period), in proportion to their
//!   domain's weight, a domain's share split evenly among its active vCPUs
//!   and limited by its cap and to one CPU per vCPU. Running costs credit
//!   nanosecond for nanosecond. Credit stays within
//!   `-2 * period..=2 * period`.
//! * **Priority**: `Boost` (just woken with credit left, for wake-up
//!   latency) > `Under` (credit > 0) > `Over`. A CPU runs the highest
//!   priority eligible vCPU of its run queue, first come first served
//!   within a priority; an `Under` vCPU runs until its credit is used up or
//!   a slice ([`Params::slice_ns`], 10 ms) ends, whichever is first, but at
//!   least [`Params::min_slice_ns`].
//! * **Caps**: a capped domain has a budget of `cap% * period` per period.
//!   Each run of one of its vCPUs reserves a chunk of the remaining budget
//!   (so CPUs running it concurrently cannot overspend); when none is left
//!   the domain is *parked*: skipped until the next period.
//! * **Balancing**: a CPU whose queue has nothing better than `Over` steals
//!   an `Under`/`Boost` vCPU from another CPU's queue; a CPU with nothing
//!   eligible steals anything eligible. A woken vCPU goes to an idle CPU
//!   (its last one if that is idle), otherwise back to its last CPU.
//! * **Pinning** ([`set_affinity`](Scheduler::set_affinity)): a pinned vCPU
//!   is only queued on, and never stolen from, its CPU.
//!
//! # Invariants (checked by [`Scheduler::check`] in the tests)
//!
//! 1. Every vCPU is in exactly one of: *running* on one CPU (that CPU's
//!    current, in no queue), *queued* on exactly one CPU's queue, or
//!    *blocked* (in no queue, not running). So a vCPU never runs on two
//!    CPUs at once.
//! 2. A queued vCPU is not blocked; a blocked vCPU is never returned by
//!    `pick`. (A running vCPU that blocks stays its CPU's current until
//!    that CPU's next `pick`, which only accounts for it.)
//! 3. A pinned vCPU is queued only on its CPU.
//! 4. A domain's `committed` budget is the sum of the reservations of its
//!    running vCPUs, and `used + committed <= budget` except for lateness
//!    of the caller past `run_until`.
//! 5. A vCPU's credit is within `-2 * period..=2 * period` after accounting.
//!
//! # Cost
//!
//! `pick` scans the CPU's own queue (`O(vCPUs queued there)`). Only when
//! that queue has nothing `Under` does it scan the other queues to steal,
//! and once per period one `pick` also runs the accounting
//! (`O(all vCPUs)`). `wake`, `block` and the management calls look vCPUs
//! up linearly: they are rare compared to ticks.
//!
//! # Example
//!
//! ```
//! use hyp::sched::{Params, Scheduler, VcpuId};
//! let mut s = Scheduler::new(1, Params::default());
//! s.add_domain(1, 256, 0).unwrap();
//! s.add_domain(2, 512, 0).unwrap();
//! let (a, b) = (VcpuId::new(1, 0), VcpuId::new(2, 0));
//! s.add_vcpu(a, 0).unwrap();
//! s.add_vcpu(b, 0).unwrap();
//! s.wake(a, 0).unwrap();
//! s.wake(b, 0).unwrap();
//! let d = s.pick(0, 0);
//! assert!(d.next.is_some() && d.run_until > 0);
//! ```

use alloc::vec::Vec;
use core::fmt;
use hypercall_abi::Errno;

/// Most physical CPUs the scheduler handles (the width of [`CpuMask`]).
pub const MAX_CPUS: usize = 64;
/// Weight of a domain that does not ask for another (Xen's default).
pub const DEFAULT_WEIGHT: u16 = 256;
/// Largest cap: all of [`MAX_CPUS`] CPUs, in percent of one CPU.
pub const MAX_CAP: u16 = 100 * MAX_CPUS as u16;

/// Most credit a vCPU keeps, in accounting periods: credit left at the end
/// of a period (when the run queues could not pack everyone's share) carries
/// over up to this much, so it is not lost to vCPUs without credit.
const CREDIT_MAX_PERIODS: i64 = 2;

/// A vCPU: its domain id and its index within the domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VcpuId {
    /// Domain id.
    pub dom: u16,
    /// vCPU index within the domain.
    pub vcpu: u16,
}

impl VcpuId {
    /// vCPU `vcpu` of domain `dom`.
    pub const fn new(dom: u16, vcpu: u16) -> Self {
        Self { dom, vcpu }
    }
}

impl fmt::Display for VcpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "d{}v{}", self.dom, self.vcpu)
    }
}

/// Scheduling priority of a runnable vCPU, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Used up its credit for now.
    Over,
    /// Has credit left.
    Under,
    /// Just woken with credit left: runs before `Under` work.
    Boost,
}

/// A set of physical CPUs (bit `n` = CPU `n`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuMask(pub u64);

impl CpuMask {
    /// Adds CPU `cpu`.
    pub fn insert(&mut self, cpu: usize) {
        self.0 |= 1 << cpu;
    }
    /// Whether CPU `cpu` is in the set.
    pub fn contains(self, cpu: usize) -> bool {
        cpu < MAX_CPUS && self.0 & (1 << cpu) != 0
    }
    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The CPUs in the set, in increasing order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..MAX_CPUS).filter(move |&c| self.contains(c))
    }
}

/// What a CPU runs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The vCPU to run, or `None` to idle (sleep until kicked).
    pub next: Option<VcpuId>,
    /// Time at which to call `pick` again on this CPU (`u64::MAX`: only
    /// when kicked).
    pub run_until: u64,
    /// Other CPUs to kick (runnable work waits that they may take).
    pub kick: CpuMask,
}

/// Timing parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Longest uninterrupted run of a vCPU when others wait.
    pub slice_ns: u64,
    /// Accounting period: credit is handed out, caps refilled.
    pub period_ns: u64,
    /// Shortest run the scheduler asks for (bounds the tick rate).
    pub min_slice_ns: u64,
}

impl Default for Params {
    /// 10 ms slices, 30 ms accounting periods, 500 µs minimum.
    fn default() -> Self {
        Self {
            slice_ns: 10_000_000,
            period_ns: 30_000_000,
            min_slice_ns: 500_000,
        }
    }
}

/// Why a scheduler call was refused (state is unchanged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// No such domain.
    NoSuchDomain,
    /// No such vCPU.
    NoSuchVcpu,
    /// The domain or vCPU exists already.
    Exists,
    /// CPU number out of range.
    BadCpu,
    /// Weight 0.
    BadWeight,
    /// Cap above [`MAX_CAP`].
    BadCap,
}

impl From<SchedError> for Errno {
    fn from(e: SchedError) -> Errno {
        match e {
            SchedError::NoSuchDomain | SchedError::NoSuchVcpu => Errno::ESRCH,
            SchedError::Exists => Errno::EEXIST,
            SchedError::BadCpu | SchedError::BadWeight | SchedError::BadCap => Errno::EINVAL,
        }
    }
}

#[derive(Clone, Debug)]
struct Dom {
    id: u16,
    alive: bool,
    weight: u16,
    cap: u16,
    paused: bool,
    /// Time charged against the cap this period.
    used: u64,
    /// Cap budget reserved by running vCPUs.
    committed: u64,
    nvcpus: u32,
}

#[derive(Clone, Debug)]
struct Vc {
    id: VcpuId,
    alive: bool,
    dom: usize,
    blocked: bool,
    queued: bool,
    running: bool,
    /// CPU it is queued on, runs on, or last ran on.
    cpu: usize,
    pin: Option<usize>,
    credit: i64,
    boost: bool,
    yielded: bool,
    ran_in_period: bool,
    start: u64,
    reserved: u64,
    time: u64,
}

#[derive(Clone, Debug, Default)]
struct Pcpu {
    queue: Vec<usize>,
    curr: Option<usize>,
    kicked: bool,
}

/// The scheduler state of the whole machine.
#[derive(Clone, Debug)]
pub struct Scheduler {
    p: Params,
    doms: Vec<Dom>,
    vcpus: Vec<Vc>,
    cpus: Vec<Pcpu>,
    next_acct: u64,
}

impl Scheduler {
    /// A scheduler for CPUs `0..ncpus` (clamped to `1..=MAX_CPUS`).
    pub fn new(ncpus: usize, p: Params) -> Self {
        let n = ncpus.clamp(1, MAX_CPUS);
        Self {
            p,
            doms: Vec::new(),
            vcpus: Vec::new(),
            cpus: (0..n).map(|_| Pcpu::default()).collect(),
            next_acct: 0,
        }
    }

    /// Number of physical CPUs.
    pub fn ncpus(&self) -> usize {
        self.cpus.len()
    }

    /// The timing parameters.
    pub fn params(&self) -> Params {
        self.p
    }

    fn dom_slot(&self, dom: u16) -> Result<usize, SchedError> {
        self.doms
            .iter()
            .position(|d| d.alive && d.id == dom)
            .ok_or(SchedError::NoSuchDomain)
    }

    fn vcpu_slot(&self, v: VcpuId) -> Result<usize, SchedError> {
        self.vcpus
            .iter()
            .position(|x| x.alive && x.id == v)
            .ok_or(SchedError::NoSuchVcpu)
    }

    fn check_params(weight: u16, cap: u16) -> Result<(), SchedError> {
        if weight == 0 {
            return Err(SchedError::BadWeight);
        }
        if cap > MAX_CAP {
            return Err(SchedError::BadCap);
        }
        Ok(())
    }

    /// Adds domain `dom` with `weight` (`1..=65535`) and `cap` (percent of
    /// one CPU, 0 = uncapped, at most [`MAX_CAP`]).
    pub fn add_domain(&mut self, dom: u16, weight: u16, cap: u16) -> Result<(), SchedError> {
        Self::check_params(weight, cap)?;
        if self.dom_slot(dom).is_ok() {
            return Err(SchedError::Exists);
        }
        let d = Dom {
            id: dom,
            alive: true,
            weight,
            cap,
            paused: false,
            used: 0,
            committed: 0,
            nvcpus: 0,
        };
        match self.doms.iter().position(|d| !d.alive) {
            Some(i) => self.doms[i] = d,
            None => self.doms.push(d),
        }
        Ok(())
    }

    /// Changes a domain's weight and cap; takes effect at the next pick.
    pub fn set_params(&mut self, dom: u16, weight: u16, cap: u16) -> Result<(), SchedError> {
        Self::check_params(weight, cap)?;
        let i = self.dom_slot(dom)?;
        self.doms[i].weight = weight;
        self.doms[i].cap = cap;
        Ok(())
    }

    /// A domain's `(weight, cap)`.
    pub fn get_params(&self, dom: u16) -> Result<(u16, u16), SchedError> {
        let d = &self.doms[self.dom_slot(dom)?];
        Ok((d.weight, d.cap))
    }

    /// Adds vCPU `v` to its (existing) domain, *blocked* (a vCPU that is
    /// down); [`wake`](Self::wake) makes it runnable. `home_cpu` is where
    /// it is queued first.
    pub fn add_vcpu(&mut self, v: VcpuId, home_cpu: usize) -> Result<(), SchedError> {
        if home_cpu >= self.cpus.len() {
            return Err(SchedError::BadCpu);
        }
        let dom = self.dom_slot(v.dom)?;
        if self.vcpu_slot(v).is_ok() {
            return Err(SchedError::Exists);
        }
        let x = Vc {
            id: v,
            alive: true,
            dom,
            blocked: true,
            queued: false,
            running: false,
            cpu: home_cpu,
            pin: None,
            credit: 0,
            boost: false,
            yielded: false,
            ran_in_period: false,
            start: 0,
            reserved: 0,
            time: 0,
        };
        match self.vcpus.iter().position(|x| !x.alive) {
            Some(i) => self.vcpus[i] = x,
            None => self.vcpus.push(x),
        }
        self.doms[dom].nvcpus += 1;
        Ok(())
    }

    /// Removes a domain and all its vCPUs. Returns the CPUs that were
    /// running one of them: the caller must stop running it there (kick
    /// them; their next `pick` chooses something else).
    pub fn remove_domain(&mut self, dom: u16) -> Result<CpuMask, SchedError> {
        let di = self.dom_slot(dom)?;
        let mut kick = CpuMask::default();
        for i in 0..self.vcpus.len() {
            if !(self.vcpus[i].alive && self.vcpus[i].dom == di) {
                continue;
            }
            let cpu = self.vcpus[i].cpu;
            if self.vcpus[i].queued {
                self.dequeue(i);
            }
            if self.vcpus[i].running {
                self.cpus[cpu].curr = None;
                kick.insert(cpu);
            }
            self.vcpus[i].alive = false;
        }
        self.doms[di].alive = false;
        Ok(kick)
    }

    /// Pins `v` to `cpu` (`None`: may run anywhere). A queued vCPU moves
    /// to its CPU's queue; a running one moves at its next deschedule.
    /// Returns the CPUs to kick.
    pub fn set_affinity(&mut self, v: VcpuId, cpu: Option<usize>) -> Result<CpuMask, SchedError> {
        if cpu.is_some_and(|c| c >= self.cpus.len()) {
            return Err(SchedError::BadCpu);
        }
        let i = self.vcpu_slot(v)?;
        self.vcpus[i].pin = cpu;
        let mut kick = CpuMask::default();
        if let Some(c) = cpu {
            if self.vcpus[i].queued && self.vcpus[i].cpu != c {
                self.dequeue(i);
                self.enqueue(i, c);
                self.kick_if_idle(c, &mut kick);
            }
        }
        Ok(kick)
    }

    fn dequeue(&mut self, i: usize) {
        let q = &mut self.cpus[self.vcpus[i].cpu].queue;
        if let Some(pos) = q.iter().position(|&x| x == i) {
            q.remove(pos);
        }
        self.vcpus[i].queued = false;
    }

    fn enqueue(&mut self, i: usize, cpu: usize) {
        self.vcpus[i].cpu = cpu;
        self.vcpus[i].queued = true;
        self.cpus[cpu].queue.push(i);
    }

    fn idle(&self, cpu: usize) -> bool {
        self.cpus[cpu].curr.is_none()
    }

    fn kick_if_idle(&mut self, cpu: usize, kick: &mut CpuMask) {
        if self.idle(cpu) {
            self.cpus[cpu].kicked = true;
            kick.insert(cpu);
        }
    }

    fn prio(&self, i: usize) -> Priority {
        let v = &self.vcpus[i];
        if v.credit > 0 {
            if v.boost {
                Priority::Boost
            } else {
                Priority::Under
            }
        } else {
            Priority::Over
        }
    }

    fn budget(&self, d: usize) -> u64 {
        let d = &self.doms[d];
        (d.cap as u128 * self.p.period_ns as u128 / 100) as u64
    }

    /// Cap budget left for domain slot `d` this period (`u64::MAX`:
    /// uncapped).
    fn remaining(&self, d: usize) -> u64 {
        if self.doms[d].cap == 0 {
            return u64::MAX;
        }
        let dd = &self.doms[d];
        self.budget(d).saturating_sub(dd.used + dd.committed)
    }

    /// May vCPU slot `i` (queued) be picked now?
    fn eligible(&self, i: usize) -> bool {
        let d = self.vcpus[i].dom;
        !self.doms[d].paused && self.remaining(d) > 0
    }

    /// Makes `v` runnable (a no-op if it is). Returns the CPU to kick, if
    /// any: an idle CPU it was queued on, or the CPU whose current vCPU it
    /// should preempt (a boosted wake).
    pub fn wake(&mut self, v: VcpuId, now: u64) -> Result<Option<usize>, SchedError> {
        let _ = now;
        let i = self.vcpu_slot(v)?;
        if !self.vcpus[i].blocked {
            return Ok(None);
        }
        self.vcpus[i].blocked = false;
        if self.vcpus[i].running {
            // Blocked and woken before its CPU descheduled it: keeps running.
            return Ok(None);
        }
        self.vcpus[i].boost = self.vcpus[i].credit > 0;
        let last = self.vcpus[i].cpu;
        let target = match self.vcpus[i].pin {
            Some(c) => c,
            None => {
                let n = self.cpus.len();
                let free = |c: usize| self.idle(c) && !self.cpus[c].kicked;
                (0..n)
                    .map(|k| (last + k) % n)
                    .find(|&c| free(c))
                    .unwrap_or(last)
            }
        };
        self.enqueue(i, target);
        if !self.eligible(i) {
            return Ok(None);
        }
        let mut kick = CpuMask::default();
        self.kick_if_idle(target, &mut kick);
        if !kick.is_empty() {
            return Ok(Some(target));
        }
        if self.prio(i) == Priority::Boost {
            if let Some(c) = self.cpus[target].curr {
                if self.prio(c) < Priority::Boost {
                    return Ok(Some(target));
                }
            }
        }
        Ok(None)
    }

    /// Makes `v` not runnable (sleeping, or down). A queued vCPU leaves its
    /// queue; a running one is descheduled at its CPU's next `pick`, which
    /// is returned (the caller picks there, at once if it is this CPU).
    pub fn block(&mut self, v: VcpuId, now: u64) -> Result<Option<usize>, SchedError> {
        let _ = now;
        let i = self.vcpu_slot(v)?;
        self.vcpus[i].blocked = true;
        self.vcpus[i].boost = false;
        if self.vcpus[i].queued {
            self.dequeue(i);
        }
        Ok(self.vcpus[i].running.then_some(self.vcpus[i].cpu))
    }

    /// `v` gives up its CPU: at the next `pick` it runs only if nothing
    /// else is eligible there or can be stolen.
    pub fn yield_(&mut self, v: VcpuId) -> Result<(), SchedError> {
        let i = self.vcpu_slot(v)?;
        self.vcpus[i].yielded = true;
        Ok(())
    }

    /// Pauses a whole domain: its vCPUs are not picked until
    /// [`unpause`](Self::unpause). Returns the CPUs running one of them
    /// (kick them).
    pub fn pause(&mut self, dom: u16) -> Result<CpuMask, SchedError> {
        let d = self.dom_slot(dom)?;
        self.doms[d].paused = true;
        let mut kick = CpuMask::default();
        for (c, p) in self.cpus.iter().enumerate() {
            if p.curr.is_some_and(|i| self.vcpus[i].dom == d) {
                kick.insert(c);
            }
        }
        Ok(kick)
    }

    /// Lets a paused domain run again. Returns idle CPUs to kick.
    pub fn unpause(&mut self, dom: u16) -> Result<CpuMask, SchedError> {
        let d = self.dom_slot(dom)?;
        self.doms[d].paused = false;
        let mut kick = CpuMask::default();
        let waiting = self
            .vcpus
            .iter()
            .filter(|v| v.alive && v.dom == d && v.queued)
            .count();
        self.kick_idle(waiting, None, &mut kick);
        Ok(kick)
    }

    /// Whether a domain is paused.
    pub fn is_paused(&self, dom: u16) -> Result<bool, SchedError> {
        Ok(self.doms[self.dom_slot(dom)?].paused)
    }

    /// Kicks up to `n` idle, not yet kicked CPUs other than `except`.
    fn kick_idle(&mut self, mut n: usize, except: Option<usize>, kick: &mut CpuMask) {
        for c in 0..self.cpus.len() {
            if n == 0 {
                break;
            }
            if Some(c) != except && self.idle(c) && !self.cpus[c].kicked {
                self.kick_if_idle(c, kick);
                n -= 1;
            }
        }
    }

    /// Whether `v` is runnable (not blocked).
    pub fn is_runnable(&self, v: VcpuId) -> Result<bool, SchedError> {
        Ok(!self.vcpus[self.vcpu_slot(v)?].blocked)
    }

    /// The vCPU `cpu` currently runs (per the last `pick` there).
    pub fn current(&self, cpu: usize) -> Option<VcpuId> {
        self.cpus.get(cpu)?.curr.map(|i| self.vcpus[i].id)
    }

    /// CPU time `v` has used, including its current run up to `now`.
    pub fn vcpu_time(&self, v: VcpuId, now: u64) -> Result<u64, SchedError> {
        let x = &self.vcpus[self.vcpu_slot(v)?];
        Ok(x.time
            + if x.running {
                now.saturating_sub(x.start)
            } else {
                0
            })
    }

    /// CPU time all vCPUs of `dom` have used, up to `now`.
    pub fn domain_time(&self, dom: u16, now: u64) -> Result<u64, SchedError> {
        let d = self.dom_slot(dom)?;
        Ok(self
            .vcpus
            .iter()
            .filter(|x| x.alive && x.dom == d)
            .map(|x| {
                x.time
                    + if x.running {
                        now.saturating_sub(x.start)
                    } else {
                        0
                    }
            })
            .sum())
    }

    /// An idle CPU that should be kicked because eligible work waits, if
    /// any (for callers that lost a kick).
    pub fn idle_cpu_to_kick(&self) -> Option<usize> {
        let waiting = self.cpus.iter().enumerate().any(|(c, p)| {
            p.queue
                .iter()
                .any(|&i| self.eligible(i) && (self.vcpus[i].pin.is_none() || self.idle(c)))
        });
        if !waiting {
            return None;
        }
        (0..self.cpus.len()).find(|&c| self.idle(c))
    }

    /// Hands out credit and refills caps if a period has ended by `now`.
    fn account(&mut self, now: u64, kick: &mut CpuMask) {
        if now < self.next_acct {
            return;
        }
        let period = self.p.period_ns;
        self.next_acct = if now - self.next_acct < period {
            self.next_acct + period
        } else {
            now + period
        };
        let mut active = Vec::new();
        active.resize(self.doms.len(), 0u64);
        for v in self.vcpus.iter().filter(|v| v.alive) {
            if !self.doms[v.dom].paused && (!v.blocked || v.ran_in_period) {
                active[v.dom] += 1;
            }
        }
        let shares = self.fair_shares(&active);
        let mut per_vcpu = Vec::new();
        per_vcpu.resize(self.doms.len(), 0i64);
        for (k, d) in self.doms.iter_mut().enumerate() {
            d.used = 0;
            if active[k] != 0 {
                per_vcpu[k] = (shares[k] / active[k] as u128).min(period as u128) as i64;
            }
        }
        let (max, min) = (CREDIT_MAX_PERIODS * period as i64, -2 * period as i64);
        for v in self.vcpus.iter_mut().filter(|v| v.alive) {
            if !self.doms[v.dom].paused && (!v.blocked || v.ran_in_period) {
                v.credit = (v.credit + per_vcpu[v.dom]).clamp(min, max);
            }
            v.ran_in_period = false;
        }
        // Parked domains may run again: let idle CPUs look.
        let waiting: usize = self.cpus.iter().map(|p| p.queue.len()).sum();
        self.kick_idle(waiting, None, kick);
    }

    /// Each domain's credit for one period (ns) given its number of active
    /// vCPUs: the period's time on all CPUs split by weight, where a domain
    /// that cannot use its split (one CPU per active vCPU, or its cap) gets
    /// what it can use and the rest is split among the others (weighted
    /// max-min fairness). `O(domains^2)`.
    fn fair_shares(&self, active: &[u64]) -> Vec<u128> {
        let period = self.p.period_ns as u128;
        let total = period * self.cpus.len() as u128;
        let n = self.doms.len();
        let mut share = Vec::new();
        share.resize(n, 0u128);
        let mut done: Vec<bool> = (0..n)
            .map(|k| !self.doms[k].alive || self.doms[k].paused || active[k] == 0)
            .collect();
        let limit = |k: usize| {
            let d = &self.doms[k];
            let l = active[k] as u128 * period;
            if d.cap != 0 {
                l.min(d.cap as u128 * period / 100)
            } else {
                l
            }
        };
        loop {
            let left = total.saturating_sub((0..n).filter(|&k| done[k]).map(|k| share[k]).sum());
            let wsum: u128 = (0..n)
                .filter(|&k| !done[k])
                .map(|k| self.doms[k].weight as u128 * active[k] as u128)
                .sum();
            if wsum == 0 {
                break;
            }
            let fair = |k: usize| left * self.doms[k].weight as u128 * active[k] as u128 / wsum;
            let mut saturated = false;
            for k in 0..n {
                if !done[k] && fair(k) >= limit(k) {
                    share[k] = limit(k);
                    done[k] = true;
                    saturated = true;
                }
            }
            if !saturated {
                for k in 0..n {
                    if !done[k] {
                        share[k] = fair(k);
                        done[k] = true;
                    }
                }
                break;
            }
        }
        share
    }

    /// Charges the run of the vCPU current on `cpu` and puts it back in the
    /// queue if it is still runnable.
    fn deschedule(&mut self, cpu: usize, now: u64) {
        let Some(i) = self.cpus[cpu].curr.take() else {
            return;
        };
        let ran = now.saturating_sub(self.vcpus[i].start);
        let d = self.vcpus[i].dom;
        let v = &mut self.vcpus[i];
        v.running = false;
        v.time += ran;
        v.credit = v.credit.saturating_sub(ran.min(i64::MAX as u64) as i64);
        v.boost = false;
        v.ran_in_period = true;
        let reserved = core::mem::take(&mut v.reserved);
        let dom = &mut self.doms[d];
        dom.committed -= reserved;
        if dom.cap != 0 {
            // A run reserved in the previous period was paid for there.
            let period_start = self.next_acct.saturating_sub(self.p.period_ns);
            dom.used += now.saturating_sub(self.vcpus[i].start.max(period_start));
        }
        if !self.vcpus[i].blocked {
            let home = self.vcpus[i].pin.unwrap_or(cpu);
            self.enqueue(i, home);
        }
    }

    /// Whether queued vCPU `i` of priority `p` goes before the current
    /// best `b` (of priority `bp`): higher priority first; among `Under`
    /// vCPUs the one with the most credit (so that credit is used before
    /// the period ends), among `Over` ones the one with the least debt (so
    /// that time beyond the credit handed out is not shared per vCPU
    /// regardless of weight); otherwise first come, first served.
    fn better(&self, i: usize, p: Priority, b: Option<(usize, Priority)>) -> bool {
        match b {
            None => true,
            Some((bi, bp)) => {
                p > bp
                    || (p == bp
                        && p != Priority::Boost
                        && self.vcpus[i].credit > self.vcpus[bi].credit)
            }
        }
    }

    /// Best eligible vCPU in `cpu`'s queue: `(position, priority)`, plus
    /// the position of the first eligible yielded one.
    fn best_local(&self, cpu: usize) -> (Option<(usize, Priority)>, Option<usize>) {
        let q = &self.cpus[cpu].queue;
        let mut best: Option<(usize, Priority)> = None;
        let mut yielded = None;
        for (pos, &i) in self.cpus[cpu].queue.iter().enumerate() {
            if !self.eligible(i) {
                continue;
            }
            if self.vcpus[i].yielded {
                yielded.get_or_insert(pos);
                continue;
            }
            let p = self.prio(i);
            if self.better(i, p, best.map(|(bpos, bp)| (q[bpos], bp))) {
                best = Some((pos, p));
            }
        }
        (best, yielded)
    }

    /// A vCPU another CPU's queue holds with priority at least `min` that
    /// `cpu` may take: `(cpu, position)`.
    fn find_steal(&self, cpu: usize, min: Priority) -> Option<(usize, usize)> {
        let n = self.cpus.len();
        let mut best: Option<(usize, usize, Priority)> = None;
        for c in (1..n).map(|k| (cpu + k) % n) {
            for (pos, &i) in self.cpus[c].queue.iter().enumerate() {
                let v = &self.vcpus[i];
                if v.pin.is_some() || v.yielded || !self.eligible(i) {
                    continue;
                }
                let p = self.prio(i);
                if p >= min
                    && self.better(
                        i,
                        p,
                        best.map(|(bc, bpos, bp)| (self.cpus[bc].queue[bpos], bp)),
                    )
                {
                    best = Some((c, pos, p));
                }
            }
        }
        best.map(|(c, pos, _)| (c, pos))
    }

    /// Chooses what `cpu` runs from `now` on; call it at every tick, yield,
    /// block, wake or kick on that CPU. The vCPU that ran there is charged
    /// for the time since its `pick` and requeued if still runnable.
    ///
    /// # Panics
    ///
    /// If `cpu` is out of range (a caller bug, never guest input).
    pub fn pick(&mut self, cpu: usize, now: u64) -> Decision {
        let mut kick = CpuMask::default();
        self.cpus[cpu].kicked = false;
        self.deschedule(cpu, now);
        self.account(now, &mut kick);
        let (local, yielded) = self.best_local(cpu);
        let chosen = match local {
            Some((pos, p)) if p >= Priority::Under => Some((cpu, pos)),
            _ => {
                let min = if local.is_some() {
                    Priority::Under
                } else {
                    Priority::Over
                };
                self.find_steal(cpu, min)
                    .or(local.map(|(pos, _)| (cpu, pos)))
                    .or(yielded.map(|pos| (cpu, pos)))
            }
        };
        for &i in &self.cpus[cpu].queue {
            self.vcpus[i].yielded = false;
        }
        let Some((from, pos)) = chosen else {
            let anything_queued = self.cpus.iter().any(|p| !p.queue.is_empty());
            let run_until = if anything_queued {
                self.next_acct
            } else {
                u64::MAX
            };
            return Decision {
                next: None,
                run_until,
                kick,
            };
        };
        let i = self.cpus[from].queue.remove(pos);
        let d = self.vcpus[i].dom;
        let mut len = self.p.slice_ns;
        if self.prio(i) >= Priority::Under {
            len = len.min(self.vcpus[i].credit as u64);
        }
        len = len.min(self.next_acct.saturating_sub(now));
        len = len.max(self.p.min_slice_ns);
        if self.doms[d].cap != 0 {
            let rem = self.remaining(d);
            let chunk = (rem / self.doms[d].nvcpus.max(1) as u64).max(rem.min(self.p.min_slice_ns));
            len = len.min(chunk).max(1);
            self.doms[d].committed += len;
        }
        let v = &mut self.vcpus[i];
        v.queued = false;
        v.running = true;
        v.cpu = cpu;
        v.start = now;
        v.reserved = if self.doms[d].cap != 0 { len } else { 0 };
        v.yielded = false;
        self.cpus[cpu].curr = Some(i);
        // Eligible work still waiting here can go to idle CPUs, and credit
        // waiting here can preempt a CPU running a vCPU that has none.
        let movable = |i: usize| self.eligible(i) && self.vcpus[i].pin.is_none();
        let q = &self.cpus[cpu].queue;
        let waiting = q.iter().filter(|&&i| movable(i)).count();
        let under = q
            .iter()
            .any(|&i| movable(i) && self.prio(i) >= Priority::Under);
        self.kick_idle(waiting, Some(cpu), &mut kick);
        if under && kick.is_empty() {
            let over = (0..self.cpus.len()).find(|&c| {
                c != cpu
                    && !self.cpus[c].kicked
                    && self.cpus[c]
                        .curr
                        .is_some_and(|x| self.prio(x) == Priority::Over)
            });
            if let Some(c) = over {
                self.cpus[c].kicked = true;
                kick.insert(c);
            }
        }
        Decision {
            next: Some(self.vcpus[i].id),
            run_until: now.saturating_add(len),
            kick,
        }
    }

    /// Checks the invariants of the module documentation; `Err` names the
    /// first one broken. For tests and debug builds.
    pub fn check(&self) -> Result<(), &'static str> {
        for (c, p) in self.cpus.iter().enumerate() {
            if let Some(i) = p.curr {
                let v = &self.vcpus[i];
                if !v.alive || !v.running || v.queued || v.cpu != c {
                    return Err("current vCPU not marked running on this CPU");
                }
            }
            for &i in &p.queue {
                let v = &self.vcpus[i];
                if !v.alive || !v.queued || v.running || v.blocked || v.cpu != c {
                    return Err("queued vCPU not queued here, running or blocked");
                }
                if v.pin.is_some_and(|pc| pc != c) {
                    return Err("pinned vCPU queued on another CPU");
                }
            }
        }
        for (i, v) in self.vcpus.iter().enumerate().filter(|(_, v)| v.alive) {
            let running = self.cpus.iter().filter(|p| p.curr == Some(i)).count();
            let queued: usize = self
                .cpus
                .iter()
                .map(|p| p.queue.iter().filter(|&&x| x == i).count())
                .sum();
            if running + queued > 1 || (running == 0 && queued == 0 && !v.blocked) {
                return Err("vCPU running/queued more or less than once");
            }
            if v.credit > CREDIT_MAX_PERIODS * self.p.period_ns as i64 {
                return Err("credit above one period");
            }
        }
        for (k, d) in self.doms.iter().enumerate().filter(|(_, d)| d.alive) {
            let reserved: u64 = self
                .vcpus
                .iter()
                .filter(|v| v.alive && v.dom == k && v.running)
                .map(|v| v.reserved)
                .sum();
            if reserved != d.committed {
                return Err("committed budget differs from reservations");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
