//! Unit tests of each rule and property tests of random operation
//! sequences against a recount from scratch.

use super::sim::SimEnv;
use super::*;
use hypercall_abi::mmu::desc as d;
use proptest::prelude::*;

const B: u64 = 0x4000_0000;
/// 4 MiB of RAM: 1024 frames, room for a 2 MiB block in the upper half.
const RAM: u64 = 4 << 20;

fn fr(i: u64) -> u64 {
    B + i * PAGE
}
fn rw(i: u64) -> u64 {
    d::page(fr(i), d::RW_EL1 | d::NORMAL)
}
fn ro(i: u64) -> u64 {
    d::page(fr(i), d::RO_EL1 | d::NORMAL)
}
fn setup() -> (PvMmu, SimEnv) {
    (PvMmu::new(B, RAM, 2), SimEnv::new(B, RAM))
}
fn count(m: &PvMmu, i: u64) -> (Type, u32, bool) {
    let f = m.frame(fr(i)).unwrap();
    (f.ty, f.count, f.pinned)
}
struct Mem {
    words: std::collections::BTreeMap<u64, u64>,
    protected: std::collections::BTreeSet<u64>,
}
fn snapshot(m: &PvMmu, e: &SimEnv) -> (Vec<Frame>, Vec<[Option<u64>; 2]>, Mem) {
    (
        m.frames.clone(),
        m.bases.clone(),
        Mem {
            words: e.words(),
            protected: e.protected(),
        },
    )
}

/// Root in frame 0, L1 in 1, L2 in 2, L3 in 3, mapping VA 0 to frame 10
/// (writable) and VA 4K to frame 11 (read-only): filled by plain stores,
/// validated by pinning the root.
fn tree(m: &mut PvMmu, e: &SimEnv) {
    e.write(fr(0), d::table(fr(1)));
    e.write(fr(1), d::table(fr(2)));
    e.write(fr(2), d::table(fr(3)));
    e.write(fr(3), rw(10));
    e.write(fr(3) + 8, ro(11));
    m.pin(e, fr(0), 0).unwrap();
}

#[test]
fn pinning_a_root_validates_the_tree_and_protects_it() {
    let (mut m, e) = setup();
    tree(&mut m, &e);
    assert_eq!(count(&m, 0), (Type::Table(0), 1, true));
    assert_eq!(count(&m, 1), (Type::Table(1), 1, false));
    assert_eq!(count(&m, 3), (Type::Table(3), 1, false));
    assert_eq!(count(&m, 10), (Type::Writable, 1, false));
    assert_eq!(
        count(&m, 11),
        (Type::None, 0, false),
        "read-only maps hold no type"
    );
    assert_eq!(e.protected().len(), 4);
    assert_eq!(m.stats.validated, 4);
    m.audit(&e).unwrap();
    m.set_base(&e, 0, Ttbr::Ttbr0, fr(0)).unwrap();
    assert_eq!(count(&m, 0), (Type::Table(0), 2, true));
    assert_eq!(m.base(0, Ttbr::Ttbr0), Some(fr(0)));
    m.audit(&e).unwrap();
}

#[test]
fn a_table_is_never_mapped_writable() {
    let (mut m, e) = setup();
    tree(&mut m, &e);
    // Map the level-3 table itself writable: refused; read-only is fine.
    assert_eq!(m.update(&e, fr(3) + 16, rw(3)), Err(Errno::EPERM));
    assert_eq!(e.read(fr(3) + 16), 0, "not written");
    m.update(&e, fr(3) + 16, ro(3)).unwrap();
    // A writable 2 MiB block over the tables: refused.
    let blk = d::block(B, d::RW_EL1 | d::NORMAL);
    assert_eq!(m.update(&e, fr(2) + 8, blk), Err(Errno::EPERM));
    // The other way round: a frame mapped writable cannot become a table.
    assert_eq!(m.pin(&e, fr(10), 3), Err(Errno::EPERM));
    assert_eq!(
        m.update(&e, fr(2) + 16, d::table(fr(10))),
        Err(Errno::EPERM)
    );
    m.audit(&e).unwrap();
}

#[test]
fn no_foreign_frames() {
    let (mut m, e) = setup();
    tree(&mut m, &e);
    let outside = d::page(B + RAM, d::RO_EL1 | d::NORMAL);
    assert_eq!(m.update(&e, fr(3) + 16, outside), Err(Errno::EPERM));
    let below = d::page(B - PAGE, d::RO_EL1 | d::NORMAL);
    assert_eq!(m.update(&e, fr(3) + 16, below), Err(Errno::EPERM));
    // A block that starts inside RAM and ends outside.
    let crossing = d::block(B + RAM - (2 << 20) + (2 << 20), d::RO_EL1);
    assert_eq!(m.update(&e, fr(2) + 8, crossing), Err(Errno::EPERM));
    // Table entries and request addresses outside RAM.
    assert_eq!(
        m.update(&e, fr(0) + 8, d::table(0x8000_0000)),
        Err(Errno::EPERM)
    );
    assert_eq!(m.update(&e, B + RAM, 0), Err(Errno::EPERM));
    assert_eq!(m.pin(&e, B - PAGE, 3), Err(Errno::EPERM));
    // A block wholly inside RAM is fine.
    m.update(
        &e,
        fr(2) + 8,
        d::block(B + (2 << 20), d::RW_EL1 | d::NORMAL),
    )
    .unwrap();
    assert_eq!(count(&m, 512), (Type::Writable, 1, false));
    assert_eq!(count(&m, 1023), (Type::Writable, 1, false));
    m.audit(&e).unwrap();
}

#[test]
fn pages_granted_by_other_domains_may_be_mapped_but_not_as_tables() {
    use hypercall_abi::memory::{GUEST_GRANT_MAP_BASE as G, GUEST_GRANT_MAP_SIZE};
    let (mut m, e) = setup();
    tree(&mut m, &e);
    let before = m.frames.clone();
    // A page of the grant window, read-write or read-only: accepted, no
    // frame of the domain's own is counted for it.
    m.update(&e, fr(3) + 16, d::page(G, d::RW_EL1 | d::NORMAL))
        .unwrap();
    m.update(
        &e,
        fr(3) + 24,
        d::page(G + GUEST_GRANT_MAP_SIZE - PAGE, d::RO_EL1 | d::NORMAL),
    )
    .unwrap();
    assert_eq!(m.frames, before);
    m.audit(&e).unwrap();
    // Not a table pointer, not a block, not past the window.
    assert_eq!(m.update(&e, fr(0) + 8, d::table(G)), Err(Errno::EPERM));
    assert_eq!(
        m.update(&e, fr(2) + 8, d::block(G, d::RO_EL1 | d::NORMAL)),
        Err(Errno::EPERM)
    );
    let past = d::page(G + GUEST_GRANT_MAP_SIZE, d::RO_EL1 | d::NORMAL);
    assert_eq!(m.update(&e, fr(3) + 32, past), Err(Errno::EPERM));
    // Replacing and clearing them leaves the counts alone.
    m.update(&e, fr(3) + 16, rw(12)).unwrap();
    m.update(&e, fr(3) + 24, 0).unwrap();
    assert_eq!(count(&m, 12), (Type::Writable, 1, false));
    m.audit(&e).unwrap();
}

#[test]
fn malformed_requests() {
    let (mut m, e) = setup();
    tree(&mut m, &e);
    assert_eq!(
        m.update(&e, fr(3) + 16, ro(12) | 1 << 52),
        Err(Errno::EINVAL),
        "contiguous"
    );
    assert_eq!(
        m.update(&e, fr(3) + 16, ro(12) | 1 << 5),
        Err(Errno::EINVAL),
        "NS"
    );
    assert_eq!(
        m.update(&e, fr(0) + 8, d::block(B, 0)),
        Err(Errno::EINVAL),
        "level-0 block"
    );
    assert_eq!(
        m.update(&e, fr(3) + 20, 0),
        Err(Errno::EINVAL),
        "misaligned"
    );
    assert_eq!(
        m.update(&e, fr(3) + 17, 0),
        Err(Errno::ENOSYS),
        "MMU_MACHPHYS_UPDATE"
    );
    assert_eq!(m.pin(&e, fr(20), 4), Err(Errno::EINVAL), "no level 4");
    assert_eq!(m.stats.refused, 6);
    m.audit(&e).unwrap();
}

#[test]
fn pin_unpin_and_base_rules() {
    let (mut m, e) = setup();
    tree(&mut m, &e);
    assert_eq!(m.pin(&e, fr(0), 0), Err(Errno::EINVAL), "already pinned");
    assert_eq!(
        m.pin(&e, fr(1), 2),
        Err(Errno::EPERM),
        "already a level-1 table"
    );
    assert_eq!(m.unpin(&e, fr(1)), Err(Errno::EINVAL), "not pinned");
    // A base must be a pinned level-0 table.
    assert_eq!(m.set_base(&e, 0, Ttbr::Ttbr0, fr(1)), Err(Errno::EINVAL));
    assert_eq!(m.set_base(&e, 0, Ttbr::Ttbr0, fr(30)), Err(Errno::EINVAL));
    assert_eq!(
        m.set_base(&e, 2, Ttbr::Ttbr0, fr(0)),
        Err(Errno::EINVAL),
        "no vCPU 2"
    );
    m.pin(&e, fr(1), 1).unwrap();
    assert_eq!(
        m.set_base(&e, 0, Ttbr::Ttbr0, fr(1)),
        Err(Errno::EINVAL),
        "pinned, but level 1"
    );
    m.set_base(&e, 1, Ttbr::Ttbr1, fr(0)).unwrap();
    assert_eq!(m.unpin(&e, fr(0)), Err(Errno::EBUSY), "a live base");
    assert!(m.is_root(fr(0)) && !m.is_root(fr(1)));
    // Another root replaces it; then the old one can go.
    e.write(fr(5), d::table(fr(1)));
    m.pin(&e, fr(5), 0).unwrap();
    m.set_base(&e, 1, Ttbr::Ttbr1, fr(5)).unwrap();
    assert_eq!(
        count(&m, 1),
        (Type::Table(1), 3, true),
        "two roots and a pin"
    );
    m.unpin(&e, fr(0)).unwrap();
    assert_eq!(count(&m, 0), (Type::None, 0, false));
    assert!(!e.protected().contains(&fr(0)));
    m.audit(&e).unwrap();
}

#[test]
fn unpinning_the_last_reference_releases_the_whole_tree() {
    let (mut m, e) = setup();
    tree(&mut m, &e);
    m.unpin(&e, fr(0)).unwrap();
    assert!(m.frames.iter().all(|f| *f == Frame::default()));
    assert!(e.protected().is_empty());
    // The frames are ordinary memory again: a plain store goes through.
    m.update(&e, fr(3), 0x1234).unwrap();
    assert_eq!(e.read(fr(3)), 0x1234);
    m.audit(&e).unwrap();
}

#[test]
fn a_failed_validation_changes_nothing() {
    let (mut m, e) = setup();
    e.write(fr(1), d::table(fr(2)));
    e.write(fr(2), rw(10));
    e.write(fr(1) + 8 * 5, d::page(fr(7), 0)); // a page at level 1: reserved
    let before = snapshot(&m, &e);
    assert_eq!(m.pin(&e, fr(1), 1), Err(Errno::EINVAL));
    assert_eq!(snapshot(&m, &e).0, before.0);
    assert_eq!(e.protected(), before.2.protected);
    assert_eq!(e.words(), before.2.words);
    // An update whose new subtree fails deep down changes nothing either.
    tree(&mut m, &e);
    // New L1 (frame 20) -> new L2 (21) -> a 2 MiB block over the tables.
    e.write(fr(20) + 8, d::table(fr(21)));
    e.write(fr(21) + 16, d::block(B, d::RW_EL1 | d::NORMAL));
    let before = snapshot(&m, &e);
    assert_eq!(m.update(&e, fr(0) + 8, d::table(fr(20))), Err(Errno::EPERM));
    let after = snapshot(&m, &e);
    assert_eq!(
        (after.0, after.1, after.2.words, after.2.protected),
        (before.0, before.1, before.2.words, before.2.protected)
    );
}

#[test]
fn shared_subtables_and_same_entry_rewrites() {
    let (mut m, e) = setup();
    tree(&mut m, &e);
    e.write(fr(5), d::table(fr(1)));
    m.pin(&e, fr(5), 0).unwrap();
    assert_eq!(count(&m, 1), (Type::Table(1), 2, false));
    // Rewriting an entry to point at the same table keeps the subtree
    // validated (no protection churn).
    let calls = e.protect_calls.get();
    m.update(&e, fr(0), d::table(fr(1)) | 1 << 63).unwrap();
    assert_eq!(e.protect_calls.get(), calls);
    assert_eq!(count(&m, 1), (Type::Table(1), 2, false));
    // Clearing one root's entry leaves the other's.
    m.update(&e, fr(0), 0).unwrap();
    assert_eq!(count(&m, 1), (Type::Table(1), 1, false));
    m.update(&e, fr(5), 0).unwrap();
    assert_eq!(count(&m, 1), (Type::None, 0, false));
    assert_eq!(count(&m, 10), (Type::None, 0, false));
    m.audit(&e).unwrap();
}

#[test]
fn trapped_stores_are_validated_and_counted() {
    let (mut m, e) = setup();
    tree(&mut m, &e);
    m.trapped_store(&e, fr(3) + 16, ro(12)).unwrap();
    assert_eq!(e.read(fr(3) + 16), ro(12));
    assert_eq!(m.trapped_store(&e, fr(3) + 24, rw(2)), Err(Errno::EPERM));
    assert_eq!(m.trapped_store(&e, fr(3) + 4, 0), Err(Errno::EINVAL));
    assert_eq!(
        (m.stats.trapped, m.stats.updates, m.stats.refused),
        (1, 0, 2)
    );
    m.audit(&e).unwrap();
}

// ---- property tests -------------------------------------------------------

/// Frames that may become tables, and frames that may be mapped.
const TABLES: u64 = 10;
const TARGETS: u64 = 14;
/// Entries used (a few, so that requests collide).
const SLOTS: [u64; 4] = [0, 1, 2, 511];

#[derive(Clone, Debug)]
enum Val {
    Invalid,
    Table(u64),
    Page(u64, bool),
    Block(u8, bool),
    Foreign(bool),
    Reserved(u64),
    /// A read-only page of attribute index 1 (Device in `MAIR_EL1_PV`),
    /// executable or not.
    Device(u64, bool),
}

impl Val {
    fn encode(&self) -> u64 {
        match *self {
            Val::Invalid => 0,
            Val::Table(f) => d::table(fr(f)),
            Val::Page(f, w) => {
                if w {
                    rw(f)
                } else {
                    ro(f)
                }
            }
            Val::Block(k, w) => {
                let at = [B + (2 << 20), B, B + RAM][k as usize];
                d::block(at, if w { d::RW_EL1 } else { d::RO_EL1 } | d::NORMAL)
            }
            Val::Foreign(w) => d::page(B + RAM + PAGE, if w { d::RW_EL1 } else { d::RO_EL1 }),
            Val::Reserved(f) => rw(f) | 1 << 52,
            Val::Device(f, x) => d::page(
                fr(f),
                d::AP_RO | d::AF | 1 << d::ATTR_SHIFT | if x { d::UXN } else { d::UXN | d::PXN },
            ),
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Update(u64, usize, Val),
    Trapped(u64, usize, Val),
    Pair(u64, usize, Val, Val),
    Mair(bool),
    Plain(u64, usize, Val),
    Pin(u64, u8),
    Unpin(u64),
    Base(usize, bool, u64),
}

fn val() -> impl Strategy<Value = Val> {
    prop_oneof![
        Just(Val::Invalid),
        (0..TABLES).prop_map(Val::Table),
        (0..TARGETS, any::<bool>()).prop_map(|(f, w)| Val::Page(f, w)),
        (0u8..3, any::<bool>()).prop_map(|(k, w)| Val::Block(k, w)),
        any::<bool>().prop_map(Val::Foreign),
        (0..TARGETS).prop_map(Val::Reserved),
        (0..TARGETS, any::<bool>()).prop_map(|(f, x)| Val::Device(f, x)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..TABLES, 0..SLOTS.len(), val()).prop_map(|(t, k, v)| Op::Update(t, k, v)),
        1 => (0..TABLES, 0..SLOTS.len(), val()).prop_map(|(t, k, v)| Op::Trapped(t, k, v)),
        1 => (0..TABLES, 0..SLOTS.len(), val(), val()).prop_map(|(t, k, v, w)| Op::Pair(t, k, v, w)),
        1 => any::<bool>().prop_map(Op::Mair),
        2 => (0..TABLES, 0..SLOTS.len(), val()).prop_map(|(t, k, v)| Op::Plain(t, k, v)),
        2 => (0..TABLES, 0u8..4).prop_map(|(f, l)| Op::Pin(f, l)),
        1 => (0..TABLES).prop_map(Op::Unpin),
        1 => (0usize..2, any::<bool>(), 0..TABLES).prop_map(|(v, w, f)| Op::Base(v, w, f)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// After every step of a random sequence: every count equals a recount
    /// from scratch, no table is mapped writable, nothing outside RAM is
    /// reachable, exactly the tables are protected, and a refused request
    /// left everything (state and memory) as it was.
    #[test]
    fn random_sequences_keep_the_invariants(ops in prop::collection::vec(op(), 1..60)) {
        let (mut m, e) = setup();
        for o in ops {
            let before = snapshot(&m, &e);
            let r = match &o {
                Op::Update(t, k, v) => m.update(&e, fr(*t) + 8 * SLOTS[*k], v.encode()),
                Op::Trapped(t, k, v) => m.trapped_store(&e, fr(*t) + 8 * SLOTS[*k], v.encode()),
                Op::Pair(t, k, v, w) => m.trapped_pair(&e, fr(*t) + 8 * SLOTS[*k], [v.encode(), w.encode()]),
                // Index 0 Normal (as the values use) or Device.
                Op::Mair(dev) => m.set_mair(if *dev { 0 } else { hypercall_abi::mmu::MAIR_EL1_PV }),
                // The guest's own store: allowed only where stage 2 lets it.
                Op::Plain(t, k, v) => {
                    if e.protected().contains(&fr(*t)) {
                        Err(Errno::EACCES)
                    } else {
                        e.write(fr(*t) + 8 * SLOTS[*k], v.encode());
                        Ok(())
                    }
                }
                Op::Pin(f, l) => m.pin(&e, fr(*f), *l),
                Op::Unpin(f) => m.unpin(&e, fr(*f)),
                Op::Base(v, w, f) => m.set_base(&e, *v, if *w { Ttbr::Ttbr1 } else { Ttbr::Ttbr0 }, fr(*f)),
            };
            if let Err(err) = m.audit(&e) {
                prop_assert!(false, "after {:?} ({:?}): {}", o, r, err);
            }
            if r.is_err() {
                let after = snapshot(&m, &e);
                prop_assert_eq!(&after.0, &before.0, "frames changed by refused {:?}", o);
                prop_assert_eq!(&after.1, &before.1);
                prop_assert_eq!(&after.2.words, &before.2.words);
                prop_assert_eq!(&after.2.protected, &before.2.protected);
            }
        }
        // Tearing everything down leaves no reference behind.
        for v in 0..2 {
            for w in [Ttbr::Ttbr0, Ttbr::Ttbr1] {
                if let Some(b) = m.bases[v][w as usize].take() {
                    m.put_table(&e, b);
                }
            }
        }
        for f in 0..TABLES {
            if m.frame(fr(f)).unwrap().pinned {
                m.unpin(&e, fr(f)).unwrap();
            }
        }
        prop_assert!(m.frames.iter().all(|f| *f == Frame::default()));
        prop_assert!(e.protected().is_empty());
    }
}

/// The memory-attribute rule: Device memory only execute-never, and MAIR
/// may not change an index's class while tables are validated.
#[test]
fn device_memory_and_mair_changes() {
    let (mut m, e) = setup();
    tree(&mut m, &e);
    let dev = |xn| d::page(fr(12), d::AP_RO | d::AF | 1 << d::ATTR_SHIFT | xn);
    assert_eq!(
        m.update(&e, fr(3) + 16, dev(d::UXN)),
        Err(Errno::EINVAL),
        "EL1-executable Device"
    );
    assert_eq!(
        m.trapped_store(&e, fr(3) + 16, dev(d::PXN)),
        Err(Errno::EINVAL),
        "EL0-executable Device"
    );
    m.update(&e, fr(3) + 16, dev(d::UXN | d::PXN)).unwrap();
    // Index 0 (the tree's pages, executable) may not become Device, nor
    // index 1 (mapped, execute-never) Normal... while tables exist.
    assert_eq!(m.set_mair(0), Err(Errno::EBUSY));
    assert_eq!(m.set_mair(0xff_ff), Err(Errno::EBUSY));
    m.set_mair(0xee | 0x04 << 8).unwrap(); // another Normal write-back type: same class
    m.set_mair(0xff | 0x0c << 8).unwrap(); // another Device type: same class
    m.unpin(&e, fr(0)).unwrap();
    m.set_mair(0).unwrap();
    assert_eq!(m.device_mask(), 0xff);
    // Now index 0 is Device: the tree's executable page is refused.
    e.write(fr(3), d::page(fr(10), d::RX_EL1 | d::NORMAL));
    assert_eq!(m.pin(&e, fr(3), 3), Err(Errno::EINVAL));
    m.audit(&e).unwrap();
}

#[test]
fn a_refused_pair_changes_nothing() {
    let (mut m, e) = setup();
    tree(&mut m, &e);
    let before = snapshot(&m, &e);
    // First entry fine (replaces the writable page), second a writable map
    // of a table: the first is undone, the writable count restored.
    assert_eq!(
        m.trapped_pair(&e, fr(3), [ro(12), rw(2)]),
        Err(Errno::EPERM)
    );
    let after = snapshot(&m, &e);
    assert_eq!(
        (after.0, after.2.words, after.2.protected),
        (before.0, before.2.words, before.2.protected)
    );
    assert_eq!(
        m.trapped_pair(&e, fr(3) + 4088, [0, 0]),
        Err(Errno::EINVAL),
        "crosses the page"
    );
    m.trapped_pair(&e, fr(3) + 16, [ro(12), rw(13)]).unwrap();
    assert_eq!((e.read(fr(3) + 16), e.read(fr(3) + 24)), (ro(12), rw(13)));
    assert_eq!((m.stats.trapped, m.stats.refused), (2, 2));
    m.audit(&e).unwrap();
}

fn words(reqs: &[(u64, u64)]) -> Vec<core::sync::atomic::AtomicU64> {
    reqs.iter()
        .flat_map(|&(p, v)| [p, v])
        .map(core::sync::atomic::AtomicU64::new)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The fast path decides exactly as the general one: the same random
    /// operations against an environment with direct frame access (fast
    /// path) and one without (general path only) give the same results,
    /// counts, memory and protections after every step; a batch gives what
    /// the same requests one by one give.
    #[test]
    fn the_fast_path_agrees_with_the_general_one(
        ops in prop::collection::vec(op(), 1..40),
        batch in prop::collection::vec((0..TABLES, 0..SLOTS.len(), val()), 0..24),
    ) {
        let (mut fast, mut fe) = setup();
        let (mut slow, mut se) = setup();
        se.direct = false;
        for o in &ops {
            let run = |m: &mut PvMmu, e: &mut SimEnv| match o {
                Op::Update(t, k, v) => m.update(e, fr(*t) + 8 * SLOTS[*k], v.encode()),
                Op::Trapped(t, k, v) => m.trapped_store(e, fr(*t) + 8 * SLOTS[*k], v.encode()),
                Op::Pair(t, k, v, w) => m.trapped_pair(e, fr(*t) + 8 * SLOTS[*k], [v.encode(), w.encode()]),
                Op::Mair(dev) => m.set_mair(if *dev { 0 } else { hypercall_abi::mmu::MAIR_EL1_PV }),
                Op::Plain(t, k, v) => {
                    if !e.protected().contains(&fr(*t)) {
                        e.write(fr(*t) + 8 * SLOTS[*k], v.encode());
                    }
                    Ok(())
                }
                Op::Pin(f, l) => m.pin(e, fr(*f), *l),
                Op::Unpin(f) => m.unpin(e, fr(*f)),
                Op::Base(v, w, f) => m.set_base(e, *v, if *w { Ttbr::Ttbr1 } else { Ttbr::Ttbr0 }, fr(*f)),
            };
            let (a, b) = (run(&mut fast, &mut fe), run(&mut slow, &mut se));
            prop_assert_eq!(a, b, "{:?}", o);
            prop_assert_eq!(&fast.frames, &slow.frames, "{:?}", o);
            prop_assert_eq!(fe.words(), se.words());
            prop_assert_eq!(fast.stats, slow.stats);
        }
        // The batch, against one-by-one updates on the slow side.
        let reqs: Vec<(u64, u64)> = batch.iter().map(|(t, k, v)| (fr(*t) + 8 * SLOTS[*k], v.encode())).collect();
        let (done, r) = fast.update_batch(&fe, &words(&reqs));
        let mut want = (reqs.len(), Ok(()));
        for (i, &(p, v)) in reqs.iter().enumerate() {
            if let Err(e) = slow.update(&se, p, v) {
                want = (i, Err(e));
                break;
            }
        }
        prop_assert_eq!((done, r), want);
        prop_assert_eq!(&fast.frames, &slow.frames);
        prop_assert_eq!(fe.words(), se.words());
        prop_assert_eq!(fast.stats, slow.stats);
        if let Err(err) = fast.audit(&fe) {
            prop_assert!(false, "{}", err);
        }
    }
}

/// A long batch into a level-3 table (the benchmark's shape) takes the
/// fast path throughout and keeps the counts.
#[test]
fn a_long_batch_of_page_updates() {
    let (mut m, e) = setup();
    tree(&mut m, &e);
    let reqs: Vec<(u64, u64)> = (0..1024u64)
        .map(|i| {
            (
                fr(3) + 8 * (i % 512),
                if i % 3 == 0 {
                    rw(20 + i % 7)
                } else {
                    ro(20 + i % 7)
                },
            )
        })
        .collect();
    assert_eq!(m.update_batch(&e, &words(&reqs)), (1024, Ok(())));
    assert_eq!(e.read(fr(3) + 8 * 511), reqs[1023].1);
    assert_eq!(m.stats.updates, 1024);
    m.audit(&e).unwrap();
}
