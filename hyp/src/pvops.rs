//! The hypercalls of the paravirtual I/O plumbing: `event_channel_op`,
//! `grant_table_op` and `memory_op(XENMEM_add_to_physmap)`, as plain
//! functions over checked arguments. Guest memory is reached through
//! [`Guest`]; stage-2 changes through [`PvEnv`]; the state is
//! [`EventChannels`] and [`Grants`].
//!
//! Argument structs are decoded field by field from the guest's bytes
//! (little-endian, at Xen's offsets) and only the output fields are
//! written back. A grant batch is read whole before any op runs, so an
//! unreadable array (`EFAULT`) changes nothing.

use crate::evtchn::{EventChannels, Upcall};
use crate::grant::{FrameSource, GrantEnv, Grants};
use crate::hypercall::Guest;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Deref;
use hypercall_abi::errno::Errno;
use hypercall_abi::event_channel::*;
use hypercall_abi::grant_table::*;
use hypercall_abi::memory::{self as mem, XENMAPSPACE_GRANT_TABLE, XENMAPSPACE_SHARED_INFO};
use hypercall_abi::shared_info::SharedInfo;

/// A monitor page: where it is in machine memory.
pub trait MachinePage {
    /// Machine address of the page.
    fn machine_addr(&self) -> u64;
}

/// What the physmap and grant hypercalls need from the monitor.
pub trait PvEnv: GrantEnv {
    /// Maps the monitor page at machine address `pa` at guest-physical
    /// `ipa` of `dom` (read-write, not executable); `EBUSY` if something
    /// is mapped there.
    fn map_page(&mut self, dom: DomId, ipa: u64, pa: u64) -> Result<(), Errno>;
    /// Removes the mapping at `ipa` of `dom`, with TLB maintenance.
    fn unmap_page(&mut self, dom: DomId, ipa: u64);
    /// Whether nothing is mapped at `ipa` of `dom`.
    fn page_free(&self, dom: DomId, ipa: u64) -> bool;
    /// A new zeroed grant-table frame.
    fn alloc_grant_frame(&mut self) -> Option<Self::Frame>;
    /// Frees a grant-table frame (never mapped anywhere any more).
    fn free_grant_frame(&mut self, f: Self::Frame);
    /// The grant-frame type.
    type Frame: Deref<Target = GrantFrameV1> + MachinePage;
}

/// Where a domain placed a monitor page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Placed {
    /// The shared-info page.
    SharedInfo,
    /// Grant-table frame `i`.
    GrantFrame(u32),
}

/// All the plumbing state.
pub struct Pv<S, F> {
    /// Event channels.
    pub ev: EventChannels<S>,
    /// Grant tables.
    pub gt: Grants<F>,
    /// Placed pages: guest frame of each, per domain.
    pub placed: BTreeMap<(DomId, Placed), u64>,
}

impl<S, F> Default for Pv<S, F> {
    fn default() -> Self {
        Self {
            ev: EventChannels::default(),
            gt: Grants::default(),
            placed: BTreeMap::new(),
        }
    }
}

fn u16at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

impl<S, F> Pv<S, F>
where
    S: Deref<Target = SharedInfo> + MachinePage,
    F: Deref<Target = GrantFrameV1> + MachinePage,
{
    /// Nothing registered.
    pub fn new() -> Self {
        Self::default()
    }

    /// `event_channel_op(cmd, arg)` from `caller`; returns the result and
    /// the upcall to raise, if any.
    pub fn event_channel_op(
        &mut self,
        g: &mut impl Guest,
        caller: DomId,
        cmd: u64,
        arg: u64,
    ) -> (Result<u64, Errno>, Option<Upcall>) {
        let mut up = None;
        let r = self.evtchn(g, caller, cmd, arg, &mut up);
        (r, up)
    }

    fn evtchn(
        &mut self,
        g: &mut impl Guest,
        caller: DomId,
        cmd: u64,
        arg: u64,
        up: &mut Option<Upcall>,
    ) -> Result<u64, Errno> {
        let mut b = [0u8; 24];
        let size = match cmd {
            EVTCHNOP_SEND | EVTCHNOP_CLOSE | EVTCHNOP_UNMASK => 4,
            EVTCHNOP_ALLOC_UNBOUND | EVTCHNOP_BIND_IPI | EVTCHNOP_BIND_VCPU => 8,
            EVTCHNOP_BIND_INTERDOMAIN | EVTCHNOP_BIND_VIRQ => 12,
            EVTCHNOP_STATUS => 24,
            _ => return Err(Errno::ENOSYS),
        };
        g.read(arg, &mut b[..size])?;
        // Output fields are checked writable (by writing back what is
        // there) before the operation, so an `EFAULT` changes nothing.
        match cmd {
            EVTCHNOP_SEND => {
                *up = self.ev.send(caller, u32at(&b, 0))?;
                Ok(0)
            }
            EVTCHNOP_CLOSE => self.ev.close(caller, u32at(&b, 0)).map(|_| 0),
            EVTCHNOP_UNMASK => {
                *up = self.ev.unmask(caller, u32at(&b, 0))?;
                Ok(0)
            }
            EVTCHNOP_ALLOC_UNBOUND => {
                g.write(arg + 4, &b[4..8])?;
                let p = self.ev.alloc_unbound(caller, u16at(&b, 0), u16at(&b, 2))?;
                self.out(g, arg + 4, p, caller)
            }
            EVTCHNOP_BIND_INTERDOMAIN => {
                g.write(arg + 8, &b[8..12])?;
                let (p, u) = self
                    .ev
                    .bind_interdomain(caller, u16at(&b, 0), u32at(&b, 4))?;
                *up = u;
                self.out(g, arg + 8, p, caller)
            }
            EVTCHNOP_BIND_VIRQ => {
                g.write(arg + 8, &b[8..12])?;
                let p = self.ev.bind_virq(caller, u32at(&b, 0), u32at(&b, 4))?;
                self.out(g, arg + 8, p, caller)
            }
            EVTCHNOP_BIND_IPI => {
                g.write(arg + 4, &b[4..8])?;
                let p = self.ev.bind_ipi(caller, u32at(&b, 0))?;
                self.out(g, arg + 4, p, caller)
            }
            EVTCHNOP_BIND_VCPU => self
                .ev
                .bind_vcpu(caller, u32at(&b, 0), u32at(&b, 4))
                .map(|_| 0),
            _ => {
                let s = self.ev.status(caller, u16at(&b, 0), u32at(&b, 4))?;
                let mut o = [0u8; 16];
                o[0..4].copy_from_slice(&s.status.to_le_bytes());
                o[4..8].copy_from_slice(&s.vcpu.to_le_bytes());
                o[8..16].copy_from_slice(&s.u);
                g.write(arg + 8, &o).map(|_| 0)
            }
        }
    }

    /// Writes a new port back; if that fails (the guest unmapped the page
    /// meanwhile: cannot happen on one vCPU, but be exact), closes it again.
    fn out(&mut self, g: &mut impl Guest, at: u64, p: Port, caller: DomId) -> Result<u64, Errno> {
        match g.write(at, &p.to_le_bytes()) {
            Ok(()) => Ok(0),
            Err(e) => {
                let _ = self.ev.close(caller, p);
                Err(e)
            }
        }
    }

    /// `grant_table_op(cmd, uop, count)` from `caller`. Returns the
    /// machine frames whose last pin went (their owner may be waiting to
    /// free them).
    pub fn grant_table_op<E: PvEnv<Frame = F>>(
        &mut self,
        g: &mut impl Guest,
        env: &mut E,
        caller: DomId,
        cmd: u64,
        uop: u64,
        count: u64,
        released: &mut Vec<u64>,
    ) -> Result<u64, Errno> {
        let size: usize = match cmd {
            GNTTABOP_MAP_GRANT_REF => 32,
            GNTTABOP_UNMAP_GRANT_REF => 24,
            GNTTABOP_SETUP_TABLE => 24,
            GNTTABOP_COPY => 40,
            GNTTABOP_QUERY_SIZE => 16,
            _ => return Err(Errno::ENOSYS),
        };
        if count > MAX_BATCH {
            return Err(Errno::EINVAL);
        }
        let n = count as usize;
        let mut buf = [0u8; 40 * MAX_BATCH as usize];
        let all = &mut buf[..n * size];
        g.read(uop, all)?;
        // The status fields must be writable too (checked by writing the
        // unchanged bytes back).
        g.write(uop, all)?;
        for i in 0..n {
            let b = &all[i * size..(i + 1) * size];
            let at = uop + (i * size) as u64;
            match cmd {
                GNTTABOP_MAP_GRANT_REF => {
                    let op = GnttabMapGrantRef {
                        host_addr: u64at(b, 0),
                        flags: u32at(b, 8),
                        r#ref: u32at(b, 12),
                        dom: u16at(b, 16),
                        ..Default::default()
                    };
                    let (st, h) = match self.gt.map(env, caller, &op) {
                        Ok(h) => (GNTST_OKAY, h),
                        Err(s) => (s, u32::MAX),
                    };
                    let mut o = [0u8; 14];
                    o[0..2].copy_from_slice(&st.to_le_bytes());
                    o[2..6].copy_from_slice(&h.to_le_bytes());
                    g.write(at + 18, &o)?;
                }
                GNTTABOP_UNMAP_GRANT_REF => {
                    let op = GnttabUnmapGrantRef {
                        host_addr: u64at(b, 0),
                        handle: u32at(b, 16),
                        ..Default::default()
                    };
                    let st = match self.gt.unmap(env, caller, &op) {
                        Ok(r) => {
                            released.extend(r);
                            GNTST_OKAY
                        }
                        Err(s) => s,
                    };
                    g.write(at + 20, &st.to_le_bytes())?;
                }
                GNTTABOP_SETUP_TABLE => {
                    let (dom, nr, list) = (u16at(b, 0), u32at(b, 4), u64at(b, 16));
                    let st = self.setup_table(g, env, caller, dom, nr, list)?;
                    g.write(at + 8, &st.to_le_bytes())?;
                }
                GNTTABOP_QUERY_SIZE => {
                    let mut o = [0u8; 10];
                    match self.gt.nr_frames(caller, u16at(b, 0)) {
                        Ok(nr) => {
                            o[0..4].copy_from_slice(&nr.to_le_bytes());
                            o[4..8].copy_from_slice(&MAX_GRANT_FRAMES.to_le_bytes());
                        }
                        Err(s) => o[8..10].copy_from_slice(&s.to_le_bytes()),
                    }
                    g.write(at + 4, &o)?;
                }
                _ => {
                    let side = |o: usize| GnttabCopyPtr {
                        u: u64at(b, o),
                        domid: u16at(b, o + 8),
                        offset: u16at(b, o + 10),
                    };
                    let op = GnttabCopy {
                        source: side(0),
                        dest: side(16),
                        len: u16at(b, 32),
                        flags: u16at(b, 34),
                        status: 0,
                    };
                    let st = match self.gt.copy(env, caller, &op) {
                        Ok(()) => GNTST_OKAY,
                        Err(s) => s,
                    };
                    g.write(at + 36, &st.to_le_bytes())?;
                }
            }
        }
        Ok(0)
    }

    fn setup_table<E: PvEnv<Frame = F>>(
        &mut self,
        g: &mut impl Guest,
        env: &mut E,
        caller: DomId,
        dom: DomId,
        nr: u32,
        list: u64,
    ) -> Result<i16, Errno> {
        if nr > MAX_GRANT_FRAMES {
            return Ok(GNTST_GENERAL_ERROR);
        }
        // The frame list must be writable before the table grows.
        let mut gfns = [0u8; 8 * MAX_GRANT_FRAMES as usize];
        let list_bytes = &mut gfns[..nr as usize * 8];
        g.read(list, list_bytes)?;
        g.write(list, list_bytes)?;
        if let Err(s) = self.gt.grow(caller, dom, nr, &mut Source(env)) {
            return Ok(s);
        }
        for i in 0..nr {
            let gfn = self
                .placed
                .get(&(caller, Placed::GrantFrame(i)))
                .copied()
                .unwrap_or(INVALID_GFN);
            list_bytes[i as usize * 8..][..8].copy_from_slice(&gfn.to_le_bytes());
        }
        g.write(list, list_bytes)?;
        Ok(GNTST_OKAY)
    }

    /// `memory_op(cmd, arg)`: only `XENMEM_add_to_physmap`.
    pub fn memory_op<E: PvEnv<Frame = F>>(
        &mut self,
        g: &mut impl Guest,
        env: &mut E,
        caller: DomId,
        cmd: u64,
        arg: u64,
    ) -> Result<u64, Errno> {
        if cmd != mem::XENMEM_ADD_TO_PHYSMAP {
            return Err(Errno::ENOSYS);
        }
        let mut b = [0u8; 24];
        g.read(arg, &mut b)?;
        let (domid, space, idx, gpfn) = (u16at(&b, 0), u32at(&b, 4), u64at(&b, 8), u64at(&b, 16));
        if domid != DOMID_SELF && domid != caller {
            return Err(Errno::EPERM);
        }
        let (base, size) = mem::window(space).ok_or(Errno::ENOSYS)?;
        let ipa = gpfn.checked_mul(4096).ok_or(Errno::EINVAL)?;
        if ipa < base || ipa >= base + size {
            return Err(Errno::EINVAL);
        }
        let what = match space {
            XENMAPSPACE_SHARED_INFO if idx == 0 => Placed::SharedInfo,
            XENMAPSPACE_GRANT_TABLE
                if idx & mem::XENMAPIDX_GRANT_TABLE_STATUS == 0
                    && idx < MAX_GRANT_FRAMES as u64 =>
            {
                Placed::GrantFrame(idx as u32)
            }
            _ => return Err(Errno::EINVAL),
        };
        if self.placed.get(&(caller, what)) == Some(&gpfn) {
            return Ok(0);
        }
        // Refuse a busy page before anything changes (the table must not
        // grow for a placement that fails).
        if !env.page_free(caller, ipa) {
            return Err(Errno::EBUSY);
        }
        let pa = match what {
            Placed::SharedInfo => self.ev.page(caller).ok_or(Errno::ESRCH)?.machine_addr(),
            Placed::GrantFrame(i) => {
                // The table grows to idx + 1 frames if needed, as in Xen.
                let have = self
                    .gt
                    .nr_frames(caller, caller)
                    .map_err(|_| Errno::ESRCH)?;
                if have <= i {
                    self.gt
                        .grow(caller, caller, i + 1, &mut Source(env))
                        .map_err(|_| Errno::ENOMEM)?;
                }
                self.gt.domain(caller).ok_or(Errno::ESRCH)?.frames()[i as usize].machine_addr()
            }
        };
        env.map_page(caller, ipa, pa)?;
        if let Some(old) = self.placed.insert((caller, what), gpfn) {
            env.unmap_page(caller, old * 4096);
        }
        Ok(0)
    }

    /// Forgets `dom`'s placements (destruction; its stage-2 goes whole).
    pub fn forget_placements(&mut self, dom: DomId) {
        self.placed.retain(|k, _| k.0 != dom);
    }
}

/// The environment as the grant table's frame source.
struct Source<'a, E>(&'a mut E);

impl<E: PvEnv> FrameSource<E::Frame> for Source<'_, E> {
    fn alloc(&mut self) -> Option<E::Frame> {
        self.0.alloc_grant_frame()
    }
    fn free(&mut self, f: E::Frame) {
        self.0.free_grant_frame(f)
    }
}

#[cfg(test)]
mod tests;
