//! The batched calls against a simulated guest whose tables live in the
//! same memory as its request vectors.

use super::*;
use crate::hypercall::sim::SimGuest;
use crate::hypercall::{dispatch, Action};
use crate::pvmmu::sim::SimEnv;
use crate::pvmmu::{MmuEnv, PvMmu, Type, Words};
use hypercall_abi::mmu::desc as d;
use hypercall_abi::mmu::MmuUpdate;
use hypercall_abi::multicall::MulticallEntry;

const B: u64 = 0x4000_0000;
const SIZE: usize = 1 << 20;
/// Where the tests put request vectors and `pdone`.
const REQS: u64 = B + 0x8_0000;
const PDONE: u64 = B + 0x7_fff0;

/// A guest whose memory is words ([`SimEnv`], so that request vectors and
/// tables are read in place as on the machine) seen identity-mapped.
struct MmuGuest {
    g: SimGuest,
    mem: SimEnv,
    m: PvMmu,
    ttbr: [u64; 2],
    flushes: Vec<Option<u64>>,
    /// Whether the environment reads request vectors in place.
    in_place: bool,
    /// The calling vCPU.
    vcpu: usize,
}

/// The PV MMU's view: the same memory, request vectors in place.
struct MemEnv<'a> {
    mem: &'a SimEnv,
    in_place: bool,
}

impl MmuEnv for MemEnv<'_> {
    fn read(&self, ipa: u64) -> u64 {
        self.mem.read(ipa)
    }
    fn write(&self, ipa: u64, val: u64) {
        self.mem.write(ipa, val)
    }
    fn protect(&self, ipa: u64, table: bool) {
        self.mem.protect(ipa, table)
    }
    fn frame(&self, ipa: u64) -> Option<&Words> {
        self.mem.frame(ipa)
    }
    fn vector_ipa(&self, gva: u64) -> Option<u64> {
        (self.in_place && gva >= B && gva < B + SIZE as u64).then_some(gva)
    }
}

impl MmuGuest {
    fn range(&self, gva: u64, len: usize) -> Result<(), Errno> {
        let end = gva.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        if gva < B || end > B + SIZE as u64 {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }
    /// The guest's stores (the monitor's `Guest::write` too): plain bytes.
    fn store(&self, gva: u64, data: &[u8]) {
        for (i, &byte) in data.iter().enumerate() {
            let a = gva + i as u64;
            let w = self.mem.read(a & !7);
            let sh = 8 * (a % 8);
            self.mem
                .write(a & !7, (w & !(0xff << sh)) | (byte as u64) << sh);
        }
    }
}

impl Guest for MmuGuest {
    fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.range(gva, buf.len())?;
        for (i, b) in buf.iter_mut().enumerate() {
            let a = gva + i as u64;
            *b = (self.mem.read(a & !7) >> (8 * (a % 8))) as u8;
        }
        Ok(())
    }
    fn write(&mut self, gva: u64, data: &[u8]) -> Result<(), Errno> {
        self.range(gva, data.len())?;
        self.store(gva, data);
        Ok(())
    }
    fn console(&mut self, bytes: &[u8]) {
        self.g.console(bytes)
    }
    fn handle(&self) -> [u8; 16] {
        self.g.handle()
    }
    fn with_mmu(&mut self, f: &mut dyn FnMut(&mut PvMmu, &mut dyn MmuEnv)) -> Result<(), Errno> {
        let mut env = MemEnv {
            mem: &self.mem,
            in_place: self.in_place,
        };
        f(&mut self.m, &mut env);
        Ok(())
    }
    fn vcpu(&self) -> usize {
        self.vcpu
    }
    fn load_ttbr(&mut self, which: Ttbr, val: u64) {
        self.ttbr[which as usize] = val;
    }
    fn tlb_flush(&mut self, va: Option<u64>) {
        self.flushes.push(va);
    }
}

fn guest() -> MmuGuest {
    MmuGuest {
        g: SimGuest::new(B, 0),
        mem: SimEnv::new(B, SIZE as u64),
        m: PvMmu::new(B, SIZE as u64, 2),
        ttbr: [0; 2],
        flushes: Vec::new(),
        in_place: true,
        vcpu: 0,
    }
}

fn fr(i: u64) -> u64 {
    B + i * 4096
}

fn put_updates(g: &mut MmuGuest, at: u64, reqs: &[MmuUpdate]) {
    for (i, r) in reqs.iter().enumerate() {
        g.write(at + 16 * i as u64, &r.ptr.to_le_bytes()).unwrap();
        g.write(at + 16 * i as u64 + 8, &r.val.to_le_bytes())
            .unwrap();
    }
}

fn put_ops(g: &mut MmuGuest, at: u64, ops: &[MmuextOp]) {
    for (i, o) in ops.iter().enumerate() {
        let a = at + 24 * i as u64;
        g.write(a, &(o.cmd as u64).to_le_bytes()).unwrap();
        g.write(a + 8, &o.arg1.to_le_bytes()).unwrap();
        g.write(a + 16, &o.arg2.to_le_bytes()).unwrap();
    }
}

fn call(g: &mut MmuGuest, nr: u64, args: [u64; 5]) -> i64 {
    match dispatch(g, nr, args) {
        Action::Return(v) => v,
        a => panic!("{a:?}"),
    }
}

fn pdone(g: &MmuGuest) -> u32 {
    let mut b = [0; 4];
    g.read(PDONE, &mut b).unwrap();
    u32::from_le_bytes(b)
}

fn mem(g: &MmuGuest, ipa: u64) -> u64 {
    let mut b = [0; 8];
    g.read(ipa, &mut b).unwrap();
    u64::from_le_bytes(b)
}

/// Root 0 -> L1 1 -> L2 2 -> L3 3, built with one mmu_update after the
/// root is pinned, then made TTBR0 with ASID 7.
fn build(g: &mut MmuGuest) {
    put_ops(
        g,
        REQS,
        &[MmuextOp::new(abi::MMUEXT_PIN_L4_TABLE, 0x4_0000, 0)],
    );
    assert_eq!(
        call(g, nr::MMUEXT_OP, [REQS, 1, PDONE, abi::DOMID_SELF, 0]),
        0
    );
    let reqs = [
        MmuUpdate::normal(fr(3), d::page(fr(20), d::RW_EL1 | d::NORMAL)),
        MmuUpdate::normal(fr(2), d::table(fr(3))),
        MmuUpdate::normal(fr(1), d::table(fr(2))),
        MmuUpdate::normal(fr(0), d::table(fr(1))),
    ];
    put_updates(g, REQS, &reqs);
    assert_eq!(
        call(g, nr::MMU_UPDATE, [REQS, 4, PDONE, abi::DOMID_SELF, 0]),
        0
    );
    assert_eq!(pdone(g), 4);
    put_ops(
        g,
        REQS,
        &[
            MmuextOp::new(abi::MMUEXT_NEW_BASEPTR, 0x4_0000, 7),
            MmuextOp::new(abi::MMUEXT_TLB_FLUSH_LOCAL, 0, 0),
        ],
    );
    assert_eq!(
        call(g, nr::MMUEXT_OP, [REQS, 2, PDONE, abi::DOMID_SELF, 0]),
        0
    );
    assert_eq!(pdone(g), 2);
}

#[test]
fn a_batch_builds_and_installs_an_address_space() {
    let mut g = guest();
    build(&mut g);
    assert_eq!(g.ttbr[0], 7 << 48 | fr(0));
    assert_eq!(g.flushes, vec![None]);
    assert_eq!(g.mem.protected().len(), 4);
    assert_eq!(g.m.frame(fr(20)).unwrap().ty, Type::Writable);
    assert_eq!(g.m.stats.updates, 4);
}

#[test]
fn a_failing_request_stops_the_batch_and_reports_how_many_were_done() {
    let mut g = guest();
    build(&mut g);
    let reqs = [
        MmuUpdate::normal(fr(3) + 8, d::page(fr(21), d::RO_EL1)),
        MmuUpdate::normal(fr(3) + 16, d::page(fr(22), d::RW_EL1)),
        MmuUpdate::normal(fr(3) + 24, d::page(fr(2), d::RW_EL1)), // a table, writable
        MmuUpdate::normal(fr(3) + 32, d::page(fr(23), d::RW_EL1)),
    ];
    put_updates(&mut g, REQS, &reqs);
    assert_eq!(
        call(&mut g, nr::MMU_UPDATE, [REQS, 4, PDONE, abi::DOMID_SELF, 0]),
        -1
    );
    assert_eq!(pdone(&g), 2);
    assert_eq!(mem(&g, fr(3) + 16), reqs[1].val);
    assert_eq!(mem(&g, fr(3) + 24), 0, "the failing request is not done");
    assert_eq!(mem(&g, fr(3) + 32), 0, "nor those after it");
    // Resume after the failing one.
    assert_eq!(
        call(
            &mut g,
            nr::MMU_UPDATE,
            [REQS + 48, 1, PDONE, abi::DOMID_SELF, 0]
        ),
        0
    );
    assert_eq!(mem(&g, fr(3) + 32), reqs[3].val);
}

#[test]
fn a_request_vector_crossing_out_of_memory() {
    let mut g = guest();
    build(&mut g);
    let at = B + SIZE as u64 - 32;
    let reqs = [
        MmuUpdate::normal(fr(3) + 8, d::page(fr(21), d::RO_EL1)),
        MmuUpdate::normal(fr(3) + 16, d::page(fr(22), d::RO_EL1)),
    ];
    put_updates(&mut g, at, &reqs);
    assert_eq!(
        call(&mut g, nr::MMU_UPDATE, [at, 3, PDONE, abi::DOMID_SELF, 0]),
        -14
    );
    assert_eq!(pdone(&g), 2);
    assert_eq!(mem(&g, fr(3) + 16), reqs[1].val);
    // A vector whose address arithmetic wraps.
    assert_eq!(
        call(
            &mut g,
            nr::MMU_UPDATE,
            [u64::MAX - 15, 2, PDONE, abi::DOMID_SELF, 0]
        ),
        -14
    );
    assert_eq!(pdone(&g), 0);
}

#[test]
fn arguments_checked_before_anything_is_done() {
    let mut g = guest();
    build(&mut g);
    g.write(PDONE, &0xdead_beefu32.to_le_bytes()).unwrap();
    let too_many = abi::MMU_BATCH_MAX as u64 + 1;
    assert_eq!(
        call(
            &mut g,
            nr::MMU_UPDATE,
            [REQS, too_many, PDONE, abi::DOMID_SELF, 0]
        ),
        -22
    );
    assert_eq!(
        call(
            &mut g,
            nr::MMU_UPDATE,
            [REQS, u64::MAX, PDONE, abi::DOMID_SELF, 0]
        ),
        -22
    );
    assert_eq!(
        call(&mut g, nr::MMU_UPDATE, [REQS, 1, PDONE, 0, 0]),
        -1,
        "foreigndom"
    );
    assert_eq!(
        call(&mut g, nr::MMUEXT_OP, [REQS, 1, PDONE, 3, 0]),
        -1,
        "foreigndom"
    );
    assert_eq!(pdone(&g), 0xdead_beef, "pdone untouched");
    put_updates(
        &mut g,
        REQS,
        &[MmuUpdate::normal(fr(3) + 8, d::page(fr(21), d::RO_EL1))],
    );
    assert_eq!(
        call(&mut g, nr::MMU_UPDATE, [REQS, 1, B - 8, abi::DOMID_SELF, 0]),
        -14,
        "pdone outside"
    );
    assert_eq!(mem(&g, fr(3) + 8), 0, "nothing done");
    // A null pdone is fine.
    assert_eq!(
        call(&mut g, nr::MMU_UPDATE, [REQS, 1, 0, abi::DOMID_SELF, 0]),
        0
    );
    assert_eq!(mem(&g, fr(3) + 8), d::page(fr(21), d::RO_EL1));
}

#[test]
fn extended_operations_and_their_errors() {
    let mut g = guest();
    build(&mut g);
    put_ops(
        &mut g,
        REQS,
        &[
            MmuextOp::new(abi::MMUEXT_INVLPG_LOCAL, 0x1234_5000, 0),
            MmuextOp::new(abi::MMUEXT_UNPIN_TABLE, 0x4_0000, 0), // the live TTBR0 base
            MmuextOp::new(abi::MMUEXT_TLB_FLUSH_ALL, 0, 0),
        ],
    );
    assert_eq!(
        call(&mut g, nr::MMUEXT_OP, [REQS, 3, PDONE, abi::DOMID_SELF, 0]),
        -16
    );
    assert_eq!(pdone(&g), 1);
    assert_eq!(g.flushes, vec![None, Some(0x1234_5000)]);
    let bad = [
        (
            MmuextOp::new(abi::MMUEXT_NEW_BASEPTR, 0x4_0001, 0),
            -22,
            "an unvalidated table",
        ),
        (
            MmuextOp::new(abi::MMUEXT_NEW_TTBR1_BASEPTR, 0x4_0000, 1 << 16),
            -22,
            "ASID too big",
        ),
        (
            MmuextOp::new(abi::MMUEXT_PIN_L1_TABLE, 0x8_0000, 0),
            -1,
            "a foreign frame",
        ),
        (
            MmuextOp::new(abi::MMUEXT_PIN_L1_TABLE, u64::MAX, 0),
            -1,
            "a frame number that overflows",
        ),
        (
            MmuextOp::new(abi::MMUEXT_UNPIN_TABLE, 0x4_0001, 0),
            -22,
            "not pinned",
        ),
        (
            MmuextOp::new(abi::MMUEXT_NEW_USER_BASEPTR, 0x4_0000, 0),
            -38,
            "x86 only",
        ),
        (MmuextOp::new(99, 0, 0), -38, "unknown"),
    ];
    for (op, want, why) in bad {
        put_ops(&mut g, REQS, &[op]);
        assert_eq!(
            call(&mut g, nr::MMUEXT_OP, [REQS, 1, PDONE, abi::DOMID_SELF, 0]),
            want,
            "{why}"
        );
        assert_eq!(pdone(&g), 0, "{why}");
    }
    assert_eq!(g.ttbr, [7 << 48 | fr(0), 0]);
    // TTBR1 gets the same root; then both move to a new root and the old
    // one can be unpinned.
    put_ops(
        &mut g,
        REQS,
        &[MmuextOp::new(abi::MMUEXT_NEW_TTBR1_BASEPTR, 0x4_0000, 2)],
    );
    assert_eq!(
        call(&mut g, nr::MMUEXT_OP, [REQS, 1, PDONE, abi::DOMID_SELF, 0]),
        0
    );
    assert_eq!(g.ttbr[1], 2 << 48 | fr(0));
    put_ops(
        &mut g,
        REQS,
        &[
            MmuextOp::new(abi::MMUEXT_PIN_L4_TABLE, 0x4_0009, 0),
            MmuextOp::new(abi::MMUEXT_NEW_BASEPTR, 0x4_0009, 0),
            MmuextOp::new(abi::MMUEXT_NEW_TTBR1_BASEPTR, 0x4_0009, 0),
            MmuextOp::new(abi::MMUEXT_UNPIN_TABLE, 0x4_0000, 0),
        ],
    );
    assert_eq!(
        call(&mut g, nr::MMUEXT_OP, [REQS, 4, PDONE, abi::DOMID_SELF, 0]),
        0
    );
    assert_eq!(g.mem.protected().len(), 1, "the old tree is released");
}

#[test]
fn multicall_runs_every_entry_and_reports_each_result() {
    let mut g = guest();
    build(&mut g);
    put_updates(
        &mut g,
        REQS,
        &[MmuUpdate::normal(fr(3) + 8, d::page(fr(2), d::RW_EL1))],
    );
    put_ops(
        &mut g,
        REQS + 0x100,
        &[MmuextOp::new(abi::MMUEXT_TLB_FLUSH_LOCAL, 0, 0)],
    );
    let calls = [
        MulticallEntry::new(nr::MMU_UPDATE, [REQS, 1, 0, abi::DOMID_SELF, 0, 0]),
        MulticallEntry::new(nr::MMUEXT_OP, [REQS + 0x100, 1, 0, abi::DOMID_SELF, 0, 0]),
        MulticallEntry::new(nr::MULTICALL, [0; 6]),
        MulticallEntry::new(nr::SCHED_OP, [2, 0, 0, 0, 0, 0]),
        MulticallEntry::new(nr::XEN_VERSION, [0; 6]),
    ];
    let at = REQS + 0x200;
    for (i, c) in calls.iter().enumerate() {
        let mut b = [0u8; 64];
        b[0..8].copy_from_slice(&c.op.to_le_bytes());
        b[8..16].copy_from_slice(&c.result.to_le_bytes());
        for k in 0..6 {
            b[16 + 8 * k..24 + 8 * k].copy_from_slice(&c.args[k].to_le_bytes());
        }
        g.write(at + 64 * i as u64, &b).unwrap();
    }
    assert_eq!(call(&mut g, nr::MULTICALL, [at, 5, 0, 0, 0]), 0);
    let results: Vec<i64> = (0..5).map(|i| mem(&g, at + 64 * i + 8) as i64).collect();
    assert_eq!(
        results,
        vec![-1, 0, -38, -38, crate::hypercall::VERSION as i64]
    );
    assert_eq!(g.flushes.len(), 2);
    assert_eq!(
        call(
            &mut g,
            nr::MULTICALL,
            [at, MULTICALL_MAX as u64 + 1, 0, 0, 0]
        ),
        -22
    );
    // A list that runs out of memory: the first entry still ran.
    let end = B + SIZE as u64 - 64;
    g.write(end, &nr::MMUEXT_OP.to_le_bytes()).unwrap();
    g.write(end + 8, &MulticallEntry::NOT_RUN.to_le_bytes())
        .unwrap();
    for (k, v) in [REQS + 0x100, 1, 0, abi::DOMID_SELF].iter().enumerate() {
        g.write(end + 16 + 8 * k as u64, &v.to_le_bytes()).unwrap();
    }
    assert_eq!(call(&mut g, nr::MULTICALL, [end, 2, 0, 0, 0]), -14);
    assert_eq!(mem(&g, end + 8), 0);
    assert_eq!(g.flushes.len(), 3);
}

#[test]
fn without_a_pv_mmu_the_calls_do_not_exist() {
    let mut g = SimGuest::new(B, 4096);
    for n in [nr::MMU_UPDATE, nr::MMUEXT_OP] {
        assert_eq!(
            dispatch(&mut g, n, [B, 1, 0, abi::DOMID_SELF, 0]),
            Action::Return(-38)
        );
    }
}

fn ops(g: &mut MmuGuest, list: &[MmuextOp]) -> i64 {
    put_ops(g, REQS, list);
    call(
        g,
        nr::MMUEXT_OP,
        [REQS, list.len() as u64, PDONE, abi::DOMID_SELF, 0],
    )
}

#[test]
fn bases_are_per_vcpu() {
    let mut g = guest();
    build(&mut g); // vCPU 0: TTBR0 = root 0
    let root0 = 0x4_0000;
    // A second root sharing the level-1 table.
    put_updates(&mut g, REQS, &[MmuUpdate::normal(fr(9), d::table(fr(1)))]);
    assert_eq!(
        call(&mut g, nr::MMU_UPDATE, [REQS, 1, PDONE, abi::DOMID_SELF, 0]),
        0
    );
    assert_eq!(
        ops(
            &mut g,
            &[MmuextOp::new(abi::MMUEXT_PIN_L4_TABLE, 0x4_0009, 0)]
        ),
        0
    );
    // vCPU 1 takes root 0 for TTBR0 and TTBR1: three base references.
    g.vcpu = 1;
    assert_eq!(
        ops(
            &mut g,
            &[
                MmuextOp::new(abi::MMUEXT_NEW_BASEPTR, root0, 0),
                MmuextOp::new(abi::MMUEXT_NEW_TTBR1_BASEPTR, root0, 0),
            ]
        ),
        0
    );
    assert_eq!(g.m.frame(fr(0)).unwrap().count, 4, "pin and three bases");
    assert_eq!(
        (
            g.m.base(0, Ttbr::Ttbr0),
            g.m.base(1, Ttbr::Ttbr0),
            g.m.base(1, Ttbr::Ttbr1)
        ),
        (Some(fr(0)), Some(fr(0)), Some(fr(0)))
    );
    // vCPU 0 moves to root 9: root 0 is still vCPU 1's base.
    g.vcpu = 0;
    assert_eq!(
        ops(
            &mut g,
            &[MmuextOp::new(abi::MMUEXT_NEW_BASEPTR, 0x4_0009, 0)]
        ),
        0
    );
    assert_eq!(
        ops(&mut g, &[MmuextOp::new(abi::MMUEXT_UNPIN_TABLE, root0, 0)]),
        -16,
        "vCPU 1's bases"
    );
    // vCPU 1 moves both: now root 0 can go, and its tree stays alive
    // through root 9 (the shared level-1 table).
    g.vcpu = 1;
    assert_eq!(
        ops(
            &mut g,
            &[
                MmuextOp::new(abi::MMUEXT_NEW_BASEPTR, 0x4_0009, 0),
                MmuextOp::new(abi::MMUEXT_NEW_TTBR1_BASEPTR, 0x4_0009, 0),
            ]
        ),
        0
    );
    assert_eq!(g.m.frame(fr(9)).unwrap().count, 4);
    assert_eq!(
        ops(&mut g, &[MmuextOp::new(abi::MMUEXT_UNPIN_TABLE, root0, 0)]),
        0
    );
    assert_eq!(g.m.frame(fr(0)).unwrap().count, 0);
    assert_eq!(
        g.m.frame(fr(1)).unwrap().count,
        1,
        "shared level 1, held by root 9"
    );
    assert_eq!(
        ops(
            &mut g,
            &[MmuextOp::new(abi::MMUEXT_UNPIN_TABLE, 0x4_0009, 0)]
        ),
        -16
    );
    // A vCPU index the domain does not have.
    g.vcpu = 2;
    assert_eq!(
        ops(
            &mut g,
            &[MmuextOp::new(abi::MMUEXT_NEW_BASEPTR, 0x4_0009, 0)]
        ),
        -22
    );
    assert_eq!(g.m.frame(fr(9)).unwrap().count, 4, "unchanged");
}

/// `n` requests at REQS that write slot `i % 512` of the level-3 table with
/// read-only pages of frame 30 + i / 512.
fn long_batch(g: &mut MmuGuest, n: usize) -> Vec<MmuUpdate> {
    let reqs: Vec<MmuUpdate> = (0..n as u64)
        .map(|i| MmuUpdate::normal(fr(3) + 8 * (i % 512), d::page(fr(30 + i / 512), d::RO_EL1)))
        .collect();
    put_updates(g, REQS, &reqs);
    reqs
}

#[test]
fn a_long_batch_is_continued_the_xen_way() {
    let mut g = guest();
    build(&mut g);
    let n = abi::MMU_BATCH_MAX;
    long_batch(&mut g, n);
    let first = dispatch(
        &mut g,
        nr::MMU_UPDATE,
        [REQS, n as u64, PDONE, abi::DOMID_SELF, 0],
    );
    let piece = abi::MMU_UPDATE_PIECE as u64;
    let rest = [
        REQS + 16 * piece,
        (n as u64 - piece) | abi::MMU_UPDATE_PREEMPTED,
        PDONE,
        abi::DOMID_SELF,
    ];
    assert_eq!(first, Action::Continue(rest));
    assert_eq!(pdone(&g), piece as u32, "progress so far");
    assert_eq!(mem(&g, fr(3)), d::page(fr(30), d::RO_EL1));
    assert_eq!(g.m.stats.continued, 1);
    // The guest re-executes the hvc with the rewritten registers.
    let second = dispatch(
        &mut g,
        nr::MMU_UPDATE,
        [rest[0], rest[1], rest[2], rest[3], 0],
    );
    assert_eq!(second, Action::Return(0));
    assert_eq!(pdone(&g), n as u32, "the whole batch");
    assert_eq!(mem(&g, fr(3)), d::page(fr(31), d::RO_EL1));
    assert_eq!(g.m.stats.updates, 4 + n as u64);
    // At most a piece per trap, and no continuation for a piece's worth.
    long_batch(&mut g, piece as usize);
    assert_eq!(
        dispatch(
            &mut g,
            nr::MMU_UPDATE,
            [REQS, piece, PDONE, abi::DOMID_SELF, 0]
        ),
        Action::Return(0)
    );
    assert_eq!(g.m.stats.continued, 1);
}

#[test]
fn a_continued_batch_reports_errors_and_progress_in_total() {
    let mut g = guest();
    build(&mut g);
    let n = abi::MMU_BATCH_MAX;
    let mut reqs = long_batch(&mut g, n);
    // Request 700 maps a table writable.
    reqs[700] = MmuUpdate::normal(fr(3) + 8 * 188, d::page(fr(2), d::RW_EL1));
    put_updates(&mut g, REQS, &reqs);
    let Action::Continue(rest) = dispatch(
        &mut g,
        nr::MMU_UPDATE,
        [REQS, n as u64, PDONE, abi::DOMID_SELF, 0],
    ) else {
        panic!("not continued")
    };
    assert_eq!(
        dispatch(
            &mut g,
            nr::MMU_UPDATE,
            [rest[0], rest[1], rest[2], rest[3], 0]
        ),
        Action::Return(-1)
    );
    assert_eq!(
        pdone(&g),
        700,
        "done before the failing request, over both pieces"
    );
    assert_eq!(mem(&g, fr(3) + 8 * 187), d::page(fr(31), d::RO_EL1));
    assert_eq!(
        mem(&g, fr(3) + 8 * 188),
        d::page(fr(30), d::RO_EL1),
        "request 700 not done"
    );
    // Without pdone the call still completes.
    long_batch(&mut g, n);
    let Action::Continue(rest) = dispatch(
        &mut g,
        nr::MMU_UPDATE,
        [REQS, n as u64, 0, abi::DOMID_SELF, 0],
    ) else {
        panic!("not continued")
    };
    assert_eq!(rest[2], 0);
    assert_eq!(
        dispatch(
            &mut g,
            nr::MMU_UPDATE,
            [rest[0], rest[1], rest[2], rest[3], 0]
        ),
        Action::Return(0)
    );
    // A flagged count above the limit is still refused.
    let bad = (abi::MMU_BATCH_MAX as u64 + 1) | abi::MMU_UPDATE_PREEMPTED;
    assert_eq!(
        dispatch(
            &mut g,
            nr::MMU_UPDATE,
            [REQS, bad, PDONE, abi::DOMID_SELF, 0]
        ),
        Action::Return(-22)
    );
    // Inside a multicall the batch runs whole.
    assert_eq!(
        mmu_update(&mut g, REQS, n as u64, PDONE, abi::DOMID_SELF),
        Ok(0)
    );
    assert_eq!(pdone(&g), n as u32);
}

#[test]
fn vectors_read_in_place_or_copied_give_the_same_results() {
    let mut outcomes = Vec::new();
    for in_place in [true, false] {
        let mut g = guest();
        g.in_place = in_place;
        build(&mut g);
        // Misaligned and page-straddling vectors take the copying path on
        // either side; a bad request in the middle stops both the same way.
        let mut reqs = long_batch(&mut g, 300);
        reqs[250] = MmuUpdate::normal(fr(3) + 8 * 250, d::page(fr(1), d::RW_EL1));
        let at = B + 0x9_0000 - 16 * 100 + 8; // crosses a page, 8-aligned
        put_updates(&mut g, at, &reqs);
        let r = call(&mut g, nr::MMU_UPDATE, [at, 300, PDONE, abi::DOMID_SELF, 0]);
        let words: Vec<u64> = (0..512).map(|k| mem(&g, fr(3) + 8 * k)).collect();
        outcomes.push((r, pdone(&g), words, g.m.stats.updates, g.mem.protected()));
    }
    assert_eq!(outcomes[0], outcomes[1]);
    assert_eq!((outcomes[0].0, outcomes[0].1), (-1, 250));
}
