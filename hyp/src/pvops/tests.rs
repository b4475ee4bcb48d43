//! The plumbing hypercalls against simulated guests and stage 2.

use super::*;
use crate::hypercall::sim::SimGuest;
use alloc::boxed::Box;
use hypercall_abi::memory::*;
use std::collections::BTreeMap as Map;

type Frame = Box<GrantFrameV1>;
type Page = Box<SharedInfo>;

impl MachinePage for Page {
    fn machine_addr(&self) -> u64 {
        core::ptr::from_ref::<SharedInfo>(self) as u64
    }
}
impl MachinePage for Frame {
    fn machine_addr(&self) -> u64 {
        core::ptr::from_ref::<GrantFrameV1>(self) as u64
    }
}

const B: u64 = 0x4000_0000;

#[derive(Default)]
struct Env {
    maps: Map<(DomId, u64), u64>,
    frames_left: u32,
}

impl GrantEnv for Env {
    fn own_frame(&self, dom: DomId, gfn: u64) -> Option<u64> {
        (B / 4096..B / 4096 + 16)
            .contains(&gfn)
            .then(|| dom as u64 * 0x10_0000 + gfn)
    }
    fn map(&mut self, dom: DomId, ipa: u64, mfn: u64, _w: bool) -> Result<(), i16> {
        if !(GUEST_GRANT_MAP_BASE..GUEST_GRANT_MAP_BASE + GUEST_GRANT_MAP_SIZE).contains(&ipa) {
            return Err(GNTST_BAD_VIRT_ADDR);
        }
        self.maps
            .insert((dom, ipa), mfn)
            .map_or(Ok(()), |_| Err(GNTST_BAD_VIRT_ADDR))
    }
    fn unmap(&mut self, dom: DomId, ipa: u64) {
        self.maps.remove(&(dom, ipa));
    }
    fn copy(&mut self, _: u64, _: u16, _: u64, _: u16, _: u16) {}
}

impl PvEnv for Env {
    type Frame = Frame;
    fn map_page(&mut self, dom: DomId, ipa: u64, pa: u64) -> Result<(), Errno> {
        if self.maps.contains_key(&(dom, ipa)) {
            return Err(Errno::EBUSY);
        }
        self.maps.insert((dom, ipa), pa);
        Ok(())
    }
    fn unmap_page(&mut self, dom: DomId, ipa: u64) {
        self.maps.remove(&(dom, ipa));
    }
    fn page_free(&self, dom: DomId, ipa: u64) -> bool {
        !self.maps.contains_key(&(dom, ipa))
    }
    fn alloc_grant_frame(&mut self) -> Option<Frame> {
        self.frames_left = self.frames_left.checked_sub(1)?;
        Some(Box::new(
            [const { GrantEntryV1::new() }; ENTRIES_PER_FRAME as usize],
        ))
    }
    fn free_grant_frame(&mut self, _: Frame) {}
}

fn setup() -> (Pv<Page, Frame>, Env) {
    let mut pv = Pv::new();
    for d in 1..=2 {
        pv.ev.add_domain(d, 1, Box::new(SharedInfo::new())).unwrap();
        pv.gt.add_domain(d);
    }
    (
        pv,
        Env {
            frames_left: 8,
            ..Default::default()
        },
    )
}

fn put(g: &mut SimGuest, at: u64, bytes: &[u8]) {
    g.write(at, bytes).unwrap();
}

fn word(g: &SimGuest, at: u64) -> u32 {
    let mut b = [0; 4];
    g.read(at, &mut b).unwrap();
    u32::from_le_bytes(b)
}

#[test]
fn event_channel_op_through_guest_memory() {
    let (mut pv, _) = setup();
    let (mut g1, mut g2) = (SimGuest::new(B, 4096), SimGuest::new(B, 4096));
    // alloc_unbound{dom: SELF, remote: 2}
    put(&mut g1, B, &[0xf0, 0x7f, 2, 0, 0xff, 0xff, 0xff, 0xff]);
    let (r, _) = pv.event_channel_op(&mut g1, 1, EVTCHNOP_ALLOC_UNBOUND, B);
    assert_eq!(r, Ok(0));
    let p1 = word(&g1, B + 4);
    assert_eq!(p1, 1);
    // bind_interdomain{remote 1, port p1}
    put(&mut g2, B, &[1, 0, 0, 0]);
    put(&mut g2, B + 4, &p1.to_le_bytes());
    let (r, up) = pv.event_channel_op(&mut g2, 2, EVTCHNOP_BIND_INTERDOMAIN, B);
    assert_eq!((r, up), (Ok(0), Some(Upcall { dom: 2, vcpu: 0 })));
    let p2 = word(&g2, B + 8);
    // send from 1
    put(&mut g1, B + 64, &p1.to_le_bytes());
    assert_eq!(
        pv.event_channel_op(&mut g1, 1, EVTCHNOP_SEND, B + 64).0,
        Ok(0)
    );
    assert!(pv.ev.page(2).unwrap().is_pending(p2));
    // status{SELF, p1}
    put(&mut g1, B + 128, &[0xf0, 0x7f, 0, 0]);
    put(&mut g1, B + 132, &p1.to_le_bytes());
    assert_eq!(
        pv.event_channel_op(&mut g1, 1, EVTCHNOP_STATUS, B + 128).0,
        Ok(0)
    );
    assert_eq!(word(&g1, B + 136), EVTCHNSTAT_INTERDOMAIN);
    assert_eq!(word(&g1, B + 148), p2);
    // Bad pointers and unknown commands change nothing.
    let before = pv.ev.domain(1).unwrap().ports().to_vec();
    assert_eq!(
        pv.event_channel_op(&mut g1, 1, EVTCHNOP_ALLOC_UNBOUND, B + 4092)
            .0,
        Err(Errno::EFAULT)
    );
    assert_eq!(
        pv.event_channel_op(&mut g1, 1, EVTCHNOP_BIND_IPI, 0x10).0,
        Err(Errno::EFAULT)
    );
    assert_eq!(
        pv.event_channel_op(&mut g1, 1, EVTCHNOP_INIT_CONTROL, B).0,
        Err(Errno::ENOSYS)
    );
    assert_eq!(pv.event_channel_op(&mut g1, 1, 99, B).0, Err(Errno::ENOSYS));
    assert_eq!(pv.ev.domain(1).unwrap().ports(), &before[..]);
}

#[test]
fn physmap_places_pages_in_their_windows() {
    let (mut pv, mut env) = setup();
    let mut g = SimGuest::new(B, 4096);
    let xatp = |g: &mut SimGuest, space: u32, idx: u64, gpfn: u64| {
        let mut b = [0u8; 24];
        b[0..2].copy_from_slice(&DOMID_SELF.to_le_bytes());
        b[4..8].copy_from_slice(&space.to_le_bytes());
        b[8..16].copy_from_slice(&idx.to_le_bytes());
        b[16..24].copy_from_slice(&gpfn.to_le_bytes());
        g.write(B, &b).unwrap();
    };
    let si = GUEST_MAGIC_BASE / 4096;
    xatp(&mut g, XENMAPSPACE_SHARED_INFO, 0, si);
    assert_eq!(
        pv.memory_op(&mut g, &mut env, 1, XENMEM_ADD_TO_PHYSMAP, B),
        Ok(0)
    );
    let pa = pv.ev.page(1).unwrap().machine_addr();
    assert_eq!(env.maps[&(1, GUEST_MAGIC_BASE)], pa);
    // Moving it unmaps the old place.
    xatp(&mut g, XENMAPSPACE_SHARED_INFO, 0, si + 1);
    assert_eq!(
        pv.memory_op(&mut g, &mut env, 1, XENMEM_ADD_TO_PHYSMAP, B),
        Ok(0)
    );
    assert!(!env.maps.contains_key(&(1, GUEST_MAGIC_BASE)));
    // Outside its window (in RAM, in the grant window), a bad idx, a busy page.
    for (space, idx, gpfn, want) in [
        (XENMAPSPACE_SHARED_INFO, 0, B / 4096, Errno::EINVAL),
        (
            XENMAPSPACE_SHARED_INFO,
            0,
            GUEST_GNTTAB_BASE / 4096,
            Errno::EINVAL,
        ),
        (XENMAPSPACE_SHARED_INFO, 1, si, Errno::EINVAL),
        (XENMAPSPACE_SHARED_INFO, 0, u64::MAX, Errno::EINVAL),
        (
            XENMAPSPACE_GRANT_TABLE,
            MAX_GRANT_FRAMES as u64,
            GUEST_GNTTAB_BASE / 4096,
            Errno::EINVAL,
        ),
        (
            XENMAPSPACE_GRANT_TABLE,
            XENMAPIDX_GRANT_TABLE_STATUS,
            GUEST_GNTTAB_BASE / 4096,
            Errno::EINVAL,
        ),
        (XENMAPSPACE_GMFN_FOREIGN, 0, si, Errno::ENOSYS),
    ] {
        xatp(&mut g, space, idx, gpfn);
        assert_eq!(
            pv.memory_op(&mut g, &mut env, 1, XENMEM_ADD_TO_PHYSMAP, B),
            Err(want),
            "{space} {idx} {gpfn:#x}"
        );
    }
    // Grant frame 1 grows the table to two frames.
    xatp(
        &mut g,
        XENMAPSPACE_GRANT_TABLE,
        1,
        GUEST_GNTTAB_BASE / 4096 + 1,
    );
    assert_eq!(
        pv.memory_op(&mut g, &mut env, 1, XENMEM_ADD_TO_PHYSMAP, B),
        Ok(0)
    );
    assert_eq!(pv.gt.nr_frames(1, 1), Ok(2));
    // The same frame 0 page: busy.
    xatp(
        &mut g,
        XENMAPSPACE_GRANT_TABLE,
        0,
        GUEST_GNTTAB_BASE / 4096 + 1,
    );
    assert_eq!(
        pv.memory_op(&mut g, &mut env, 1, XENMEM_ADD_TO_PHYSMAP, B),
        Err(Errno::EBUSY)
    );
    // Another domain's id.
    g.write(B, &2u16.to_le_bytes()).unwrap();
    assert_eq!(
        pv.memory_op(&mut g, &mut env, 1, XENMEM_ADD_TO_PHYSMAP, B),
        Err(Errno::EPERM)
    );
    assert_eq!(pv.memory_op(&mut g, &mut env, 1, 0, B), Err(Errno::ENOSYS));
}

#[test]
fn grant_table_op_batches() {
    let (mut pv, mut env) = setup();
    let mut g1 = SimGuest::new(B, 8192);
    let mut g2 = SimGuest::new(B, 8192);
    // setup_table{SELF, 1, frame_list = B + 4096}
    let mut st = [0u8; 24];
    st[0..2].copy_from_slice(&DOMID_SELF.to_le_bytes());
    st[4..8].copy_from_slice(&1u32.to_le_bytes());
    st[16..24].copy_from_slice(&(B + 4096).to_le_bytes());
    put(&mut g1, B, &st);
    assert_eq!(
        pv.grant_table_op(
            &mut g1,
            &mut env,
            1,
            GNTTABOP_SETUP_TABLE,
            B,
            1,
            &mut Vec::new()
        ),
        Ok(0)
    );
    assert_eq!(i16::from_le_bytes([g1.mem[8], g1.mem[9]]), GNTST_OKAY);
    assert_eq!(
        u64::from_le_bytes(g1.mem[4096..4104].try_into().unwrap()),
        INVALID_GFN,
        "not placed yet"
    );
    pv.gt.domain(1).unwrap().frames()[0][8].grant(2, (B / 4096 + 3) as u32, true);
    // Two maps in one batch: the second asks for write access and fails.
    let op = |rw: bool, slot: u64| {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&(GUEST_GRANT_MAP_BASE + slot * 4096).to_le_bytes());
        let fl = GNTMAP_HOST_MAP | if rw { 0 } else { GNTMAP_READONLY };
        b[8..12].copy_from_slice(&fl.to_le_bytes());
        b[12..16].copy_from_slice(&8u32.to_le_bytes());
        b[16..18].copy_from_slice(&1u16.to_le_bytes());
        b
    };
    put(&mut g2, B, &op(false, 0));
    put(&mut g2, B + 32, &op(true, 1));
    assert_eq!(
        pv.grant_table_op(
            &mut g2,
            &mut env,
            2,
            GNTTABOP_MAP_GRANT_REF,
            B,
            2,
            &mut Vec::new()
        ),
        Ok(0)
    );
    assert_eq!(i16::from_le_bytes([g2.mem[18], g2.mem[19]]), GNTST_OKAY);
    assert_eq!(
        i16::from_le_bytes([g2.mem[50], g2.mem[51]]),
        GNTST_PERMISSION_DENIED
    );
    let h = u32::from_le_bytes(g2.mem[20..24].try_into().unwrap());
    assert_eq!(
        env.maps[&(2, GUEST_GRANT_MAP_BASE)],
        0x10_0000 + B / 4096 + 3
    );
    // Unmap it: the frame's last pin goes.
    let mut u = [0u8; 24];
    u[16..20].copy_from_slice(&h.to_le_bytes());
    put(&mut g2, B + 256, &u);
    let mut released = Vec::new();
    assert_eq!(
        pv.grant_table_op(
            &mut g2,
            &mut env,
            2,
            GNTTABOP_UNMAP_GRANT_REF,
            B + 256,
            1,
            &mut released
        ),
        Ok(0)
    );
    assert_eq!(released, vec![0x10_0000 + B / 4096 + 3]);
    // query_size{SELF}
    put(&mut g1, B + 512, &DOMID_SELF.to_le_bytes());
    assert_eq!(
        pv.grant_table_op(
            &mut g1,
            &mut env,
            1,
            GNTTABOP_QUERY_SIZE,
            B + 512,
            1,
            &mut Vec::new()
        ),
        Ok(0)
    );
    assert_eq!(word(&g1, B + 512 + 4), 1);
    assert_eq!(word(&g1, B + 512 + 8), MAX_GRANT_FRAMES);
    // Call-level errors.
    let mut r = Vec::new();
    assert_eq!(
        pv.grant_table_op(
            &mut g2,
            &mut env,
            2,
            GNTTABOP_MAP_GRANT_REF,
            B,
            MAX_BATCH + 1,
            &mut r
        ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        pv.grant_table_op(
            &mut g2,
            &mut env,
            2,
            GNTTABOP_MAP_GRANT_REF,
            B + 8190,
            1,
            &mut r
        ),
        Err(Errno::EFAULT)
    );
    assert_eq!(
        pv.grant_table_op(&mut g2, &mut env, 2, GNTTABOP_TRANSFER, B, 1, &mut r),
        Err(Errno::ENOSYS)
    );
    assert!(env.maps.is_empty());
}
