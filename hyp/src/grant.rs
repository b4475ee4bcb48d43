//! Grant tables (v1): each domain's table frames, the grantee's map
//! handles (maptrack), and reference counts that keep a granted frame
//! alive while anyone has it mapped.
//!
//! The granting domain writes [`GrantEntryV1`]s into its table frames
//! (any `P: Deref<Target = GrantFrameV1>`: monitor frames on the target,
//! heap pages in tests); the monitor reads them as untrusted input, and
//! sets `GTF_reading`/`GTF_writing` while a grant is mapped so the granter
//! cannot revoke it. Stage-2 changes go through the [`GrantEnv`] trait.
//!
//! Rules:
//! * a map checks, in order: flags, `host_addr`, granter, reference range,
//!   entry type, grantee, read-only, that the frame is the granter's own
//!   RAM, then maps; any refusal changes nothing (`GNTST_*` status);
//! * every mapping holds one pin on its machine frame ([`Grants::pins`]):
//!   a frame with pins must not be freed or reused by its owner, even when
//!   the owner is destroyed (the monitor defers freeing it);
//! * unmapping removes the stage-2 entry (with TLB maintenance, in
//!   [`GrantEnv::unmap`]) before the pin is dropped;
//! * destroying a domain drops all its mappings (and their pins) and its
//!   table; mappings *of* its frames by others stay valid until unmapped.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Deref;
use core::sync::atomic::Ordering;
use hypercall_abi::event_channel::{DomId, DOMID_SELF};
use hypercall_abi::grant_table::*;

/// What grant operations need from the monitor.
pub trait GrantEnv {
    /// Machine frame of guest frame `gfn` of `dom`'s own RAM (not a
    /// grant mapping, not a monitor page), if it is one.
    fn own_frame(&self, dom: DomId, gfn: u64) -> Option<u64>;
    /// Maps machine frame `mfn` at guest-physical `ipa` of `dom`.
    /// Refuses (`GNTST_bad_virt_addr`) an address outside the grant-map
    /// window or already in use.
    fn map(&mut self, dom: DomId, ipa: u64, mfn: u64, writable: bool) -> Result<(), i16>;
    /// Removes the mapping at `ipa` of `dom`, with TLB maintenance.
    fn unmap(&mut self, dom: DomId, ipa: u64);
    /// Copies `len` bytes between machine frames.
    fn copy(&mut self, src: u64, src_off: u16, dst: u64, dst_off: u16, len: u16);
}

/// Where new grant-table frames come from.
pub trait FrameSource<P> {
    /// A new zeroed frame, if memory allows.
    fn alloc(&mut self) -> Option<P>;
    /// Gives back a frame that was never used.
    fn free(&mut self, f: P);
}

/// A grantee's mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The granting domain.
    pub granter: DomId,
    /// The grant reference.
    pub gref: GrantRef,
    /// The machine frame.
    pub mfn: u64,
    /// Where it is mapped in the grantee.
    pub host_addr: u64,
    /// Read-only.
    pub readonly: bool,
}

/// How many mappings use one of a granter's entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Active {
    ro: u32,
    rw: u32,
}

/// One domain's grant state.
#[derive(Debug)]
pub struct DomainGrants<P> {
    frames: Vec<P>,
    maptrack: Vec<Option<Mapping>>,
    active: BTreeMap<GrantRef, Active>,
}

impl<P> DomainGrants<P> {
    /// The table frames.
    pub fn frames(&self) -> &[P] {
        &self.frames
    }
    /// Live mappings by handle.
    pub fn mappings(&self) -> impl Iterator<Item = (GrantHandle, &Mapping)> {
        self.maptrack
            .iter()
            .enumerate()
            .filter_map(|(h, m)| m.as_ref().map(|m| (h as GrantHandle, m)))
    }
}

/// Handles per domain.
pub const MAX_MAPTRACK: usize = 1024;

/// Every domain's grant state.
#[derive(Debug)]
pub struct Grants<P> {
    doms: BTreeMap<DomId, DomainGrants<P>>,
    pins: BTreeMap<u64, u32>,
}

impl<P> Default for Grants<P> {
    fn default() -> Self {
        Self {
            doms: BTreeMap::new(),
            pins: BTreeMap::new(),
        }
    }
}

/// What [`Grants::remove_domain`] hands back.
#[derive(Debug)]
pub struct Removed<P> {
    /// The domain's table frames, to free.
    pub frames: Vec<P>,
    /// Machine frames whose last pin went with the domain's mappings
    /// (their owners may have been waiting to free them).
    pub released: Vec<u64>,
}

fn resolve(caller: DomId, dom: DomId) -> DomId {
    if dom == DOMID_SELF {
        caller
    } else {
        dom
    }
}

impl<P: Deref<Target = GrantFrameV1>> Grants<P> {
    /// No domains.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers domain `dom` (with an empty table).
    pub fn add_domain(&mut self, dom: DomId) {
        self.doms.entry(dom).or_insert(DomainGrants {
            frames: Vec::new(),
            maptrack: Vec::new(),
            active: BTreeMap::new(),
        });
    }

    /// Domain `dom`'s state.
    pub fn domain(&self, dom: DomId) -> Option<&DomainGrants<P>> {
        self.doms.get(&dom)
    }

    /// Registered domains.
    pub fn domains(&self) -> impl Iterator<Item = (DomId, &DomainGrants<P>)> {
        self.doms.iter().map(|(k, v)| (*k, v))
    }

    /// Mappings holding each machine frame.
    pub fn pins(&self) -> &BTreeMap<u64, u32> {
        &self.pins
    }

    /// Whether a mapping holds machine frame `mfn` (its owner must not
    /// free or reuse it).
    pub fn is_pinned(&self, mfn: u64) -> bool {
        self.pins.contains_key(&mfn)
    }

    /// Table frames of `dom` (`GNTTABOP_query_size`).
    pub fn nr_frames(&self, caller: DomId, dom: DomId) -> Result<u32, i16> {
        if resolve(caller, dom) != caller {
            return Err(GNTST_PERMISSION_DENIED);
        }
        let d = self.doms.get(&caller).ok_or(GNTST_BAD_DOMAIN)?;
        Ok(d.frames.len() as u32)
    }

    /// Grows the caller's table to `nr` frames (`GNTTABOP_setup_table`,
    /// and `XENMAPSPACE_grant_table`), taking new frames from `src`.
    /// All or nothing: on failure the frames got so far go back to `src`.
    pub fn grow(
        &mut self,
        caller: DomId,
        dom: DomId,
        nr: u32,
        src: &mut impl FrameSource<P>,
    ) -> Result<(), i16> {
        if resolve(caller, dom) != caller {
            return Err(GNTST_PERMISSION_DENIED);
        }
        let d = self.doms.get_mut(&caller).ok_or(GNTST_BAD_DOMAIN)?;
        if nr > MAX_GRANT_FRAMES {
            return Err(GNTST_GENERAL_ERROR);
        }
        let mut new = Vec::new();
        while d.frames.len() + new.len() < nr as usize {
            match src.alloc() {
                Some(f) => new.push(f),
                None => {
                    new.into_iter().for_each(|f| src.free(f));
                    return Err(GNTST_NO_SPACE);
                }
            }
        }
        d.frames.extend(new);
        Ok(())
    }

    fn entry(&self, granter: DomId, gref: GrantRef) -> Result<&GrantEntryV1, i16> {
        let d = self.doms.get(&granter).ok_or(GNTST_BAD_DOMAIN)?;
        let f = d
            .frames
            .get((gref / ENTRIES_PER_FRAME) as usize)
            .ok_or(GNTST_BAD_GNTREF)?;
        Ok(&f[(gref % ENTRIES_PER_FRAME) as usize])
    }

    /// Checks that `gref` of `granter` grants `caller` access (writable if
    /// `write`) to a frame of the granter's RAM; returns the machine frame.
    fn check(
        &self,
        env: &impl GrantEnv,
        caller: DomId,
        granter: DomId,
        gref: GrantRef,
        write: bool,
    ) -> Result<u64, i16> {
        let e = self.entry(granter, gref)?;
        let flags = e.flags.load(Ordering::Acquire);
        if flags & GTF_TYPE_MASK != GTF_PERMIT_ACCESS {
            return Err(GNTST_BAD_GNTREF);
        }
        if e.domid.load(Ordering::Acquire) != caller {
            return Err(GNTST_PERMISSION_DENIED);
        }
        if write && flags & GTF_READONLY != 0 {
            return Err(GNTST_PERMISSION_DENIED);
        }
        let gfn = e.frame.load(Ordering::Acquire) as u64;
        env.own_frame(granter, gfn).ok_or(GNTST_BAD_PAGE)
    }

    /// Sets or clears the in-use flags of an entry from its counts.
    fn sync_flags(&self, granter: DomId, gref: GrantRef) {
        let Some(d) = self.doms.get(&granter) else {
            return;
        };
        let a = d.active.get(&gref).copied().unwrap_or_default();
        if let Ok(e) = self.entry(granter, gref) {
            let mut set = 0;
            if a.ro + a.rw > 0 {
                set |= GTF_READING;
            }
            if a.rw > 0 {
                set |= GTF_WRITING;
            }
            let clear = (GTF_READING | GTF_WRITING) & !set;
            e.flags.fetch_or(set, Ordering::AcqRel);
            e.flags.fetch_and(!clear, Ordering::AcqRel);
        }
    }

    /// `GNTTABOP_map_grant_ref`: returns the handle.
    pub fn map(
        &mut self,
        env: &mut impl GrantEnv,
        caller: DomId,
        op: &GnttabMapGrantRef,
    ) -> Result<GrantHandle, i16> {
        if op.flags & GNTMAP_HOST_MAP == 0 {
            return Err(GNTST_BAD_GNTREF);
        }
        if op.flags & (GNTMAP_DEVICE_MAP | GNTMAP_APPLICATION_MAP | GNTMAP_CONTAINS_PTE) != 0 {
            return Err(GNTST_GENERAL_ERROR);
        }
        if op.host_addr % 4096 != 0 {
            return Err(GNTST_BAD_VIRT_ADDR);
        }
        let readonly = op.flags & GNTMAP_READONLY != 0;
        let granter = resolve(caller, op.dom);
        let me = self.doms.get(&caller).ok_or(GNTST_BAD_DOMAIN)?;
        let handle = match me.maptrack.iter().position(|m| m.is_none()) {
            Some(h) => h,
            None if me.maptrack.len() < MAX_MAPTRACK => me.maptrack.len(),
            None => return Err(GNTST_NO_SPACE),
        };
        let mfn = self.check(env, caller, granter, op.r#ref, !readonly)?;
        env.map(caller, op.host_addr, mfn, !readonly)?;
        // Committed from here on.
        let g = self.doms.get_mut(&granter).expect("checked");
        let a = g.active.entry(op.r#ref).or_default();
        if readonly {
            a.ro += 1;
        } else {
            a.rw += 1;
        }
        self.sync_flags(granter, op.r#ref);
        *self.pins.entry(mfn).or_default() += 1;
        let me = self.doms.get_mut(&caller).expect("checked");
        let m = Mapping {
            granter,
            gref: op.r#ref,
            mfn,
            host_addr: op.host_addr,
            readonly,
        };
        if handle == me.maptrack.len() {
            me.maptrack.push(Some(m));
        } else {
            me.maptrack[handle] = Some(m);
        }
        Ok(handle as GrantHandle)
    }

    /// Drops one mapping's references; returns the frame if its last pin
    /// went.
    fn release(&mut self, m: &Mapping) -> Option<u64> {
        if let Some(g) = self.doms.get_mut(&m.granter) {
            if let Some(a) = g.active.get_mut(&m.gref) {
                if m.readonly {
                    a.ro = a.ro.saturating_sub(1);
                } else {
                    a.rw = a.rw.saturating_sub(1);
                }
                if a.ro + a.rw == 0 {
                    g.active.remove(&m.gref);
                }
            }
            self.sync_flags(m.granter, m.gref);
        }
        let n = self.pins.get_mut(&m.mfn)?;
        *n -= 1;
        if *n == 0 {
            self.pins.remove(&m.mfn);
            return Some(m.mfn);
        }
        None
    }

    /// `GNTTABOP_unmap_grant_ref`: returns the machine frame if this was
    /// its last mapping (`Ok(None)` otherwise).
    pub fn unmap(
        &mut self,
        env: &mut impl GrantEnv,
        caller: DomId,
        op: &GnttabUnmapGrantRef,
    ) -> Result<Option<u64>, i16> {
        let me = self.doms.get(&caller).ok_or(GNTST_BAD_DOMAIN)?;
        let m = me
            .maptrack
            .get(op.handle as usize)
            .copied()
            .flatten()
            .ok_or(GNTST_BAD_HANDLE)?;
        if op.host_addr != 0 && op.host_addr != m.host_addr {
            return Err(GNTST_BAD_VIRT_ADDR);
        }
        env.unmap(caller, m.host_addr);
        self.doms.get_mut(&caller).expect("checked").maptrack[op.handle as usize] = None;
        Ok(self.release(&m))
    }

    /// `GNTTABOP_copy`.
    pub fn copy(&self, env: &mut impl GrantEnv, caller: DomId, op: &GnttabCopy) -> Result<(), i16> {
        if op.source.offset as u32 + op.len as u32 > 4096
            || op.dest.offset as u32 + op.len as u32 > 4096
        {
            return Err(GNTST_BAD_COPY_ARG);
        }
        let side = |p: &GnttabCopyPtr, gref: bool, write: bool| -> Result<u64, i16> {
            let dom = resolve(caller, p.domid);
            if gref {
                let r = u32::try_from(p.u).map_err(|_| GNTST_BAD_GNTREF)?;
                self.check(env, caller, dom, r, write)
            } else if dom != caller {
                Err(GNTST_PERMISSION_DENIED)
            } else {
                env.own_frame(caller, p.u).ok_or(GNTST_BAD_PAGE)
            }
        };
        let src = side(&op.source, op.flags & GNTCOPY_SOURCE_GREF != 0, false)?;
        let dst = side(&op.dest, op.flags & GNTCOPY_DEST_GREF != 0, true)?;
        env.copy(src, op.source.offset, dst, op.dest.offset, op.len);
        Ok(())
    }

    /// Removes domain `dom` (destruction): drops its mappings (without
    /// stage-2 calls: its whole map is going) and returns its table frames.
    /// Mappings of its frames by other domains stay, with their pins.
    pub fn remove_domain(&mut self, dom: DomId) -> Option<Removed<P>> {
        let d = self.doms.remove(&dom)?;
        let mut released = Vec::new();
        for m in d.maptrack.iter().flatten() {
            if let Some(mfn) = self.release(m) {
                released.push(mfn);
            }
        }
        Some(Removed {
            frames: d.frames,
            released,
        })
    }

    /// Checks the counts (tests and debugging): pins equal the mappings of
    /// each frame; each live entry's in-use flags match its mappings.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let mut pins: BTreeMap<u64, u32> = BTreeMap::new();
        let mut act: BTreeMap<(DomId, GrantRef), Active> = BTreeMap::new();
        for d in self.doms.values() {
            for m in d.maptrack.iter().flatten() {
                *pins.entry(m.mfn).or_default() += 1;
                let a = act.entry((m.granter, m.gref)).or_default();
                if m.readonly {
                    a.ro += 1
                } else {
                    a.rw += 1
                }
            }
        }
        if pins != self.pins {
            return Err("pin counts differ from the mappings");
        }
        for (&id, d) in &self.doms {
            for (&r, a) in &d.active {
                if act.get(&(id, r)) != Some(a) {
                    return Err("active counts differ from the mappings");
                }
            }
            for (i, f) in d.frames.iter().enumerate() {
                for (j, e) in f.iter().enumerate() {
                    let r = (i * ENTRIES_PER_FRAME as usize + j) as GrantRef;
                    let a = act.get(&(id, r)).copied().unwrap_or_default();
                    let fl = e.flags.load(Ordering::Relaxed);
                    if (fl & GTF_READING != 0) != (a.ro + a.rw > 0)
                        || (fl & GTF_WRITING != 0) != (a.rw > 0)
                    {
                        return Err("in-use flags differ from the mappings");
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
