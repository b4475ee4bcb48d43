//! The trap fast path (target only; a child module of `monitor`): the
//! hypercalls [`crate::fastpath::classify`] picks are answered without the
//! monitor lock, from the caller's registers, its memory and (for
//! `EVTCHNOP_send`) the event-channel state under its own lock; the virtual
//! IRQ line is then brought up to date as the locked path would
//! ([`crate::fastpath::line`]).
//!
//! Why no monitor lock is needed: the fast path touches only
//! - the trapping vCPU's register frame, which belongs to the CPU it is
//!   loaded on (vectors.S writes it without the lock as well; no other CPU
//!   reads or writes the frame of a loaded vCPU);
//! - this CPU's [`FastCpu`], which only this CPU reads or writes;
//! - HCR_EL2 and PAR_EL1 of this CPU;
//! - the caller's RAM, found through its stage 1 (AT, as the guest's own
//!   loads) and its RAM chunks, which do not change while one of the
//!   domain's vCPUs is loaded (they are released only once none is);
//! - the shared-info pages through atomics, and the port tables under
//!   their own lock (see `pv::send_fast`).
//!
//! It never changes what only the locked path decides (scheduling, timers,
//! other vCPUs): whatever another CPU asks of this one arrives as a kick
//! (SGI 1), an interrupt taken as soon as the guest resumes, through the
//! locked path.

use super::pv;
use crate::arch::{self, el1};
use crate::builder::{self, DomainMemory};
use crate::fastpath::{self, FastCall, Line};
use crate::mrs;
use crate::sched::VcpuId;
use crate::vcpu::VcpuRegs;
use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed,
};

/// No vCPU loaded.
const NONE: u32 = u32::MAX;

/// What one CPU's fast path needs, kept out of the monitor lock. Only its
/// own CPU reads or writes an entry (the locked path when it switches vCPU
/// or evaluates the IRQ line, the fast path on a hypercall), with IRQs
/// masked at EL2; the fields are atomics only so that the array can be a
/// plain static (relaxed loads and stores are ordinary ones).
pub(super) struct FastCpu {
    /// The loaded vCPU, `dom << 16 | vcpu`, or [`NONE`].
    loaded: AtomicU32,
    /// HCR_EL2 as last written.
    pub hcr: AtomicU64,
    /// The loaded vCPU runs with its stage-1 MMU off (HCR_EL2.DC).
    pub dc: AtomicBool,
    /// The loaded vCPU's `timer_pending` when the locked path last looked.
    pub timer_seen: AtomicBool,
    /// Its domain's RAM: guest-physical base and size, and the RAM chunks
    /// (`DomainMemory::chunks`: a buffer that stays put and unchanged while
    /// one of the domain's vCPUs is loaded).
    ram_base: AtomicU64,
    ram_size: AtomicU64,
    chunks: AtomicPtr<(u64, u64)>,
    nchunks: AtomicUsize,
}

impl FastCpu {
    const fn new() -> Self {
        Self {
            loaded: AtomicU32::new(NONE),
            hcr: AtomicU64::new(0),
            dc: AtomicBool::new(true),
            timer_seen: AtomicBool::new(false),
            ram_base: AtomicU64::new(0),
            ram_size: AtomicU64::new(0),
            chunks: AtomicPtr::new(core::ptr::null_mut()),
            nchunks: AtomicUsize::new(0),
        }
    }

    /// Records the vCPU now loaded on this CPU, and its domain's RAM
    /// (`None`: none).
    pub fn load(&self, v: Option<(VcpuId, &DomainMemory)>) {
        match v {
            Some((id, mem)) => {
                self.ram_base.store(mem.ram.0, Relaxed);
                self.ram_size.store(mem.ram.1, Relaxed);
                self.chunks.store(mem.chunks.as_ptr().cast_mut(), Relaxed);
                self.nchunks.store(mem.chunks.len(), Relaxed);
                self.loaded
                    .store((id.dom as u32) << 16 | id.vcpu as u32, Relaxed);
            }
            None => self.loaded.store(NONE, Relaxed),
        }
    }
}

/// Each CPU's entry, by CPU index.
pub(super) static FAST: [FastCpu; arch::MAX_CPUS] = [const { FastCpu::new() }; arch::MAX_CPUS];

/// What is left to do after the fast path.
pub(super) enum After {
    /// Nothing: resume the guest.
    Done,
    /// Not a fast-path case: the ordinary, locked path handles the trap.
    Unhandled,
    /// The hypercall is done (x0 written); under the monitor lock, wake
    /// `notify` and the pollers (if asked), then resume the guest as the
    /// locked path does.
    Resume {
        notify: Option<VcpuId>,
        wake_pollers: bool,
    },
}

/// Tries the fast path for a synchronous exception from the guest whose
/// register frame is `regs`.
#[inline(always)]
pub(super) fn guest_sync(regs: *mut VcpuRegs) -> After {
    // SAFETY: `regs` is the register frame of the vCPU loaded on this CPU
    // (TPIDR_EL2, passed by vectors.S); only this CPU accesses it while the
    // vCPU is loaded, and the reference ends before the locked path forms
    // its own.
    let r = unsafe { &mut *regs };
    let Some(call) = fastpath::classify(mrs!("esr_el2"), r.x[16], r.x[0], r.x[1]) else {
        return After::Unhandled;
    };
    let Some(f) = FAST.get(r.cpu as usize) else {
        return After::Unhandled;
    };
    let id = f.loaded.load(Relaxed);
    if id == NONE {
        return After::Unhandled;
    }
    let cur = VcpuId::new((id >> 16) as u16, id as u16);
    match call {
        FastCall::Value(v) => r.x[0] = v,
        FastCall::EvtchnSend { arg } => {
            let Some(port) = read_u32(f, arg) else {
                return After::Unhandled;
            };
            let Some((x0, notify, wake_pollers)) = pv::send_fast(cur.dom, port) else {
                return After::Unhandled;
            };
            r.x[0] = x0;
            if notify.is_some() || wake_pollers {
                return After::Resume {
                    notify,
                    wake_pollers,
                };
            }
        }
    }
    let hcr = f.hcr.load(Relaxed);
    let up = hcr & el1::HCR_VI != 0;
    let new = match fastpath::line(up, pv::upcall_pending(cur), f.timer_seen.load(Relaxed)) {
        Line::Keep => return After::Done,
        Line::Raise => hcr | el1::HCR_VI,
        Line::Drop => hcr & !el1::HCR_VI,
    };
    crate::msr!("hcr_el2", new);
    arch::isb();
    f.hcr.store(new, Relaxed);
    After::Done
}

/// The `u32` at guest virtual address `gva` of the loaded vCPU, if it is
/// aligned and in its domain's RAM (hypercall arguments must be, as in the
/// locked path); `None` sends the call down the locked path, which gives
/// the exact error.
#[inline(always)]
fn read_u32(f: &FastCpu, gva: u64) -> Option<u32> {
    if gva % 4 != 0 {
        return None;
    }
    let mmu_on = mrs!("sctlr_el1") & 1 != 0 && f.hcr.load(Relaxed) & el1::HCR_DC == 0;
    let ipa = if mmu_on {
        el1::gva_to_ipa(gva, false)?
    } else {
        gva
    };
    let (p, n) = (f.chunks.load(Relaxed), f.nchunks.load(Relaxed));
    if p.is_null() {
        return None;
    }
    // SAFETY: `p`/`n` are the loaded domain's `DomainMemory::chunks`,
    // recorded when its vCPU was loaded here; the buffer is changed or
    // freed only once none of the domain's vCPUs is loaded (see `load`).
    let chunks = unsafe { core::slice::from_raw_parts(p, n) };
    let ram = (f.ram_base.load(Relaxed), f.ram_size.load(Relaxed));
    let pa = builder::ram_pa(ram, chunks, ipa)?;
    // SAFETY: `pa` is RAM of the caller's domain (its chunks), which its
    // stage 2 maps readable at `ipa`; identity-mapped at EL2; 4-byte
    // aligned, so within one page.
    Some(unsafe { (pa as *const u32).read_volatile() })
}
