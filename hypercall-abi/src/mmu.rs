//! The paravirtual MMU: `mmu_update` ([`nr::MMU_UPDATE`]) and `mmuext_op`
//! ([`nr::MMUEXT_OP`]), Xen's direct-paging protocol adapted to AArch64
//! stage-1 translation tables with the 4 KiB granule.
//!
//! A guest owns its stage-1 tables, but the monitor must be sure that no
//! table it can walk maps memory the domain does not own, or maps a table
//! writable (which would let the guest change a table behind the monitor's
//! back). So, as in Xen's x86 PV mode, a frame that is in use as a table is
//! *typed* and *validated* by the monitor, made read-only in the domain's
//! stage-2 map, and changed only through validated requests: batches of
//! `{ptr, val}` updates ([`MmuUpdate`]) and extended operations
//! ([`MmuextOp`]: pin, unpin, new base, TLB flushes), each batch in one trap.
//!
//! # Addresses
//!
//! Arm guests are auto-translated: every address in a request or in a
//! descriptor is a **guest-physical** address (IPA), and every "frame
//! number" (Xen's `mfn`) is a guest frame number, `ipa >> 12`. The request
//! *vectors* themselves (and `pdone`) are passed by guest *virtual* address,
//! like every other hypercall buffer.
//!
//! # Translation regime the guest must use
//!
//! | setting | required value |
//! |---|---|
//! | granule | 4 KiB for both halves (`TCR_EL1.TG0 = 0b00`, `TG1 = 0b10`) |
//! | VA size | 48 bits (`T0SZ = 16`; `T1SZ = 16` unless `EPD1 = 1`): a 4-level walk from level 0 |
//! | table walks | inner and outer write-back (`IRGNn = ORGNn = 0b01`), inner shareable (`SHn = 0b11`) |
//! | hardware flags | `TCR_EL1.HA = HD = 0` (no hardware Access/Dirty updates: tables are read-only) |
//! | `MAIR_EL1` | every attribute Device (`0x00`, `0x04`, `0x08`, `0x0c`) or Normal write-back (both nibbles `0b11xx`) |
//! | `SCTLR_EL1` | `M = 1` only once TTBR0 (and TTBR1 unless `EPD1`) hold pinned level-0 roots and TCR is as above; `C = I = 1` with `M`; `EE = E0E = 0` |
//!
//! [`TCR_EL1_PV`] and [`MAIR_EL1_PV`] are values that satisfy these rules.
//! Writes of `SCTLR_EL1`, `TTBR0_EL1`, `TTBR1_EL1`, `TCR_EL1` and
//! `MAIR_EL1` are trapped by the monitor (`HCR_EL2.TVM`) and refused with an
//! undefined-instruction exception if they break a rule. `TTBRn_EL1` may
//! only be written with the address of a pinned level-0 table (ASID and CnP
//! are free); [`MMUEXT_NEW_BASEPTR`] and [`MMUEXT_NEW_TTBR1_BASEPTR`] do the
//! same through a hypercall.
//!
//! # Levels: Xen's names and AArch64's
//!
//! | Xen | AArch64 (4 KiB granule) | maps per entry | pin command |
//! |---|---|---|---|
//! | L4 | level 0 (root) | 512 GiB (table only) | [`MMUEXT_PIN_L4_TABLE`] |
//! | L3 | level 1 | 1 GiB (table or block) | [`MMUEXT_PIN_L3_TABLE`] |
//! | L2 | level 2 | 2 MiB (table or block) | [`MMUEXT_PIN_L2_TABLE`] |
//! | L1 | level 3 | 4 KiB (page) | [`MMUEXT_PIN_L1_TABLE`] |
//!
//! # Rules (what the monitor validates)
//!
//! Each frame of the domain has a *type* (none, writable, level-N table)
//! and a type reference count; the type can change only when the count is
//! zero. A table is validated when it gets its first reference (pin, base,
//! or an entry of a validated table pointing at it): every one of its 512
//! entries must pass these rules, and each valid entry takes a reference:
//!
//! * **Invalid** entries (bit 0 clear) are accepted whatever the other bits.
//! * **Table** entries (levels 0-2, bits `[1:0] = 0b11`): the next-level
//!   table must be a frame of the domain's RAM that can be typed as a table
//!   of the next level; bits `[11:2]` and `[58:48]` must be zero
//!   (`PXNTable`, `UXNTable`, `APTable`, `NSTable` are free).
//! * **Block** entries (levels 1-2, bits `[1:0] = 0b01`) and **page** entries
//!   (level 3, `0b11`): every mapped frame must be the domain's own RAM; the
//!   output address must be aligned to the block size; `NS` (bit 5), bits
//!   `[51:48]` (`DBM`, `GP`, reserved) and `Contiguous` (bit 52) must be zero.
//!   A mapping is writable when `AP[2]` (bit 7) is clear; a writable mapping
//!   takes a *writable* reference on every frame it maps, so **a table frame
//!   is never mapped writable** (map it read-only, `AP[2] = 1`).
//! * Level-0 block entries and level-3 entries with bits `[1:0] = 0b01` are
//!   reserved encodings: refused.
//! * **Memory attributes**: a block or page whose `AttrIndx` (bits `[4:2]`)
//!   selects a Device attribute of the guest's `MAIR_EL1` must be
//!   execute-never at both ELs (`PXN = UXN = 1`): instruction fetches,
//!   speculative ones included, must not reach device registers. The
//!   monitor validates against the `MAIR_EL1` value the guest last wrote
//!   while it used the PV MMU ([`MAIR_EL1_PV`] until then); while any table
//!   is validated, a `MAIR_EL1` write may not change any index between
//!   Device and Normal (refused with an undefined-instruction exception),
//!   and `SCTLR_EL1.M` may be set only with a `MAIR_EL1` of the same
//!   classes.
//!
//! # `mmu_update(reqs, count, pdone, foreigndom)`
//!
//! | register | value |
//! |---|---|
//! | `x0` | guest virtual address of `count` [`MmuUpdate`] requests |
//! | `x1` | `count`, at most [`MMU_BATCH_MAX`] |
//! | `x2` | guest virtual address of a `u32` that receives the number of requests done, or 0 |
//! | `x3` | `foreigndom`: must be [`DOMID_SELF`] |
//!
//! Requests run in order. Request `i` writes the descriptor at
//! guest-physical address `ptr & !3` (8-byte aligned) with `val`. If that
//! frame is a validated table, the new value is validated as above first,
//! references are taken for the new entry and dropped for the old one
//! (which may release whole subtrees); otherwise it is a plain store into
//! the domain's memory. The command is `ptr & 3`: only
//! [`MMU_NORMAL_PT_UPDATE`] is implemented (the others give `-ENOSYS`).
//!
//! **Partial completion** (Xen's semantics): processing stops at the first
//! request that fails; requests before it are done, the failing one and
//! those after it are not, and the monitor's state is exactly as after the
//! done ones. The number done is stored at `pdone` (also on success, where
//! it is `count`), so a guest can fix or skip the failing request and
//! resubmit the rest. [`MmuBatch`] does this bookkeeping. Each request is
//! read from the vector just before it runs (so a request may rewrite a
//! later one, as a plain store into the guest's memory).
//!
//! **Continuation** (Xen's hypercall continuation): the monitor runs at
//! most [`MMU_UPDATE_PIECE`] requests per trap. When more are left (and
//! none failed) it stores the number done so far at `pdone`, sets `x0` to
//! the rest of the vector, `x1` to the count left with
//! [`MMU_UPDATE_PREEMPTED`] set, leaves `x2`, `x3` (and `x16`) as they were
//! and resumes the guest *on* its `hvc`, which re-executes at once, after
//! any interrupt or reschedule that was pending. A call whose count has
//! [`MMU_UPDATE_PREEMPTED`] set reads the number already done from `pdone`
//! and adds to it. The guest sees one call (the `hvc` wrappers treat
//! `x0..x4` as clobbered); `pdone` must stay valid until it returns. An
//! `mmu_update` inside a `multicall` is not continued: it runs whole.
//!
//! **Fast path**: the common update (an aligned [`MMU_NORMAL_PT_UPDATE`]
//! of a validated level-3 table, an invalid entry or page replaced by an
//! invalid entry or page of the domain's RAM) is validated with a few
//! comparisons; runs of them into one table look the table up once, and
//! the vector is translated once per page. Results are exactly those of
//! the rules below. TLB maintenance is the guest's, as in Xen: after
//! changing or removing a valid entry, flush (`MMUEXT_TLB_FLUSH_*`,
//! `MMUEXT_INVLPG_*`, or `tlbi` at EL1); the monitor flushes only its own
//! stage-2 changes (a frame becoming or ceasing to be a table).
//!
//! # Direct stores
//!
//! Table frames are read-only in stage 2. With the stage-1 MMU off, a store
//! into a validated table traps to the monitor, which emulates 64-bit
//! stores of general-purpose registers to 8-byte aligned addresses: `str`
//! (any addressing mode the syndrome describes, and pre-/post-index
//! writeback, which it decodes from the instruction) and `stp` of two
//! descriptors (signed offset, pre- or post-index), which must lie in one
//! page. Each descriptor is validated and done like a one-entry update
//! (slower than a batch); a pair is all or nothing. The base register is
//! written back as the instruction would. Refused with a permission fault
//! (data abort, DFSC 0x0f) at EL1: any other access (narrower stores,
//! SIMD registers, SP as the base, writeback into a stored register), or
//! a refused value.
//! With the MMU on, tables are mapped read-only, so a store faults in the
//! guest's own stage 1 first.
//!
//! Results: 0 on success, else the failing request's error:
//! `-EINVAL` (bad command bits, misaligned `ptr`, reserved bits or a
//! reserved encoding in `val`, misaligned block output address, executable
//! Device memory), `-EPERM`
//! (`ptr` or a mapped frame outside the domain's RAM; a writable mapping of
//! a table frame; a table entry pointing at a frame mapped writable or in
//! use as a table of another level), `-ENOSYS` (unimplemented command), `-EFAULT` (request `i` is not
//! readable: the vector crosses out of the guest's memory). Checked before
//! anything is done (with 0 done): `count > MMU_BATCH_MAX` (flag aside) → `-EINVAL`;
//! `foreigndom != DOMID_SELF` → `-EPERM`; `pdone` not writable → `-EFAULT`.
//!
//! # `mmuext_op(ops, count, pdone, foreigndom)`
//!
//! Same registers and partial-completion rules, with [`MmuextOp`] entries:
//!
//! | `cmd` | `arg1` | `arg2` | effect, errors |
//! |---|---|---|---|
//! | [`MMUEXT_PIN_L1_TABLE`]..[`MMUEXT_PIN_L4_TABLE`] | frame number | - | validate as a table of that level and hold it; `-EINVAL` if already pinned or an entry is invalid, `-EPERM` if foreign, mapped writable or a table of another level |
//! | [`MMUEXT_UNPIN_TABLE`] | frame number | - | release the pin; `-EINVAL` if not pinned, `-EBUSY` while it is a TTBR base |
//! | [`MMUEXT_NEW_BASEPTR`] | frame number | ASID | `TTBR0_EL1 := ASID << 48 \| frame << 12`; the frame must be a pinned level-0 table (`-EINVAL`) |
//! | [`MMUEXT_NEW_TTBR1_BASEPTR`] | frame number | ASID | the same for `TTBR1_EL1` |
//! | [`MMUEXT_TLB_FLUSH_LOCAL`], [`MMUEXT_TLB_FLUSH_ALL`] | - | - | invalidate the domain's stage-1 TLB entries |
//! | [`MMUEXT_INVLPG_LOCAL`], [`MMUEXT_INVLPG_ALL`] | virtual address | - | invalidate one VA (all ASIDs) |
//!
//! Other Xen commands return `-ENOSYS`.
//!
//! # Example: build and switch to a new address space
//!
//! ```
//! use hypercall_abi::mmu::{self, desc, MmuBatch, MmuextOp, MmuUpdate, Submit};
//! use hypercall_abi::Errno;
//!
//! // A guest supplies the hypercalls; here a stand-in that accepts all.
//! struct Hv;
//! impl Submit for Hv {
//!     fn mmu_update(&mut self, reqs: &[MmuUpdate]) -> (usize, Result<(), Errno>) { (reqs.len(), Ok(())) }
//!     fn mmuext_op(&mut self, ops: &[MmuextOp]) -> (usize, Result<(), Errno>) { (ops.len(), Ok(())) }
//! }
//!
//! // Frames the guest chose for its four tables (zeroed, mapped read-only
//! // or not at all), and a data page.
//! let (l0, l1, l2, l3, data) = (0x4040_0000u64, 0x4040_1000, 0x4040_2000, 0x4040_3000, 0x4050_0000);
//! let va = 0x0000_0080_0000_0000u64;
//!
//! // 1. Pin the empty root: from now on its entries change only by request.
//! mmu::pin(&mut Hv, l0, 0).unwrap();
//! // 2. Queue the entries from the bottom up and send them in one call.
//! let mut b: MmuBatch<Hv, 16> = MmuBatch::new(Hv);
//! b.push(MmuUpdate::normal(l3 + 8 * desc::index(va, 3), desc::page(data, desc::RW_EL1 | desc::NORMAL))).unwrap();
//! b.push(MmuUpdate::normal(l2 + 8 * desc::index(va, 2), desc::table(l3))).unwrap();
//! b.push(MmuUpdate::normal(l1 + 8 * desc::index(va, 1), desc::table(l2))).unwrap();
//! b.push(MmuUpdate::normal(l0 + 8 * desc::index(va, 0), desc::table(l1))).unwrap();
//! b.flush().unwrap();
//! // 3. Make it TTBR0 with ASID 1.
//! mmu::new_base(b.submitter(), l0, 1, false).unwrap();
//! ```
//!
//! (The updates into `l1`, `l2`, `l3` are plain stores while those frames
//! are not yet tables; the last one links them in and validates them.)

#[allow(unused_imports)] // used by intra-doc links
use crate::nr;
use crate::Errno;
use core::mem::size_of;

/// `MMU_NORMAL_PT_UPDATE`: `*ptr = val`, validated if `ptr` is in a table.
pub const MMU_NORMAL_PT_UPDATE: u64 = 0;
/// `MMU_MACHPHYS_UPDATE` (x86 M2P update): not implemented, `-ENOSYS`.
pub const MMU_MACHPHYS_UPDATE: u64 = 1;
/// `MMU_PT_UPDATE_PRESERVE_AD`: not implemented, `-ENOSYS`.
pub const MMU_PT_UPDATE_PRESERVE_AD: u64 = 2;
/// `MMU_PT_UPDATE_NO_TRANSLATE`: not implemented, `-ENOSYS`.
pub const MMU_PT_UPDATE_NO_TRANSLATE: u64 = 3;
/// Mask of the command bits in [`MmuUpdate::ptr`].
pub const MMU_CMD_MASK: u64 = 3;

/// `MMUEXT_PIN_L1_TABLE`: pin an AArch64 level-3 table.
pub const MMUEXT_PIN_L1_TABLE: u32 = 0;
/// `MMUEXT_PIN_L2_TABLE`: pin an AArch64 level-2 table.
pub const MMUEXT_PIN_L2_TABLE: u32 = 1;
/// `MMUEXT_PIN_L3_TABLE`: pin an AArch64 level-1 table.
pub const MMUEXT_PIN_L3_TABLE: u32 = 2;
/// `MMUEXT_PIN_L4_TABLE`: pin an AArch64 level-0 table (a root).
pub const MMUEXT_PIN_L4_TABLE: u32 = 3;
/// `MMUEXT_UNPIN_TABLE`: release a pin.
pub const MMUEXT_UNPIN_TABLE: u32 = 4;
/// `MMUEXT_NEW_BASEPTR`: load `TTBR0_EL1` with a pinned level-0 table.
pub const MMUEXT_NEW_BASEPTR: u32 = 5;
/// `MMUEXT_TLB_FLUSH_LOCAL`: invalidate the calling vCPU's stage-1 TLB.
pub const MMUEXT_TLB_FLUSH_LOCAL: u32 = 6;
/// `MMUEXT_INVLPG_LOCAL`: invalidate one virtual address (`arg1`).
pub const MMUEXT_INVLPG_LOCAL: u32 = 7;
/// `MMUEXT_TLB_FLUSH_MULTI` (vCPU mask): not implemented, `-ENOSYS`.
pub const MMUEXT_TLB_FLUSH_MULTI: u32 = 8;
/// `MMUEXT_INVLPG_MULTI` (vCPU mask): not implemented, `-ENOSYS`.
pub const MMUEXT_INVLPG_MULTI: u32 = 9;
/// `MMUEXT_TLB_FLUSH_ALL`: invalidate the domain's stage-1 TLB on all CPUs.
pub const MMUEXT_TLB_FLUSH_ALL: u32 = 10;
/// `MMUEXT_INVLPG_ALL`: invalidate one virtual address on all CPUs.
pub const MMUEXT_INVLPG_ALL: u32 = 11;
/// `MMUEXT_NEW_USER_BASEPTR` (x86-64 only in Xen): `-ENOSYS` here.
pub const MMUEXT_NEW_USER_BASEPTR: u32 = 15;
/// Load `TTBR1_EL1` with a pinned level-0 table (`arg2` = ASID). This ABI's
/// own command, in a range Xen does not use.
pub const MMUEXT_NEW_TTBR1_BASEPTR: u32 = 64;

/// `DOMID_SELF`: the only `foreigndom` accepted.
pub const DOMID_SELF: u64 = 0x7ff0;

/// Most requests in one `mmu_update` or `mmuext_op` call.
pub const MMU_BATCH_MAX: usize = 1024;

/// Most `mmu_update` requests the monitor runs in one trap; a longer batch
/// is continued (see "Continuation" in the module docs).
pub const MMU_UPDATE_PIECE: usize = 512;

/// Xen's `MMU_UPDATE_PREEMPTED`: set in the count of a continued
/// `mmu_update` (the monitor sets it when it continues a call; a guest does
/// not need to). The number already done is then read back from `pdone`.
pub const MMU_UPDATE_PREEMPTED: u64 = 1 << 31;

/// The pin command for AArch64 table level `level` (0..=3).
pub const fn pin_cmd(level: u8) -> Option<u32> {
    match level {
        0 => Some(MMUEXT_PIN_L4_TABLE),
        1 => Some(MMUEXT_PIN_L3_TABLE),
        2 => Some(MMUEXT_PIN_L2_TABLE),
        3 => Some(MMUEXT_PIN_L1_TABLE),
        _ => None,
    }
}

/// The AArch64 level a pin command pins, or `None` for other commands.
pub const fn pin_level(cmd: u32) -> Option<u8> {
    match cmd {
        MMUEXT_PIN_L1_TABLE => Some(3),
        MMUEXT_PIN_L2_TABLE => Some(2),
        MMUEXT_PIN_L3_TABLE => Some(1),
        MMUEXT_PIN_L4_TABLE => Some(0),
        _ => None,
    }
}

/// One `mmu_update` request (Xen's `struct mmu_update`, 16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuUpdate {
    /// Guest-physical address of the descriptor, with the command in bits 1:0.
    pub ptr: u64,
    /// The new descriptor.
    pub val: u64,
}

const _: () = assert!(size_of::<MmuUpdate>() == 16);

impl MmuUpdate {
    /// A [`MMU_NORMAL_PT_UPDATE`] of the descriptor at `desc_ipa`.
    pub const fn normal(desc_ipa: u64, val: u64) -> Self {
        Self {
            ptr: (desc_ipa & !MMU_CMD_MASK) | MMU_NORMAL_PT_UPDATE,
            val,
        }
    }
    /// The command bits.
    pub const fn cmd(&self) -> u64 {
        self.ptr & MMU_CMD_MASK
    }
    /// The descriptor address.
    pub const fn addr(&self) -> u64 {
        self.ptr & !MMU_CMD_MASK
    }
}

/// One `mmuext_op` operation (Xen's `struct mmuext_op`, 24 bytes on 64-bit).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuextOp {
    /// `MMUEXT_*` command.
    pub cmd: u32,
    /// Padding (Xen's layout: `arg1` is 8-byte aligned).
    pub pad: u32,
    /// Frame number or virtual address (see the table in the module docs).
    pub arg1: u64,
    /// ASID for the base commands; otherwise 0.
    pub arg2: u64,
}

const _: () = assert!(size_of::<MmuextOp>() == 24);

impl MmuextOp {
    /// An operation with its arguments.
    pub const fn new(cmd: u32, arg1: u64, arg2: u64) -> Self {
        Self {
            cmd,
            pad: 0,
            arg1,
            arg2,
        }
    }
}

/// How a guest issues the two hypercalls (the guest module implements it
/// with `hvc`; tests use a model). Each returns how many entries were done
/// and the error of the first one that was not, Xen-style.
pub trait Submit {
    /// `mmu_update(reqs, reqs.len(), &done, DOMID_SELF)`.
    fn mmu_update(&mut self, reqs: &[MmuUpdate]) -> (usize, Result<(), Errno>);
    /// `mmuext_op(ops, ops.len(), &done, DOMID_SELF)`.
    fn mmuext_op(&mut self, ops: &[MmuextOp]) -> (usize, Result<(), Errno>);
}

/// A single [`MmuextOp`] through `s`.
fn one(s: &mut impl Submit, op: MmuextOp) -> Result<(), Errno> {
    s.mmuext_op(&[op]).1
}

/// Pins the table at guest-physical `ipa` as an AArch64 level-`level` table.
pub fn pin(s: &mut impl Submit, ipa: u64, level: u8) -> Result<(), Errno> {
    let cmd = pin_cmd(level).ok_or(Errno::EINVAL)?;
    one(s, MmuextOp::new(cmd, ipa >> 12, 0))
}

/// Unpins the table at guest-physical `ipa`.
pub fn unpin(s: &mut impl Submit, ipa: u64) -> Result<(), Errno> {
    one(s, MmuextOp::new(MMUEXT_UNPIN_TABLE, ipa >> 12, 0))
}

/// Makes the pinned level-0 table at `ipa` the base of TTBR0 (or TTBR1 if
/// `ttbr1`) with `asid`.
pub fn new_base(s: &mut impl Submit, ipa: u64, asid: u16, ttbr1: bool) -> Result<(), Errno> {
    let cmd = if ttbr1 {
        MMUEXT_NEW_TTBR1_BASEPTR
    } else {
        MMUEXT_NEW_BASEPTR
    };
    one(s, MmuextOp::new(cmd, ipa >> 12, asid as u64))
}

/// Invalidates the calling vCPU's stage-1 TLB entries.
pub fn flush_tlb(s: &mut impl Submit) -> Result<(), Errno> {
    one(s, MmuextOp::new(MMUEXT_TLB_FLUSH_LOCAL, 0, 0))
}

/// Invalidates one virtual address.
pub fn invlpg(s: &mut impl Submit, va: u64) -> Result<(), Errno> {
    one(s, MmuextOp::new(MMUEXT_INVLPG_LOCAL, va, 0))
}

/// Why [`MmuBatch::flush`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchError {
    /// The monitor's error for the first request not done.
    pub errno: Errno,
    /// That request; it is still at the front of the queue.
    pub failed: MmuUpdate,
}

/// A queue of up to `N` updates sent in one `mmu_update` call: when full,
/// [`push`](MmuBatch::push) sends it first; [`flush`](MmuBatch::flush)
/// sends what is queued. After a failure the requests done are gone, the
/// failing one and those after it stay queued, so the caller can
/// [`skip`](MmuBatch::skip) the failing one (or [`clear`](MmuBatch::clear))
/// and flush again.
pub struct MmuBatch<S: Submit, const N: usize> {
    sub: S,
    q: [MmuUpdate; N],
    len: usize,
    sent: u64,
    calls: u64,
}

impl<S: Submit, const N: usize> MmuBatch<S, N> {
    /// An empty batch that submits through `sub`.
    pub fn new(sub: S) -> Self {
        Self {
            sub,
            q: [MmuUpdate::default(); N],
            len: 0,
            sent: 0,
            calls: 0,
        }
    }
    /// Queues `u`, sending the full queue first if needed.
    pub fn push(&mut self, u: MmuUpdate) -> Result<(), BatchError> {
        if self.len == N {
            self.flush()?;
        }
        self.q[self.len] = u;
        self.len += 1;
        Ok(())
    }
    /// Sends every queued request (nothing if empty).
    pub fn flush(&mut self) -> Result<(), BatchError> {
        if self.len == 0 {
            return Ok(());
        }
        let (done, r) = self.sub.mmu_update(&self.q[..self.len]);
        self.calls += 1;
        let done = done.min(self.len);
        self.sent += done as u64;
        self.q.copy_within(done..self.len, 0);
        self.len -= done;
        match r {
            Ok(()) if self.len == 0 => Ok(()),
            Ok(()) => Err(BatchError {
                errno: Errno::EIO,
                failed: self.q[0],
            }),
            Err(errno) => Err(BatchError {
                errno,
                failed: self.q[0],
            }),
        }
    }
    /// Drops the request at the front of the queue (after a failure).
    pub fn skip(&mut self) {
        if self.len > 0 {
            self.q.copy_within(1..self.len, 0);
            self.len -= 1;
        }
    }
    /// Drops every queued request.
    pub fn clear(&mut self) {
        self.len = 0;
    }
    /// Requests queued and not sent.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Requests the monitor has done so far, and hypercalls made.
    pub fn stats(&self) -> (u64, u64) {
        (self.sent, self.calls)
    }
    /// The submitter, for [`pin`], [`new_base`] and friends.
    pub fn submitter(&mut self) -> &mut S {
        &mut self.sub
    }
}

/// AArch64 stage-1 descriptor bits (4 KiB granule) for building requests.
pub mod desc {
    /// Valid.
    pub const VALID: u64 = 1 << 0;
    /// Table (levels 0-2) or page (level 3); clear = block.
    pub const TABLE_OR_PAGE: u64 = 1 << 1;
    /// `AttrIndx` field shift (bits 4:2).
    pub const ATTR_SHIFT: u32 = 2;
    /// `NS` (must be 0).
    pub const NS: u64 = 1 << 5;
    /// `AP[1]`: EL0 may access.
    pub const AP_EL0: u64 = 1 << 6;
    /// `AP[2]`: read-only.
    pub const AP_RO: u64 = 1 << 7;
    /// Inner shareable.
    pub const SH_INNER: u64 = 3 << 8;
    /// Access flag.
    pub const AF: u64 = 1 << 10;
    /// Not global (ASID-tagged).
    pub const NG: u64 = 1 << 11;
    /// `DBM` (must be 0).
    pub const DBM: u64 = 1 << 51;
    /// Contiguous hint (must be 0).
    pub const CONTIGUOUS: u64 = 1 << 52;
    /// Privileged execute-never.
    pub const PXN: u64 = 1 << 53;
    /// Unprivileged execute-never.
    pub const UXN: u64 = 1 << 54;
    /// Output-address bits of a descriptor (48-bit).
    pub const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

    /// Normal memory: `AttrIndx = 0` with [`crate::mmu::MAIR_EL1_PV`],
    /// inner shareable, access flag set.
    pub const NORMAL: u64 = SH_INNER | AF;
    /// EL1 read-write, EL0 none, never executable.
    pub const RW_EL1: u64 = PXN | UXN;
    /// EL1 read-only, EL0 none, never executable.
    pub const RO_EL1: u64 = AP_RO | PXN | UXN;
    /// EL1 read-only executable, EL0 none.
    pub const RX_EL1: u64 = AP_RO | UXN;
    /// EL0 and EL1 read-write, never executable.
    pub const RW_EL0: u64 = AP_EL0 | NG | PXN | UXN;
    /// EL0 read-only executable (EL1 read-only, not executable).
    pub const RX_EL0: u64 = AP_EL0 | AP_RO | NG | PXN;

    /// A table descriptor pointing at the table at `ipa`.
    pub const fn table(ipa: u64) -> u64 {
        (ipa & ADDR_MASK) | VALID | TABLE_OR_PAGE
    }
    /// A level-3 page descriptor for the frame at `ipa` with `attrs`.
    pub const fn page(ipa: u64, attrs: u64) -> u64 {
        (ipa & ADDR_MASK) | attrs | VALID | TABLE_OR_PAGE
    }
    /// A level-1 or level-2 block descriptor for `ipa` with `attrs`.
    pub const fn block(ipa: u64, attrs: u64) -> u64 {
        (ipa & ADDR_MASK) | attrs | VALID
    }
    /// Index of `va` in a table of `level` (0..=3), 0..512.
    pub const fn index(va: u64, level: u32) -> u64 {
        (va >> (12 + 9 * (3 - level))) & 0x1ff
    }
}

/// A `TCR_EL1` value the monitor accepts: 48-bit VAs and 4 KiB granule in
/// both halves, write-back inner-shareable walks, 16-bit ASIDs taken from
/// TTBR0, 40-bit intermediate physical addresses.
pub const TCR_EL1_PV: u64 = 16                 // T0SZ
    | (0b01 << 8) | (0b01 << 10) | (0b11 << 12) // IRGN0, ORGN0, SH0
    | (16 << 16)                               // T1SZ
    | (0b01 << 24) | (0b01 << 26) | (0b11 << 28) // IRGN1, ORGN1, SH1
    | (0b10 << 30)                             // TG1 = 4 KiB
    | (0b010 << 32)                            // IPS = 40 bits
    | (1 << 36); // AS: 16-bit ASIDs

/// A `MAIR_EL1` value the monitor accepts: index 0 Normal write-back
/// (`0xff`), index 1 Device-nGnRE (`0x04`), the rest Device-nGnRnE.
pub const MAIR_EL1_PV: u64 = 0xff | (0x04 << 8);
