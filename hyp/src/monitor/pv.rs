//! Monitor glue for event channels, grant tables and the physmap (target
//! only; a child module of `monitor`): the state, stage-2 changes for
//! grant mappings and placed pages, the virtual IRQ line, and release on
//! domain destruction. The logic is in [`crate::pvops`], [`crate::evtchn`]
//! and [`crate::grant`].
//!
//! Hooks called by `monitor.rs`: [`hypercall`] (before the generic
//! dispatch), [`upcall_pending`] (the virtual IRQ line, on every return to
//! a guest), [`virq`] (VIRQ_TIMER when a vCPU's one-shot timer fires),
//! [`domain_ended`] (when an ended domain's memory is released).

use super::guest_mem::GuestView;
use super::{Domain, Monitor, RealPhys};
use crate::arch::stage2;
use crate::builder::Phys;
use crate::frames::Frames;
use crate::grant::GrantEnv;
use crate::hypercall::{Action, Guest};
use crate::mrs;
use crate::pagetable::{Attrs, TableMemory, PAGE_SIZE};
use crate::pvops::{MachinePage, Pv, PvEnv};
use crate::sched::VcpuId;
use alloc::vec::Vec;
use core::marker::PhantomData;
use core::ops::Deref;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use hypercall_abi::errno::Errno;
use hypercall_abi::event_channel::DomId;
use hypercall_abi::grant_table::*;
use hypercall_abi::memory::{GUEST_GRANT_MAP_BASE, GUEST_GRANT_MAP_SIZE};
use hypercall_abi::nr;
use hypercall_abi::shared_info::SharedInfo;

/// A monitor-owned frame viewed as a `T` (all atomics: shared with the
/// guest that maps it).
pub(super) struct Page<T> {
    pa: u64,
    _t: PhantomData<T>,
}

impl<T> Deref for Page<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `pa` is a zeroed frame from the frame allocator, owned by
        // this `Page` until it is freed (which consumes the `Page`),
        // identity-mapped at EL2; `T` is at most a page of atomics, for
        // which any bytes are valid and shared access is sound.
        unsafe { &*(self.pa as *const T) }
    }
}

impl<T> MachinePage for Page<T> {
    fn machine_addr(&self) -> u64 {
        self.pa
    }
}

fn new_page<T>(frames: &mut Frames) -> Option<Page<T>> {
    let pa = frames.alloc(1)?;
    RealPhys.zero(pa, PAGE_SIZE);
    Some(Page {
        pa,
        _t: PhantomData,
    })
}

fn free_page<T>(frames: &mut Frames, p: Page<T>) {
    RealPhys.zero(p.pa, PAGE_SIZE);
    frames.free(p.pa, 1);
}

struct State {
    pv: Pv<Page<SharedInfo>, Page<GrantFrameV1>>,
    /// RAM chunks of destroyed domains still holding granted frames that
    /// another domain has mapped: freed when the last mapping goes.
    deferred: Vec<(u64, u64)>,
}

static STATE: spin::Mutex<Option<State>> = spin::Mutex::new(None);

/// Domains were created since the event-channel state last registered
/// every domain (set under the monitor lock; the fast path only reads it).
pub(super) static NEW_DOMAINS: AtomicBool = AtomicBool::new(true);

/// vCPUs sleeping in `SCHEDOP_poll`. Incremented only under `STATE`'s lock
/// ([`poll_started`]), read under it by [`send_fast`]: a send either finds
/// the poller counted (and wakes it) or happened before the poller looked
/// at its ports.
pub(super) static POLLERS: AtomicU32 = AtomicU32::new(0);

/// Shared-info page of each domain id (0: none), for the virtual IRQ line
/// on the exception-return path without taking this module's lock.
static SHARED_PA: [AtomicU64; super::MAX_DOMID as usize + 1] =
    [const { AtomicU64::new(0) }; super::MAX_DOMID as usize + 1];

/// Whether vCPU `v`'s `evtchn_upcall_pending` is set: its virtual IRQ line
/// (the monitor re-evaluates it on every return to the guest).
#[inline(always)]
pub(super) fn upcall_pending(v: VcpuId) -> bool {
    let pa = SHARED_PA
        .get(v.dom as usize)
        .map_or(0, |a| a.load(Ordering::Relaxed));
    if pa == 0 {
        return false;
    }
    // SAFETY: a non-zero entry is the live shared-info frame of this
    // domain (cleared before the frame is freed), identity-mapped.
    let s = unsafe { &*(pa as *const SharedInfo) };
    s.vcpu_info
        .get(v.vcpu as usize)
        .is_some_and(|i| i.upcall_pending())
}

/// Whether any of `ports` is pending for domain `dom`.
pub(super) fn any_pending(dom: u16, ports: impl Iterator<Item = u32>) -> bool {
    let pa = SHARED_PA
        .get(dom as usize)
        .map_or(0, |a| a.load(Ordering::Relaxed));
    if pa == 0 {
        return false;
    }
    // SAFETY: as in `upcall_pending`.
    let s = unsafe { &*(pa as *const SharedInfo) };
    ports.into_iter().any(|p| s.is_pending(p))
}

/// Raises `virq` for domain `dom` if the domain bound it: `Some` of the
/// vCPU whose line went up, if any; `None` if `virq` is not bound (not the
/// same as the domain having event state: every live domain is registered
/// as soon as any domain makes its first event-channel call).
pub(super) fn virq_if_bound(dom: u16, virq: u32) -> Option<Option<VcpuId>> {
    let mut guard = STATE.lock();
    let r = guard.as_mut()?.pv.ev.raise_virq_if_bound(dom, virq)?;
    Some(r.map(|u| VcpuId::new(u.dom, u.vcpu as u16)))
}

/// Registers every live domain (shared-info page, empty grant table).
fn register_all(st: &mut State, m: &mut Monitor) {
    for d in m
        .domains
        .iter()
        .filter(|d| d.ended.is_none() && d.mem.is_some())
    {
        if st.pv.ev.domain(d.id).is_some() {
            continue;
        }
        let Some(page) = new_page::<SharedInfo>(&mut m.frames) else {
            continue;
        };
        let pa = page.pa;
        let vcpus = (d.vcpus.len() as u32).max(1);
        if st.pv.ev.add_domain(d.id, vcpus, page).is_ok() {
            st.pv.gt.add_domain(d.id);
            if let Some(a) = SHARED_PA.get(d.id as usize) {
                a.store(pa, Ordering::Relaxed);
            }
        }
    }
}

/// Handles `event_channel_op`, `grant_table_op` and `memory_op` from vCPU
/// `cur` of domain index `i`; `None` for any other hypercall.
pub(super) fn hypercall(
    m: &mut Monitor,
    i: usize,
    cur: VcpuId,
    nr: u64,
    a: [u64; 5],
) -> Option<Action> {
    if !matches!(
        nr,
        nr::EVENT_CHANNEL_OP | nr::GRANT_TABLE_OP | nr::MEMORY_OP
    ) {
        return None;
    }
    let mut guard = STATE.lock();
    let st = guard.get_or_insert_with(|| State {
        pv: Pv::new(),
        deferred: Vec::new(),
    });
    let id = cur.dom;
    if st.pv.ev.domain(id).is_none() || NEW_DOMAINS.load(Ordering::Relaxed) {
        register_all(st, m);
        NEW_DOMAINS.store(false, Ordering::Relaxed);
    }
    let Some(mem) = m.domains[i].mem.as_ref() else {
        return Some(Action::Return(Errno::EFAULT.to_raw()));
    };
    // The argument's page, translated once without a table walk (the
    // common case: a small struct that does not cross a page).
    let mmu_off = mrs!("sctlr_el1") & 1 == 0 || mrs!("hcr_el2") & (1 << 12) != 0;
    let arg_page = a[1] & !(PAGE_SIZE - 1);
    let fast = if mmu_off {
        mem.ram_pa(arg_page).map(|pa| (arg_page, pa))
    } else {
        None
    };
    let mut g = P2mGuest(GuestView {
        p2m: mem.p2m,
        ram: mem.ram,
        ram_only: true,
        fast,
    });
    let mut env = Env {
        domains: &mut m.domains,
        frames: &mut m.frames,
    };
    let mut upcall = None;
    let r = match nr {
        nr::EVENT_CHANNEL_OP => {
            let (r, up) = st.pv.event_channel_op(&mut g, id, a[0], a[1]);
            upcall = up;
            r
        }
        nr::GRANT_TABLE_OP => {
            let mut released = Vec::new();
            let r = st
                .pv
                .grant_table_op(&mut g, &mut env, id, a[0], a[1], a[2], &mut released);
            if !released.is_empty() {
                free_deferred(st, &mut m.frames);
            }
            r
        }
        _ => st.pv.memory_op(&mut g, &mut env, id, a[0], a[1]),
    };
    drop(guard);
    if upcall.is_none() && nr == nr::EVENT_CHANNEL_OP && POLLERS.load(Ordering::Relaxed) > 0 {
        // An event on a masked port raises no upcall but ends a poll.
        m.wake_pollers();
    }
    if let Some(u) = upcall {
        // The target vCPU's line went up: wake it, or make the CPU that
        // runs it look.
        m.notify(VcpuId::new(u.dom, u.vcpu as u16));
    }
    Some(Action::Return(hypercall_abi::result_to_raw(r)))
}

/// `EVTCHNOP_send` on `port` from domain `dom` without the monitor lock
/// (the trap fast path), once the caller has read the port from its
/// argument. Returns the value for x0, the vCPU whose line went up (to be
/// notified under the monitor lock), and whether pollers must be woken;
/// `None` if the caller has no event-channel state yet or domains wait to
/// be registered (the locked path does that first).
///
/// Safe without the monitor lock: the port tables are read under
/// `STATE`'s lock, as every change to them is made; the pending bits are
/// atomic; a domain's shared-info page is freed only under `STATE`'s lock
/// after its removal from the tables. Waking the target needs the monitor
/// lock: the caller takes it after this returns (a vCPU about to block
/// checks `evtchn_upcall_pending` under the monitor lock, and the bit is
/// set before that lock is taken here, so the wake-up cannot be lost).
#[inline(always)]
pub(super) fn send_fast(dom: u16, port: u32) -> Option<(u64, Option<VcpuId>, bool)> {
    if NEW_DOMAINS.load(Ordering::Relaxed) {
        return None;
    }
    let mut guard = STATE.lock();
    let st = guard.as_mut()?;
    let r = st.pv.ev.send(dom, port);
    let pollers = POLLERS.load(Ordering::Relaxed) > 0;
    drop(guard);
    let (r, up) = match r {
        Ok(up) => (Ok(0), up.map(|u| VcpuId::new(u.dom, u.vcpu as u16))),
        // The caller is not registered yet: the locked path does that.
        Err(Errno::ESRCH) => return None,
        Err(e) => (Err(e), None),
    };
    let x0 = hypercall_abi::result_to_raw(r) as u64;
    Some((x0, up, up.is_none() && pollers))
}

/// A vCPU of `dom` starts `SCHEDOP_poll` on `ports` unless one of them is
/// pending: returns whether it does (and counts it in [`POLLERS`]).
pub(super) fn poll_started(dom: u16, ports: impl Iterator<Item = u32>) -> bool {
    let _guard = STATE.lock();
    if any_pending(dom, ports) {
        return false;
    }
    POLLERS.fetch_add(1, Ordering::Relaxed);
    true
}

/// A vCPU counted by [`poll_started`] polls no more.
pub(super) fn poll_ended() {
    POLLERS.fetch_sub(1, Ordering::Relaxed);
}

/// Raises `virq` for domain `dom` (if it bound it); the vCPU whose line
/// went up, if any.
pub(super) fn virq(dom: u16, virq: u32) -> Option<VcpuId> {
    let mut guard = STATE.lock();
    let st = guard.as_mut()?;
    st.pv
        .ev
        .raise_virq(dom, virq)
        .map(|u| VcpuId::new(u.dom, u.vcpu as u16))
}

/// Raises `virq` for every domain that bound it; the vCPUs whose line
/// went up.
pub(super) fn virq_all(virq: u32) -> Vec<VcpuId> {
    let mut guard = STATE.lock();
    let Some(st) = guard.as_mut() else {
        return Vec::new();
    };
    let doms: Vec<DomId> = st.pv.ev.domains().map(|(d, _)| d).collect();
    doms.into_iter()
        .filter_map(|d| st.pv.ev.raise_virq(d, virq))
        .map(|u| VcpuId::new(u.dom, u.vcpu as u16))
        .collect()
}

/// Frees the deferred chunks none of whose frames is still mapped.
fn free_deferred(st: &mut State, frames: &mut Frames) {
    let gt = &st.pv.gt;
    st.deferred.retain(|&(pa, n)| {
        let end = pa + n * PAGE_SIZE;
        if gt.pins().range(pa..end).next().is_some() {
            return true;
        }
        RealPhys.zero(pa, n * PAGE_SIZE);
        frames.free(pa, n);
        crate::println!(
            "hyp: {n} frames of a destroyed domain freed after their last grant mapping went"
        );
        false
    });
}

/// Releases domain `i`'s ports, grants, placed pages and mappings; keeps
/// back (from `builder::release`) any RAM chunk with a frame another
/// domain still has mapped. Called before its memory is released.
pub(super) fn domain_ended(m: &mut Monitor, i: usize) {
    let mut guard = STATE.lock();
    let Some(st) = guard.as_mut() else {
        return;
    };
    let id = m.domains[i].id;
    if let Some(a) = SHARED_PA.get(id as usize) {
        a.store(0, Ordering::Relaxed);
    }
    if let Some(page) = st.pv.ev.remove_domain(id) {
        free_page(&mut m.frames, page);
    }
    st.pv.forget_placements(id);
    if let Some(r) = st.pv.gt.remove_domain(id) {
        for f in r.frames {
            free_page(&mut m.frames, f);
        }
    }
    let gt = &st.pv.gt;
    let mut kept = 0;
    if let Some(mem) = m.domains[i].mem.as_mut() {
        let deferred = &mut st.deferred;
        mem.chunks.retain(|&(pa, n)| {
            let pinned = gt.pins().range(pa..pa + n * PAGE_SIZE).next().is_some();
            if pinned {
                deferred.push((pa, n));
                kept += n;
            }
            !pinned
        });
    }
    free_deferred(st, &mut m.frames);
    if kept > 0 {
        crate::println!(
            "hyp: dom{}: {} frames kept until other domains unmap its grants",
            id,
            kept
        );
    }
}

/// The calling domain's memory for these handlers: its own RAM only.
struct P2mGuest(GuestView);

impl Guest for P2mGuest {
    fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.0.read(gva, buf)
    }
    fn write(&mut self, gva: u64, data: &[u8]) -> Result<(), Errno> {
        self.0.write(gva, data)
    }
    fn console(&mut self, _bytes: &[u8]) {}
    fn handle(&self) -> [u8; 16] {
        [0; 16]
    }
}

/// Stage-2 tables for the windows, from the frame allocator, recorded in
/// the domain's table list (freed with its memory).
struct S2Mem<'a> {
    frames: &'a mut Frames,
    tables: &'a mut Vec<u64>,
}

impl TableMemory for S2Mem<'_> {
    fn alloc_table(&mut self) -> Option<u64> {
        let pa = self.frames.alloc(1)?;
        RealPhys.zero(pa, PAGE_SIZE);
        self.tables.push(pa);
        Some(pa)
    }
    fn read(&self, table: u64, idx: usize) -> u64 {
        RealPhys.read(table, idx)
    }
    fn write(&mut self, table: u64, idx: usize, val: u64) {
        RealPhys.write(table, idx, val)
    }
}

/// Stage-2 and frame access for the handlers.
struct Env<'a> {
    domains: &'a mut Vec<Domain>,
    frames: &'a mut Frames,
}

impl Env<'_> {
    fn live(&mut self, dom: DomId) -> Option<&mut Domain> {
        self.domains
            .iter_mut()
            .find(|d| d.id == dom && d.ended.is_none() && d.mem.is_some())
    }

    fn map_at(&mut self, dom: DomId, ipa: u64, pa: u64, a: Attrs) -> Result<(), Errno> {
        let frames = &mut *self.frames;
        let d = self
            .domains
            .iter_mut()
            .find(|d| d.id == dom && d.ended.is_none())
            .ok_or(Errno::ESRCH)?;
        let mem = d.mem.as_mut().ok_or(Errno::ESRCH)?;
        if mem.p2m.any_mapped(&RealPhys, ipa, PAGE_SIZE) {
            return Err(Errno::EBUSY);
        }
        let mut tm = S2Mem {
            frames,
            tables: &mut mem.tables,
        };
        mem.p2m
            .map(&mut tm, ipa, pa, PAGE_SIZE, a)
            .map_err(|_| Errno::ENOMEM)
    }

    fn unmap_at(&mut self, dom: DomId, ipa: u64) {
        let Some(d) = self.live(dom) else { return };
        let id = d.id;
        let Some(mem) = d.mem.as_mut() else { return };
        if mem.p2m.unmap(&mut RealPhys, ipa, PAGE_SIZE).is_ok() {
            stage2::flush_ipa(mem.p2m.root, id, ipa);
        }
    }
}

impl GrantEnv for Env<'_> {
    fn own_frame(&self, dom: DomId, gfn: u64) -> Option<u64> {
        let d = self
            .domains
            .iter()
            .find(|d| d.id == dom && d.ended.is_none())?;
        let mem = d.mem.as_ref()?;
        let ipa = gfn.checked_mul(PAGE_SIZE)?;
        if ipa < mem.ram.0 || ipa - mem.ram.0 >= mem.ram.1 {
            return None;
        }
        mem.p2m
            .translate(&RealPhys, ipa)
            .map(|t| t.0 & !(PAGE_SIZE - 1))
    }
    fn map(&mut self, dom: DomId, ipa: u64, mfn: u64, writable: bool) -> Result<(), i16> {
        if ipa < GUEST_GRANT_MAP_BASE || ipa - GUEST_GRANT_MAP_BASE >= GUEST_GRANT_MAP_SIZE {
            return Err(GNTST_BAD_VIRT_ADDR);
        }
        let a = if writable { Attrs::RW } else { Attrs::RO };
        self.map_at(dom, ipa, mfn, a).map_err(|e| match e {
            Errno::EBUSY => GNTST_BAD_VIRT_ADDR,
            Errno::ENOMEM => GNTST_NO_SPACE,
            _ => GNTST_GENERAL_ERROR,
        })
    }
    fn unmap(&mut self, dom: DomId, ipa: u64) {
        self.unmap_at(dom, ipa)
    }
    fn copy(&mut self, src: u64, so: u16, dst: u64, d_o: u16, len: u16) {
        // SAFETY: both are whole frames the handler checked (the caller's
        // own RAM or a frame granted to it, offsets+len within the page),
        // identity-mapped; `copy` handles an overlap of the same frame.
        unsafe {
            core::ptr::copy(
                (src + so as u64) as *const u8,
                (dst + d_o as u64) as *mut u8,
                len as usize,
            )
        }
    }
}

impl PvEnv for Env<'_> {
    type Frame = Page<GrantFrameV1>;
    fn map_page(&mut self, dom: DomId, ipa: u64, pa: u64) -> Result<(), Errno> {
        self.map_at(dom, ipa, pa, Attrs::RW)
    }
    fn unmap_page(&mut self, dom: DomId, ipa: u64) {
        self.unmap_at(dom, ipa)
    }
    fn page_free(&self, dom: DomId, ipa: u64) -> bool {
        self.domains
            .iter()
            .find(|d| d.id == dom && d.ended.is_none())
            .and_then(|d| d.mem.as_ref())
            .is_some_and(|m| !m.p2m.any_mapped(&RealPhys, ipa, PAGE_SIZE))
    }
    fn alloc_grant_frame(&mut self) -> Option<Self::Frame> {
        new_page(self.frames)
    }
    fn free_grant_frame(&mut self, f: Self::Frame) {
        free_page(self.frames, f)
    }
}
