//! Unit and property tests of the grant table.

use super::*;
use alloc::boxed::Box;
use hypercall_abi::memory::{GUEST_GRANT_MAP_BASE, GUEST_GRANT_MAP_SIZE};
use proptest::prelude::*;
use std::collections::BTreeMap as Map;

type Frame = Box<GrantFrameV1>;

fn frame() -> Frame {
    Box::new([const { GrantEntryV1::new() }; ENTRIES_PER_FRAME as usize])
}

const RAM_GFN: u64 = 0x40000;
const RAM_PAGES: u64 = 16;

/// Simulated stage-2 maps and machine memory.
#[derive(Default)]
struct Env {
    dead: Vec<DomId>,
    maps: Map<(DomId, u64), (u64, bool)>,
    mem: Map<u64, Vec<u8>>,
    flushes: u32,
}

impl GrantEnv for Env {
    fn own_frame(&self, dom: DomId, gfn: u64) -> Option<u64> {
        (!self.dead.contains(&dom) && (RAM_GFN..RAM_GFN + RAM_PAGES).contains(&gfn))
            .then(|| dom as u64 * 0x1000 + gfn - RAM_GFN)
    }
    fn map(&mut self, dom: DomId, ipa: u64, mfn: u64, writable: bool) -> Result<(), i16> {
        if !(GUEST_GRANT_MAP_BASE..GUEST_GRANT_MAP_BASE + GUEST_GRANT_MAP_SIZE).contains(&ipa)
            || self.maps.contains_key(&(dom, ipa))
        {
            return Err(GNTST_BAD_VIRT_ADDR);
        }
        self.maps.insert((dom, ipa), (mfn, writable));
        Ok(())
    }
    fn unmap(&mut self, dom: DomId, ipa: u64) {
        assert!(self.maps.remove(&(dom, ipa)).is_some(), "unmap of nothing");
        self.flushes += 1;
    }
    fn copy(&mut self, src: u64, so: u16, dst: u64, d_o: u16, len: u16) {
        let s: Vec<u8> =
            self.mem.entry(src).or_insert(vec![0; 4096])[so as usize..][..len as usize].to_vec();
        self.mem.entry(dst).or_insert(vec![0; 4096])[d_o as usize..][..len as usize]
            .copy_from_slice(&s);
    }
}

/// Frames from the heap, at most `left` of them; counts what comes back.
struct Heap {
    left: u32,
    freed: u32,
}

impl FrameSource<Frame> for Heap {
    fn alloc(&mut self) -> Option<Frame> {
        self.left = self.left.checked_sub(1)?;
        Some(frame())
    }
    fn free(&mut self, _: Frame) {
        self.freed += 1;
    }
}

fn heap() -> Heap {
    Heap {
        left: 1000,
        freed: 0,
    }
}

fn setup(n: u16) -> Grants<Frame> {
    let mut g = Grants::new();
    for d in 1..=n {
        g.add_domain(d);
        g.grow(d, DOMID_SELF, 1, &mut heap()).unwrap();
    }
    g
}

fn map_op(dom: DomId, gref: GrantRef, at: u64, ro: bool) -> GnttabMapGrantRef {
    GnttabMapGrantRef {
        host_addr: GUEST_GRANT_MAP_BASE + at * 4096,
        flags: GNTMAP_HOST_MAP | if ro { GNTMAP_READONLY } else { 0 },
        r#ref: gref,
        dom,
        ..Default::default()
    }
}

fn unmap_op(h: GrantHandle) -> GnttabUnmapGrantRef {
    GnttabUnmapGrantRef {
        handle: h,
        ..Default::default()
    }
}

fn flags(g: &Grants<Frame>, d: DomId, r: GrantRef) -> u16 {
    g.domain(d).unwrap().frames()[0][r as usize]
        .flags
        .load(Ordering::Relaxed)
}

#[test]
fn map_unmap_with_in_use_flags_and_pins() {
    let mut g = setup(2);
    let mut env = Env::default();
    let e = &g.domain(1).unwrap().frames()[0][8];
    e.grant(2, (RAM_GFN + 3) as u32, false);
    let h = g.map(&mut env, 2, &map_op(1, 8, 0, false)).unwrap();
    assert_eq!(env.maps[&(2, GUEST_GRANT_MAP_BASE)], (0x1003, true));
    assert_eq!(
        flags(&g, 1, 8),
        GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING
    );
    assert!(g.is_pinned(0x1003));
    assert!(
        !g.domain(1).unwrap().frames()[0][8].try_revoke(),
        "mapped: cannot revoke"
    );
    // A second, read-only mapping of the same grant.
    let h2 = g.map(&mut env, 2, &map_op(1, 8, 1, true)).unwrap();
    assert_eq!(g.pins()[&0x1003], 2);
    assert_eq!(g.unmap(&mut env, 2, &unmap_op(h)), Ok(None));
    assert_eq!(flags(&g, 1, 8), GTF_PERMIT_ACCESS | GTF_READING);
    assert_eq!(
        g.unmap(&mut env, 2, &unmap_op(h)),
        Err(GNTST_BAD_HANDLE),
        "twice"
    );
    assert_eq!(
        g.unmap(&mut env, 2, &unmap_op(h2)),
        Ok(Some(0x1003)),
        "last pin"
    );
    assert_eq!(flags(&g, 1, 8), GTF_PERMIT_ACCESS);
    assert!(env.maps.is_empty());
    assert_eq!(env.flushes, 2);
    assert!(g.domain(1).unwrap().frames()[0][8].try_revoke());
    g.check_invariants().unwrap();
}

#[test]
fn bad_maps_are_refused_and_change_nothing() {
    let mut g = setup(3);
    let mut env = Env::default();
    let t = &g.domain(1).unwrap().frames()[0];
    t[8].grant(2, (RAM_GFN + 1) as u32, true); // read-only for 2
    t[9].grant(3, (RAM_GFN + 1) as u32, false); // for 3, not 2
    t[10].grant(2, 0x1234, false); // not the granter's frame
    t[11].grant(2, (RAM_GFN + 2) as u32, false);
    assert!(t[11].try_revoke()); // revoked
    let before = flags(&g, 1, 8);
    let cases = [
        (
            "writable map of a read-only grant",
            map_op(1, 8, 0, false),
            GNTST_PERMISSION_DENIED,
        ),
        (
            "grant for another domain",
            map_op(1, 9, 0, true),
            GNTST_PERMISSION_DENIED,
        ),
        (
            "frame the granter does not own",
            map_op(1, 10, 0, false),
            GNTST_BAD_PAGE,
        ),
        ("revoked grant", map_op(1, 11, 0, false), GNTST_BAD_GNTREF),
        ("never granted", map_op(1, 12, 0, true), GNTST_BAD_GNTREF),
        (
            "ref past the table",
            map_op(1, ENTRIES_PER_FRAME, 0, true),
            GNTST_BAD_GNTREF,
        ),
        (
            "ref u32::MAX",
            map_op(1, u32::MAX, 0, true),
            GNTST_BAD_GNTREF,
        ),
        ("no such granter", map_op(9, 8, 0, true), GNTST_BAD_DOMAIN),
        (
            "outside the window",
            GnttabMapGrantRef {
                host_addr: 0x4000_0000,
                ..map_op(1, 8, 0, true)
            },
            GNTST_BAD_VIRT_ADDR,
        ),
        (
            "unaligned",
            GnttabMapGrantRef {
                host_addr: GUEST_GRANT_MAP_BASE + 8,
                ..map_op(1, 8, 0, true)
            },
            GNTST_BAD_VIRT_ADDR,
        ),
        (
            "no host_map",
            GnttabMapGrantRef {
                flags: GNTMAP_READONLY,
                ..map_op(1, 8, 0, true)
            },
            GNTST_BAD_GNTREF,
        ),
        (
            "device map",
            GnttabMapGrantRef {
                flags: GNTMAP_HOST_MAP | GNTMAP_DEVICE_MAP | GNTMAP_READONLY,
                ..map_op(1, 8, 0, true)
            },
            GNTST_GENERAL_ERROR,
        ),
    ];
    for (what, op, want) in cases {
        assert_eq!(g.map(&mut env, 2, &op), Err(want), "{what}");
    }
    assert!(env.maps.is_empty() && g.pins().is_empty());
    assert_eq!(flags(&g, 1, 8), before);
    // An address already in use: the second map fails, the first stays.
    let h = g.map(&mut env, 2, &map_op(1, 8, 0, true)).unwrap();
    assert_eq!(
        g.map(&mut env, 2, &map_op(1, 8, 0, true)),
        Err(GNTST_BAD_VIRT_ADDR)
    );
    assert_eq!(g.pins()[&0x1001], 1);
    assert_eq!(
        g.unmap(
            &mut env,
            2,
            &GnttabUnmapGrantRef {
                host_addr: GUEST_GRANT_MAP_BASE + 4096,
                ..unmap_op(h)
            }
        ),
        Err(GNTST_BAD_VIRT_ADDR)
    );
    assert_eq!(
        g.unmap(&mut env, 3, &unmap_op(h)),
        Err(GNTST_BAD_HANDLE),
        "another domain's handle"
    );
    g.check_invariants().unwrap();
}

#[test]
fn table_growth_and_query() {
    let mut g: Grants<Frame> = Grants::new();
    g.add_domain(1);
    assert_eq!(g.nr_frames(1, DOMID_SELF), Ok(0));
    assert_eq!(g.grow(1, 2, 1, &mut heap()), Err(GNTST_PERMISSION_DENIED));
    assert_eq!(
        g.grow(1, 1, MAX_GRANT_FRAMES + 1, &mut heap()),
        Err(GNTST_GENERAL_ERROR)
    );
    let mut short = Heap { left: 1, freed: 0 };
    assert_eq!(g.grow(1, 1, 3, &mut short), Err(GNTST_NO_SPACE));
    assert_eq!(short.freed, 1, "the frame got so far goes back");
    assert_eq!(g.nr_frames(1, 1), Ok(0), "all or nothing");
    g.grow(1, 1, 2, &mut heap()).unwrap();
    let mut none = Heap { left: 0, freed: 0 };
    g.grow(1, 1, 1, &mut none).unwrap();
    assert_eq!(g.nr_frames(1, 1), Ok(2));
    assert_eq!(g.nr_frames(1, 9), Err(GNTST_PERMISSION_DENIED));
    assert_eq!(g.nr_frames(5, DOMID_SELF), Err(GNTST_BAD_DOMAIN));
}

#[test]
fn copy_checks_both_sides() {
    let g = setup(2);
    let mut env = Env::default();
    let t = &g.domain(1).unwrap().frames()[0];
    t[8].grant(2, (RAM_GFN + 5) as u32, true);
    env.mem.insert(0x1005, (0..4096).map(|i| i as u8).collect());
    let from_grant = GnttabCopy {
        source: GnttabCopyPtr {
            u: 8,
            domid: 1,
            offset: 16,
        },
        dest: GnttabCopyPtr {
            u: RAM_GFN + 2,
            domid: DOMID_SELF,
            offset: 100,
        },
        len: 32,
        flags: GNTCOPY_SOURCE_GREF,
        status: 0,
    };
    g.copy(&mut env, 2, &from_grant).unwrap();
    assert_eq!(
        &env.mem[&0x2002][100..132],
        &(16..48).map(|i| i as u8).collect::<Vec<_>>()[..]
    );
    let to_ro = GnttabCopy {
        source: from_grant.dest,
        dest: from_grant.source,
        flags: GNTCOPY_DEST_GREF,
        ..from_grant
    };
    assert_eq!(
        g.copy(&mut env, 2, &to_ro),
        Err(GNTST_PERMISSION_DENIED),
        "read-only grant as destination"
    );
    let cross = GnttabCopy {
        len: 4090,
        ..from_grant
    };
    assert_eq!(g.copy(&mut env, 2, &cross), Err(GNTST_BAD_COPY_ARG));
    let other = GnttabCopy {
        dest: GnttabCopyPtr {
            domid: 1,
            ..from_grant.dest
        },
        ..from_grant
    };
    assert_eq!(
        g.copy(&mut env, 2, &other),
        Err(GNTST_PERMISSION_DENIED),
        "another domain's frame"
    );
    let not_mine = GnttabCopy {
        dest: GnttabCopyPtr {
            u: 5,
            ..from_grant.dest
        },
        ..from_grant
    };
    assert_eq!(g.copy(&mut env, 2, &not_mine), Err(GNTST_BAD_PAGE));
    let big_ref = GnttabCopy {
        source: GnttabCopyPtr {
            u: 1 << 40,
            ..from_grant.source
        },
        ..from_grant
    };
    assert_eq!(g.copy(&mut env, 2, &big_ref), Err(GNTST_BAD_GNTREF));
}

#[test]
fn destruction_releases_everything() {
    let mut g = setup(3);
    let mut env = Env::default();
    g.domain(1).unwrap().frames()[0][8].grant(2, (RAM_GFN + 1) as u32, false);
    g.domain(2).unwrap().frames()[0][8].grant(1, (RAM_GFN + 1) as u32, false);
    let h = g.map(&mut env, 2, &map_op(1, 8, 0, false)).unwrap();
    g.map(&mut env, 1, &map_op(2, 8, 0, false)).unwrap();
    // The granter dies: 2's mapping of its frame stays pinned.
    let r = g.remove_domain(1).unwrap();
    assert_eq!(r.frames.len(), 1);
    assert_eq!(
        r.released,
        vec![0x2001],
        "1's own mapping of 2's frame is released"
    );
    assert_eq!(
        flags(&g, 2, 8),
        GTF_PERMIT_ACCESS,
        "2's entry no longer in use"
    );
    assert!(
        g.is_pinned(0x1001),
        "the dead granter's frame is still mapped by 2"
    );
    assert_eq!(g.unmap(&mut env, 2, &unmap_op(h)), Ok(Some(0x1001)));
    assert!(g.pins().is_empty());
    g.check_invariants().unwrap();
    assert!(g.remove_domain(1).is_none());
}

#[derive(Clone, Debug)]
enum Op {
    Grant(u16, u32, u16, u64, bool),
    Revoke(u16, u32),
    Map(u16, u16, u32, u64, bool),
    Unmap(u16, u32),
    Destroy(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let d = 1u16..4;
    let r = 0u32..6;
    prop_oneof![
        (
            d.clone(),
            r.clone(),
            0u16..5,
            RAM_GFN - 1..RAM_GFN + 3,
            any::<bool>()
        )
            .prop_map(|(a, b, c, e, f)| Op::Grant(a, b, c, e, f)),
        (d.clone(), r.clone()).prop_map(|(a, b)| Op::Revoke(a, b)),
        (d.clone(), 0u16..5, r.clone(), 0u64..4, any::<bool>())
            .prop_map(|(a, b, c, e, f)| Op::Map(a, b, c, e, f)),
        (d.clone(), 0u32..6).prop_map(|(a, b)| Op::Unmap(a, b)),
        d.clone().prop_map(Op::Destroy),
    ]
}

proptest! {
    /// Random grants, revocations, maps, unmaps and destructions across
    /// three domains: after every step pins equal mappings, in-use flags
    /// match the mappings, every mapping is in the simulated stage 2 (and
    /// nothing else is), no mapping is writable for a read-only grant, and
    /// refused maps change nothing.
    #[test]
    fn random_sequences_keep_the_counts(ops in proptest::collection::vec(op(), 1..150)) {
        let mut g = setup(3);
        let mut env = Env::default();
        for o in ops {
            match o {
                Op::Grant(d, r, to, gfn, ro) => if let Some(t) = g.domain(d) {
                    // A well-behaved granter only rewrites entries it can revoke.
                    if t.frames()[0][r as usize].try_revoke() {
                        t.frames()[0][r as usize].grant(to, gfn as u32, ro);
                    }
                },
                Op::Revoke(d, r) => if let Some(t) = g.domain(d) {
                    let in_use = flags(&g, d, r) & (GTF_READING | GTF_WRITING) != 0;
                    prop_assert_eq!(t.frames()[0][r as usize].try_revoke(), !in_use);
                },
                Op::Map(c, d, r, at, ro) => {
                    let maps = env.maps.clone();
                    let pins = g.pins().clone();
                    if let Ok(h) = g.map(&mut env, c, &map_op(d, r, at, ro)) {
                        let m = *g.domain(c).unwrap().mappings().find(|(k, _)| *k == h).unwrap().1;
                        prop_assert_eq!(env.maps[&(c, m.host_addr)], (m.mfn, !ro));
                    } else {
                        prop_assert_eq!(&env.maps, &maps);
                        prop_assert_eq!(g.pins(), &pins);
                    }
                }
                Op::Unmap(c, h) => { let _ = g.unmap(&mut env, c, &unmap_op(h)); }
                Op::Destroy(d) => {
                    if g.remove_domain(d).is_some() {
                        env.maps.retain(|k, _| k.0 != d);
                        env.dead.push(d);
                    }
                }
            }
            prop_assert_eq!(g.check_invariants(), Ok(()));
            let mut live = Map::new();
            for (id, d) in g.domains() {
                for (_, m) in d.mappings() {
                    live.insert((id, m.host_addr), (m.mfn, !m.readonly));
                }
            }
            prop_assert_eq!(&live, &env.maps);
        }
    }
}
