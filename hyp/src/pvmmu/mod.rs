//! The paravirtual MMU: per-frame types and reference counts for one
//! domain, and the operations that change them (validated descriptor
//! updates, pin, unpin, base switches), following Xen's direct-paging
//! model on AArch64 stage-1 tables. The ABI and the rules are documented
//! in `hypercall_abi::mmu`; this module enforces them.
//!
//! # Model
//!
//! Every 4 KiB frame of the domain's RAM has a [`Type`] and a type count:
//! the number of references that need it to keep that type. The type may
//! change only while the count is zero. References are held by:
//!
//! * a pin (one per pinned table),
//! * a TTBR base (one per vCPU and TTBR that names the table),
//! * a table entry of a *validated* table: a table entry at level `L`
//!   holds a level-`L+1` table reference on the frame it points at; a
//!   writable block or page holds a writable reference on every frame it
//!   maps. Read-only leaves and invalid entries hold nothing.
//!
//! A frame is a *validated* table exactly while its type is a table and its
//! count is non-zero: taking the first table reference validates all of its
//! 512 entries (taking their references, recursively); dropping the last
//! releases them. Because writable and table are distinct types, no table
//! frame is ever mapped writable, and every frame an entry reaches is inside
//! the domain's RAM. Each time a frame becomes (or stops being) a table the
//! machine is told through [`MmuEnv::protect`], so that the monitor makes it
//! read-only (or writable again) in stage 2.
//!
//! Every operation either succeeds completely or returns an error with the
//! state (counts, types, memory, protections) as it was.

pub mod desc;
pub mod sysreg;
pub mod trap;

#[cfg(test)]
mod audit;
#[cfg(test)]
pub mod sim;
#[cfg(test)]
mod tests;

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use desc::Desc;
use hypercall_abi::errno::Errno;

/// Frame size.
pub const PAGE: u64 = 4096;
/// Entries per table.
pub const ENTRIES: u64 = 512;
/// Highest table level (AArch64 level 3 holds pages).
pub const MAX_LEVEL: u8 = 3;

/// A 4 KiB frame of guest RAM as the monitor sees it: 512 words that the
/// guest (another of its vCPUs) may change at any time, hence atomics
/// (relaxed loads and stores are plain `ldr`/`str` on AArch64).
pub type Words = [AtomicU64; 512];

/// What the validator needs from the machine, for one domain. Every method
/// takes `&self`: guest memory is shared (atomic words) and the stage-2
/// hooks are the machine's, so a frame borrowed through [`MmuEnv::frame`]
/// stays usable while the validator calls the others.
pub trait MmuEnv {
    /// Reads the descriptor at guest-physical `ipa` (8-byte aligned, in
    /// the domain's RAM).
    fn read(&self, ipa: u64) -> u64;
    /// Writes the descriptor at guest-physical `ipa` (8-byte aligned, in
    /// the domain's RAM).
    fn write(&self, ipa: u64, val: u64);
    /// The frame at `ipa` became a page table (`true`: make it read-only
    /// in stage 2) or stopped being one (`false`: writable again).
    fn protect(&self, ipa: u64, table: bool);
    /// Direct access to the frame at page-aligned `ipa` of the domain's RAM,
    /// for the fast path; `None` (the default) sends every access through
    /// [`read`](MmuEnv::read) and [`write`](MmuEnv::write).
    fn frame(&self, ipa: u64) -> Option<&Words> {
        let _ = ipa;
        None
    }
    /// The guest-physical address of guest virtual address `gva`, if the
    /// calling vCPU can read it and it is the domain's RAM (where request
    /// vectors are read in place); `None` (the default) makes the caller
    /// copy requests in through the hypercall interface instead.
    fn vector_ipa(&self, gva: u64) -> Option<u64> {
        let _ = gva;
        None
    }
    /// [`PvMmu::update_batch`] on this environment. Provided, so that it is
    /// compiled for each implementation: through a `dyn MmuEnv` a batch
    /// costs one indirect call, not one per access.
    fn update_batch(&self, m: &mut PvMmu, reqs: &[AtomicU64]) -> (usize, Result<(), Errno>) {
        m.update_batch(self, reqs)
    }
    /// [`PvMmu::trapped_store`] on this environment (provided, like
    /// [`update_batch`](MmuEnv::update_batch), for direct accesses).
    fn trapped_store(&self, m: &mut PvMmu, ipa: u64, val: u64) -> Result<(), Errno> {
        m.trapped_store(self, ipa, val)
    }
}

/// The type of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Type {
    /// Neither mapped writable nor a table.
    #[default]
    None,
    /// Mapped writable by at least one validated entry.
    Writable,
    /// A table of this AArch64 level (0..=3).
    Table(u8),
}

/// Per-frame state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Frame {
    /// Current type (meaningful while `count > 0`).
    pub ty: Type,
    /// Type reference count.
    pub count: u32,
    /// Holds a pin reference.
    pub pinned: bool,
}

/// Which translation table base register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttbr {
    /// TTBR0_EL1 (lower VA range).
    Ttbr0 = 0,
    /// TTBR1_EL1 (upper VA range).
    Ttbr1 = 1,
}

/// Counters for reports and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Descriptor updates done through `mmu_update`.
    pub updates: u64,
    /// Direct stores to tables that trapped and were emulated.
    pub trapped: u64,
    /// Requests refused (any operation).
    pub refused: u64,
    /// Tables validated (first reference).
    pub validated: u64,
    /// `mmu_update` calls continued (a piece done, the rest left).
    pub continued: u64,
}

/// One domain's PV MMU state.
#[derive(Clone, Debug)]
pub struct PvMmu {
    base: u64,
    size: u64,
    frames: Vec<Frame>,
    bases: Vec<[Option<u64>; 2]>,
    /// Device attribute indices of the guest's `MAIR_EL1`.
    device: u8,
    /// Counters.
    pub stats: Stats,
}

impl PvMmu {
    /// State for RAM `[base, base + size)` (page aligned) and `vcpus` vCPUs,
    /// validating memory attributes against `MAIR_EL1_PV` until
    /// [`set_mair`](Self::set_mair).
    pub fn new(base: u64, size: u64, vcpus: usize) -> Self {
        Self {
            base,
            size: size / PAGE * PAGE,
            frames: vec![Frame::default(); (size / PAGE) as usize],
            bases: vec![[None, None]; vcpus],
            device: desc::device_mask(hypercall_abi::mmu::MAIR_EL1_PV),
            stats: Stats::default(),
        }
    }

    /// Guest RAM as `(base, size)`.
    pub fn ram(&self) -> (u64, u64) {
        (self.base, self.frames.len() as u64 * PAGE)
    }

    /// Index of the frame holding `ipa`, if it is the domain's RAM.
    fn index(&self, ipa: u64) -> Option<usize> {
        let i = ipa.checked_sub(self.base)? / PAGE;
        (i < self.frames.len() as u64).then_some(i as usize)
    }

    fn frame_ipa(&self, i: usize) -> u64 {
        self.base + i as u64 * PAGE
    }

    /// The state of the frame holding `ipa`.
    pub fn frame(&self, ipa: u64) -> Option<Frame> {
        self.index(ipa).map(|i| self.frames[i])
    }

    /// Whether the frame holding `ipa` is a validated table.
    pub fn is_table(&self, ipa: u64) -> bool {
        self.frame(ipa)
            .is_some_and(|f| f.count > 0 && matches!(f.ty, Type::Table(_)))
    }

    /// The table at the base of `which` for `vcpu`, if one is set.
    pub fn base(&self, vcpu: usize, which: Ttbr) -> Option<u64> {
        self.bases.get(vcpu).and_then(|b| b[which as usize])
    }

    fn refused<T>(&mut self, r: Result<T, Errno>) -> Result<T, Errno> {
        if r.is_err() {
            self.stats.refused += 1;
        }
        r
    }

    // ---- references ----------------------------------------------------

    /// Takes a level-`level` table reference on the frame at `ipa`,
    /// validating it if it is the first.
    fn get_table(
        &mut self,
        env: &(impl MmuEnv + ?Sized),
        ipa: u64,
        level: u8,
    ) -> Result<(), Errno> {
        let i = self.index(ipa).ok_or(Errno::EPERM)?;
        let f = self.frames[i];
        if f.count > 0 {
            if f.ty != Type::Table(level) {
                return Err(Errno::EPERM);
            }
            self.frames[i].count = f.count.checked_add(1).ok_or(Errno::EOVERFLOW)?;
            return Ok(());
        }
        // Protect before reading the entries, so no other writer can change
        // them between validation and use.
        self.frames[i].ty = Type::Table(level);
        self.frames[i].count = 1;
        let t = self.frame_ipa(i);
        env.protect(t, true);
        match self.validate(env, t, level) {
            Ok(()) => {
                self.stats.validated += 1;
                Ok(())
            }
            Err(e) => {
                self.frames[i].ty = Type::None;
                self.frames[i].count = 0;
                env.protect(t, false);
                Err(e)
            }
        }
    }

    /// Drops a table reference on the frame at `ipa` (a validated table),
    /// releasing its entries when it was the last.
    fn put_table(&mut self, env: &(impl MmuEnv + ?Sized), ipa: u64) {
        let Some(i) = self.index(ipa) else { return };
        let Type::Table(level) = self.frames[i].ty else {
            return;
        };
        debug_assert!(self.frames[i].count > 0);
        self.frames[i].count -= 1;
        if self.frames[i].count == 0 {
            let t = self.frame_ipa(i);
            for k in 0..ENTRIES {
                let d = env.read(t + 8 * k);
                self.put_desc(env, d, level);
            }
            self.frames[i].ty = Type::None;
            env.protect(t, false);
        }
    }

    /// Takes the references the entries of the table at `t` need.
    fn validate(&mut self, env: &(impl MmuEnv + ?Sized), t: u64, level: u8) -> Result<(), Errno> {
        for k in 0..ENTRIES {
            let d = env.read(t + 8 * k);
            if let Err(e) = self.get_desc(env, d, level) {
                for j in 0..k {
                    let d = env.read(t + 8 * j);
                    self.put_desc(env, d, level);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Takes the references descriptor `d` in a level-`level` table needs.
    fn get_desc(&mut self, env: &(impl MmuEnv + ?Sized), d: u64, level: u8) -> Result<(), Errno> {
        match desc::decode(d, level)? {
            Desc::Invalid => Ok(()),
            Desc::Table(next) => self.get_table(env, next, level + 1),
            Desc::Leaf { oa, size, writable } => {
                if !desc::exec_ok(d, self.device) {
                    return Err(Errno::EINVAL);
                }
                if granted_page(oa, size) {
                    // A page another domain granted (mapped in the grant
                    // window): stage 2 alone decides what may be done with
                    // it (read-only grants are read-only there; an unmapped
                    // grant faults), so it needs no count here.
                    return Ok(());
                }
                let first = self.index(oa).ok_or(Errno::EPERM)?;
                let n = (size / PAGE) as usize;
                if first + n > self.frames.len() {
                    return Err(Errno::EPERM);
                }
                if !writable {
                    return Ok(());
                }
                for j in first..first + n {
                    if let Err(e) = self.get_writable(j) {
                        for k in first..j {
                            self.put_writable(k);
                        }
                        return Err(e);
                    }
                }
                Ok(())
            }
        }
    }

    /// Drops the references of descriptor `d` (validated earlier).
    fn put_desc(&mut self, env: &(impl MmuEnv + ?Sized), d: u64, level: u8) {
        match desc::decode(d, level) {
            Ok(Desc::Table(next)) => self.put_table(env, next),
            Ok(Desc::Leaf {
                oa,
                size,
                writable: true,
            }) => {
                if let Some(first) = self.index(oa) {
                    for j in first..first + (size / PAGE) as usize {
                        self.put_writable(j);
                    }
                }
            }
            _ => {}
        }
    }

    fn get_writable(&mut self, i: usize) -> Result<(), Errno> {
        let f = &mut self.frames[i];
        if f.count == 0 {
            f.ty = Type::Writable;
            f.count = 1;
            Ok(())
        } else if f.ty == Type::Writable {
            f.count = f.count.checked_add(1).ok_or(Errno::EOVERFLOW)?;
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    fn put_writable(&mut self, i: usize) {
        let f = &mut self.frames[i];
        if f.ty == Type::Writable && f.count > 0 {
            f.count -= 1;
            if f.count == 0 {
                f.ty = Type::None;
            }
        }
    }

    // ---- operations ----------------------------------------------------

    /// `MMU_NORMAL_PT_UPDATE`: writes `val` at `ptr` (command in bits 1:0),
    /// validating it if `ptr` lies in a validated table.
    pub fn update(
        &mut self,
        env: &(impl MmuEnv + ?Sized),
        ptr: u64,
        val: u64,
    ) -> Result<(), Errno> {
        let r = self.update_one(env, ptr, val);
        if r.is_ok() {
            self.stats.updates += 1;
        }
        self.refused(r)
    }

    /// Runs the requests in `reqs` (pairs of words: `ptr`, `val`) in order,
    /// stopping at the first that fails: returns how many were done and
    /// that error. Same rules and results as [`update`](Self::update), one
    /// request at a time. Runs of requests into one level-3 table take the
    /// fast path ([`fast_one`](Self::fast_one)) with the table looked up
    /// once; a request the fast path does not take (or refuses) is read
    /// again and goes through the general path, which decides on what it
    /// read (so that errors have one source).
    pub fn update_batch<E: MmuEnv + ?Sized>(
        &mut self,
        env: &E,
        reqs: &[AtomicU64],
    ) -> (usize, Result<(), Errno>) {
        let n = reqs.len() / 2;
        let mut done = 0;
        let mut r = Ok(());
        while done < n {
            let ptr = reqs[2 * done].load(Relaxed);
            if let Some((t, w)) = self.fast_table(env, ptr) {
                let before = done;
                for req in reqs[2 * done..2 * n].chunks_exact(2) {
                    if !self.fast_one(t, w, req[0].load(Relaxed), req[1].load(Relaxed)) {
                        break;
                    }
                    done += 1;
                }
                if done > before {
                    continue;
                }
            }
            let (ptr, val) = (
                reqs[2 * done].load(Relaxed),
                reqs[2 * done + 1].load(Relaxed),
            );
            if let Err(e) = self.update_inner(env, ptr, val) {
                r = self.refused(Err(e));
                break;
            }
            done += 1;
        }
        self.stats.updates += done as u64;
        (done, r)
    }

    /// One update: the fast path if it takes it, else the general one.
    fn update_one(
        &mut self,
        env: &(impl MmuEnv + ?Sized),
        ptr: u64,
        val: u64,
    ) -> Result<(), Errno> {
        if let Some((t, w)) = self.fast_table(env, ptr) {
            if self.fast_one(t, w, ptr, val) {
                return Ok(());
            }
        }
        self.update_inner(env, ptr, val)
    }

    /// The validated level-3 table holding descriptor address `ptr`, as its
    /// guest-physical address and words, if the environment gives direct
    /// access to it.
    #[inline(always)]
    fn fast_table<'e>(
        &self,
        env: &'e (impl MmuEnv + ?Sized),
        ptr: u64,
    ) -> Option<(u64, &'e Words)> {
        let i = self.index(ptr)?;
        if self.frames[i].ty != Type::Table(MAX_LEVEL) {
            return None;
        }
        let t = self.frame_ipa(i);
        env.frame(t).map(|w| (t, w))
    }

    /// The fast path: an update of the level-3 table at `t` (a validated
    /// table, words `w`) that replaces an invalid entry or a page with an
    /// invalid entry or a page. Returns false, having changed nothing, for
    /// anything else or anything refused (the general path then decides):
    /// `ptr` not an aligned `MMU_NORMAL_PT_UPDATE` into `t`, `val` with
    /// reserved bits or a reserved encoding, outside RAM, breaking the
    /// memory-attribute rule, or a writable page of a frame that cannot be
    /// typed writable. The old entry of a validated level-3 table is
    /// invalid or a page checked when it was written, so it needs no
    /// decoding: it holds a writable reference exactly when it is valid
    /// with `AP[2]` clear and inside RAM (a granted page holds none). A few
    /// comparisons, no table types change.
    #[inline(always)]
    fn fast_one(&mut self, t: u64, w: &Words, ptr: u64, val: u64) -> bool {
        let o = ptr.wrapping_sub(t);
        if o & !0xff8 != 0 {
            return false;
        }
        let slot = &w[(o / 8) as usize];
        let old = slot.load(Relaxed);
        if old == val {
            return true;
        }
        if val & desc::VALID != 0 {
            if val & (3 | desc::LEAF_RES0) != 3 || !desc::exec_ok(val, self.device) {
                return false;
            }
            let at = (val & desc::ADDR_MASK).wrapping_sub(self.base);
            if at >= self.size {
                return false;
            }
            if val & desc::AP_RO == 0 && self.get_writable((at / PAGE) as usize).is_err() {
                return false;
            }
        }
        slot.store(val, Relaxed);
        if old & desc::VALID != 0 && old & desc::AP_RO == 0 {
            // A granted page (outside RAM) holds no reference.
            let at = (old & desc::ADDR_MASK).wrapping_sub(self.base);
            if at < self.size {
                self.put_writable((at / PAGE) as usize);
            }
        }
        true
    }

    fn update_inner(
        &mut self,
        env: &(impl MmuEnv + ?Sized),
        ptr: u64,
        val: u64,
    ) -> Result<(), Errno> {
        if ptr & hypercall_abi::mmu::MMU_CMD_MASK != hypercall_abi::mmu::MMU_NORMAL_PT_UPDATE {
            return Err(Errno::ENOSYS);
        }
        let a = ptr & !hypercall_abi::mmu::MMU_CMD_MASK;
        if a % 8 != 0 {
            return Err(Errno::EINVAL);
        }
        let i = self.index(a).ok_or(Errno::EPERM)?;
        let f = self.frames[i];
        match f.ty {
            Type::Table(level) if f.count > 0 => {
                let old = env.read(a);
                if old == val {
                    return Ok(());
                }
                // New references first: if the old entry pointed at the same
                // table, it stays validated throughout.
                self.get_desc(env, val, level)?;
                env.write(a, val);
                self.put_desc(env, old, level);
                Ok(())
            }
            // Not a table: the domain's own memory, a plain store.
            _ => {
                env.write(a, val);
                Ok(())
            }
        }
    }

    /// A trapped direct store of `val` at `ipa` into a protected table:
    /// validated and done exactly like a one-entry update, and counted.
    pub fn trapped_store(
        &mut self,
        env: &(impl MmuEnv + ?Sized),
        ipa: u64,
        val: u64,
    ) -> Result<(), Errno> {
        let r = if ipa % 8 != 0 {
            Err(Errno::EINVAL)
        } else {
            self.update_one(env, ipa, val)
        };
        if r.is_ok() {
            self.stats.trapped += 1;
        }
        self.refused(r)
    }

    /// A trapped store of two descriptors (`stp`): `vals[0]` at `ipa`,
    /// `vals[1]` at `ipa + 8`, both in one frame, each validated like a
    /// one-entry update, all or nothing: if the second is refused the first
    /// is undone (restoring the old entry cannot fail: its references were
    /// held together with the new entry's a moment before).
    pub fn trapped_pair(
        &mut self,
        env: &(impl MmuEnv + ?Sized),
        ipa: u64,
        vals: [u64; 2],
    ) -> Result<(), Errno> {
        let r = self.trapped_pair_inner(env, ipa, vals);
        if r.is_ok() {
            self.stats.trapped += 2;
        }
        self.refused(r)
    }

    fn trapped_pair_inner(
        &mut self,
        env: &(impl MmuEnv + ?Sized),
        ipa: u64,
        vals: [u64; 2],
    ) -> Result<(), Errno> {
        if ipa % 8 != 0 || ipa % PAGE > PAGE - 16 || self.index(ipa).is_none() {
            return Err(Errno::EINVAL);
        }
        let old = env.read(ipa);
        self.update_one(env, ipa, vals[0])?;
        if let Err(e) = self.update_one(env, ipa + 8, vals[1]) {
            let undone = self.update_one(env, ipa, old);
            debug_assert!(undone.is_ok(), "restoring {old:#x} at {ipa:#x}: {undone:?}");
            return Err(e);
        }
        Ok(())
    }

    /// The guest's `MAIR_EL1` changes to `mair` (already checked by
    /// [`sysreg::mair_ok`]). While any table is validated, each attribute
    /// index must stay of the same class (Device or Normal), or mappings
    /// validated under the old value could break the memory-attribute rule:
    /// `EBUSY`.
    pub fn set_mair(&mut self, mair: u64) -> Result<(), Errno> {
        let device = desc::device_mask(mair);
        if device != self.device && self.frames.iter().any(|f| matches!(f.ty, Type::Table(_))) {
            return self.refused(Err(Errno::EBUSY));
        }
        self.device = device;
        Ok(())
    }

    /// Which `MAIR_EL1` attribute indices are Device memory (bit `i` for
    /// index `i`) in the value descriptors are validated against.
    pub fn device_mask(&self) -> u8 {
        self.device
    }

    /// Pins the frame at `ipa` as a level-`level` table.
    pub fn pin(&mut self, env: &(impl MmuEnv + ?Sized), ipa: u64, level: u8) -> Result<(), Errno> {
        let r = self.pin_inner(env, ipa, level);
        self.refused(r)
    }

    fn pin_inner(
        &mut self,
        env: &(impl MmuEnv + ?Sized),
        ipa: u64,
        level: u8,
    ) -> Result<(), Errno> {
        if level > MAX_LEVEL {
            return Err(Errno::EINVAL);
        }
        let i = self.index(ipa).ok_or(Errno::EPERM)?;
        if self.frames[i].pinned {
            return Err(Errno::EINVAL);
        }
        self.get_table(env, ipa, level)?;
        self.frames[i].pinned = true;
        Ok(())
    }

    /// Releases the pin of the table at `ipa`.
    pub fn unpin(&mut self, env: &(impl MmuEnv + ?Sized), ipa: u64) -> Result<(), Errno> {
        let r = self.unpin_inner(env, ipa);
        self.refused(r)
    }

    fn unpin_inner(&mut self, env: &(impl MmuEnv + ?Sized), ipa: u64) -> Result<(), Errno> {
        let i = self.index(ipa).ok_or(Errno::EPERM)?;
        if !self.frames[i].pinned {
            return Err(Errno::EINVAL);
        }
        let t = self.frame_ipa(i);
        if self.bases.iter().flatten().any(|b| *b == Some(t)) {
            return Err(Errno::EBUSY);
        }
        self.frames[i].pinned = false;
        self.put_table(env, t);
        Ok(())
    }

    /// Makes the pinned level-0 table at `ipa` the `which` base of `vcpu`,
    /// releasing the previous one.
    pub fn set_base(
        &mut self,
        env: &(impl MmuEnv + ?Sized),
        vcpu: usize,
        which: Ttbr,
        ipa: u64,
    ) -> Result<(), Errno> {
        let r = self.set_base_inner(env, vcpu, which, ipa);
        self.refused(r)
    }

    fn set_base_inner(
        &mut self,
        env: &(impl MmuEnv + ?Sized),
        vcpu: usize,
        which: Ttbr,
        ipa: u64,
    ) -> Result<(), Errno> {
        if vcpu >= self.bases.len() {
            return Err(Errno::EINVAL);
        }
        let i = self.index(ipa).ok_or(Errno::EPERM)?;
        let f = self.frames[i];
        if !f.pinned || f.ty != Type::Table(0) || ipa % PAGE != 0 {
            return Err(Errno::EINVAL);
        }
        let t = self.frame_ipa(i);
        self.get_table(env, t, 0)?;
        if let Some(old) = self.bases[vcpu][which as usize].replace(t) {
            self.put_table(env, old);
        }
        Ok(())
    }

    /// Whether `ipa` (a TTBR's table address) is a pinned level-0 table.
    pub fn is_root(&self, ipa: u64) -> bool {
        ipa % PAGE == 0
            && self
                .frame(ipa)
                .is_some_and(|f| f.pinned && f.ty == Type::Table(0))
    }
}

/// Whether a leaf of `size` bytes at `oa` is one page of the grant-mapping
/// window ([`hypercall_abi::memory::GUEST_GRANT_MAP_BASE`]), where the
/// monitor maps pages other domains granted: guests may map those in
/// stage 1 (pages only, never as tables).
pub fn granted_page(oa: u64, size: u64) -> bool {
    use hypercall_abi::memory::{GUEST_GRANT_MAP_BASE, GUEST_GRANT_MAP_SIZE};
    size == PAGE && oa >= GUEST_GRANT_MAP_BASE && oa - GUEST_GRANT_MAP_BASE < GUEST_GRANT_MAP_SIZE
}
