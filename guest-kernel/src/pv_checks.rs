//! `test=pvio [peer=N]`: bad input to event channels, grant tables, the
//! physmap and the shared ring, each answer checked; plus the good paths
//! they guard (a loopback channel delivering an upcall, a grant of the
//! domain's own page mapped, written through and unmapped).

use crate::console::println;
use crate::dt::BootInfo;
use crate::events;
use crate::ring_test::opt;
use hypercall_abi::event_channel::*;
use hypercall_abi::evtchn_guest as ev;
use hypercall_abi::gnttab_guest::{self as gt, GrantError};
use hypercall_abi::grant_table::*;
use hypercall_abi::memory::*;
use hypercall_abi::ring::{BackRing, FrontRing, RingError, SharedRing};
use hypercall_abi::{guest, Errno};

#[repr(C, align(4096))]
struct Page([u8; 4096]);
static mut DATA: Page = Page([0; 4096]);
static mut RING: Page = Page([0; 4096]);

struct Tally {
    passed: u32,
    total: u32,
}

impl Tally {
    fn check<T: core::fmt::Debug + PartialEq>(&mut self, name: &str, got: T, want: T) {
        self.total += 1;
        let ok = got == want;
        if ok {
            self.passed += 1;
        }
        println!(
            "guest: check {name}: got {got:?} {}",
            if ok { "ok" } else { "FAIL" }
        );
    }
}

fn err<T>(r: Result<T, Errno>) -> Result<(), Errno> {
    r.map(|_| ())
}

fn st<T>(r: Result<T, GrantError>) -> Result<(), GrantError> {
    r.map(|_| ())
}

static HANDLED: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

fn loopback_handler(_port: u32) {
    HANDLED.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

/// Runs the checks and powers off.
pub fn run(info: &BootInfo) -> ! {
    let peer = opt(info, "peer").unwrap_or(2) as u16;
    let mut t = Tally {
        passed: 0,
        total: 0,
    };
    let me = ev::status(DOMID_SELF, 0).err();
    t.check("status_port_0", me, Some(Errno::EINVAL));

    // Physmap.
    t.check(
        "shared_info_in_ram",
        ev::add_to_physmap(XENMAPSPACE_SHARED_INFO, 0, 0x4000_0000 >> 12),
        Err(Errno::EINVAL),
    );
    t.check(
        "shared_info_idx_1",
        ev::add_to_physmap(XENMAPSPACE_SHARED_INFO, 1, GUEST_MAGIC_BASE >> 12),
        Err(Errno::EINVAL),
    );
    t.check(
        "gmfn_foreign_space",
        ev::add_to_physmap(XENMAPSPACE_GMFN_FOREIGN, 0, GUEST_MAGIC_BASE >> 12),
        Err(Errno::ENOSYS),
    );
    let shared = events::init();
    t.check("shared_info_mapped", shared.is_ok(), true);
    t.check(
        "grant_frame_on_shared_info",
        ev::add_to_physmap(XENMAPSPACE_GRANT_TABLE, 0, GUEST_MAGIC_BASE >> 12),
        Err(Errno::EINVAL),
    );
    let table = gt::map_table_frame(0, GUEST_GNTTAB_BASE >> 12).unwrap_or_else(|e| {
        println!("guest: check grant_table_frame: FAIL {e}");
        guest::crash()
    });
    t.check(
        "grant_frame_busy",
        ev::add_to_physmap(XENMAPSPACE_GRANT_TABLE, 1, GUEST_GNTTAB_BASE >> 12),
        Err(Errno::EBUSY),
    );
    t.check(
        "query_size_unchanged_by_refusal",
        gt::query_size(),
        Ok((1, MAX_GRANT_FRAMES)),
    );

    // Event channels: wrong ports, other domains' ports, binding twice.
    t.check("send_port_0", ev::send(0), Err(Errno::EINVAL));
    t.check("send_unallocated", ev::send(77), Err(Errno::EINVAL));
    t.check(
        "send_past_the_table",
        ev::send(u32::MAX),
        Err(Errno::EINVAL),
    );
    t.check("close_unallocated", ev::close(9), Err(Errno::EINVAL));
    t.check(
        "unmask_past_the_table",
        ev::unmask(5000),
        Err(Errno::EINVAL),
    );
    t.check(
        "alloc_in_other_domain",
        err(ev::alloc_unbound_in(peer, DOMID_SELF)),
        Err(Errno::EPERM),
    );
    t.check(
        "status_of_other_domain",
        err(ev::status(peer, 1)),
        Err(Errno::EPERM),
    );
    t.check(
        "bind_no_such_domain",
        err(ev::bind_interdomain(99, 1)),
        Err(Errno::ESRCH),
    );
    t.check(
        "bind_peer_port_not_for_me",
        err(ev::bind_interdomain(peer, 1)),
        Err(Errno::EINVAL),
    );
    t.check(
        "bind_virq_out_of_range",
        err(ev::bind_virq(NR_VIRQS, 0)),
        Err(Errno::EINVAL),
    );
    t.check(
        "bind_virq_missing_vcpu",
        err(ev::bind_virq(VIRQ_DEBUG, 3)),
        Err(Errno::ENOENT),
    );
    let virq = ev::bind_virq(VIRQ_DEBUG, 0);
    t.check("bind_virq", virq.is_ok(), true);
    t.check(
        "bind_virq_twice",
        err(ev::bind_virq(VIRQ_DEBUG, 0)),
        Err(Errno::EEXIST),
    );
    t.check(
        "send_on_virq_port",
        ev::send(virq.unwrap_or(0)),
        Err(Errno::EINVAL),
    );
    // VIRQ_TIMER arrives when the set_timer_op deadline passes.
    let timer = ev::bind_virq(VIRQ_TIMER, 0).unwrap_or(0);
    let ticks_before = events::count(timer);
    let _ = crate::time::set_timer(crate::time::now_ns() + 1_000_000);
    let got_tick = events::wait(timer, ticks_before, || false).is_some();
    t.check("virq_timer_delivered", got_tick && timer != 0, true);
    t.check("close_virq_timer", ev::close(timer), Ok(()));
    let unbound = ev::alloc_unbound(peer).unwrap_or(0);
    t.check("send_unbound", ev::send(unbound), Err(Errno::ENOTCONN));
    t.check(
        "status_unbound",
        ev::status(DOMID_SELF, unbound).map(|s| (s.status, s.remote_dom())),
        Ok((EVTCHNSTAT_UNBOUND, peer)),
    );
    t.check(
        "bind_my_port_meant_for_peer",
        err(ev::bind_interdomain(DOMID_SELF, unbound)),
        Err(Errno::EINVAL),
    );
    // A loopback channel: the upcall arrives through the IRQ vector.
    let lp = ev::alloc_unbound(DOMID_SELF).unwrap_or(0);
    let bound = ev::bind_interdomain(DOMID_SELF, lp);
    t.check("loopback_bind", bound.is_ok(), true);
    let lb = bound.unwrap_or(0);
    t.check(
        "loopback_bind_twice",
        err(ev::bind_interdomain(DOMID_SELF, lp)),
        Err(Errno::EINVAL),
    );
    events::set_handler(lp, loopback_handler);
    let before = events::count(lp);
    t.check("loopback_send", ev::send(lb), Ok(()));
    events::yield_with_irqs();
    t.check("loopback_upcall_delivered", events::count(lp), before + 1);
    if let Some(s) = events::shared() {
        s.set_mask(lp, true);
        let _ = ev::send(lb);
        events::yield_with_irqs();
        t.check("masked_port_not_delivered", events::count(lp), before + 1);
        // SCHEDOP_poll returns at once for a pending (even masked) port.
        let ports = [lp];
        let start = crate::time::now_ns();
        let arg = hypercall_abi::sched::SchedPoll {
            ports: ports.as_ptr() as u64,
            nr_ports: 1,
            pad: 0,
            timeout: start + 50_000_000,
        };
        // SAFETY: `arg` and `ports` are live for the call; only read.
        let r = unsafe {
            hypercall_abi::hvc::hypercall2(
                hypercall_abi::nr::SCHED_OP,
                hypercall_abi::sched::SCHEDOP_POLL,
                core::ptr::from_ref(&arg) as u64,
            )
        };
        let quick = crate::time::now_ns() - start < 50_000_000;
        t.check("poll_pending_masked_port", (r, quick), (0, true));
        let _ = ev::unmask(lp);
        events::yield_with_irqs();
        t.check("delivered_on_unmask", events::count(lp), before + 2);
    }
    t.check(
        "handler_ran",
        HANDLED.load(core::sync::atomic::Ordering::Relaxed),
        2,
    );
    t.check("close_loopback", ev::close(lb), Ok(()));
    t.check("send_after_peer_closed", ev::send(lp), Err(Errno::ENOTCONN));
    t.check("close_twice", ev::close(lb), Err(Errno::EINVAL));

    // Grants.
    let data = core::ptr::addr_of!(DATA) as usize;
    let gfn = (data >> 12) as u32;
    let me_id = peer_self();
    table[8].grant(me_id, gfn, true);
    table[9].grant(me_id, 0x1_0000, false); // not my frame
    table[10].grant(me_id, gfn, false);
    table[11].grant(peer, gfn, false); // for the peer, not me
    table[12].grant(me_id, gfn, false);
    let revoked = table[12].try_revoke();
    t.check("revoke_unmapped", revoked, true);
    let w = GUEST_GRANT_MAP_BASE;
    t.check(
        "map_ro_grant_writable",
        st(gt::map_grant_ref(DOMID_SELF, 8, w, false)),
        Err(GrantError::Status(GNTST_PERMISSION_DENIED)),
    );
    t.check(
        "map_frame_not_owned",
        st(gt::map_grant_ref(DOMID_SELF, 9, w, false)),
        Err(GrantError::Status(GNTST_BAD_PAGE)),
    );
    t.check(
        "map_grant_for_other",
        st(gt::map_grant_ref(DOMID_SELF, 11, w, false)),
        Err(GrantError::Status(GNTST_PERMISSION_DENIED)),
    );
    t.check(
        "map_revoked",
        st(gt::map_grant_ref(DOMID_SELF, 12, w, false)),
        Err(GrantError::Status(GNTST_BAD_GNTREF)),
    );
    t.check(
        "map_ref_past_table",
        st(gt::map_grant_ref(DOMID_SELF, ENTRIES_PER_FRAME, w, true)),
        Err(GrantError::Status(GNTST_BAD_GNTREF)),
    );
    t.check(
        "map_no_such_domain",
        st(gt::map_grant_ref(99, 8, w, true)),
        Err(GrantError::Status(GNTST_BAD_DOMAIN)),
    );
    t.check(
        "map_peer_ungranted",
        st(gt::map_grant_ref(peer, 8, w, true)).is_err(),
        true,
    );
    t.check(
        "map_into_ram",
        st(gt::map_grant_ref(DOMID_SELF, 8, 0x4000_0000, true)),
        Err(GrantError::Status(GNTST_BAD_VIRT_ADDR)),
    );
    t.check(
        "map_unaligned",
        st(gt::map_grant_ref(DOMID_SELF, 8, w + 8, true)),
        Err(GrantError::Status(GNTST_BAD_VIRT_ADDR)),
    );
    let h = gt::map_grant_ref(DOMID_SELF, 10, w, false);
    t.check("map_own_grant", h.is_ok(), true);
    let h_ok = h.is_ok();
    let h = h.unwrap_or(0);
    t.check(
        "map_same_address_again",
        st(gt::map_grant_ref(DOMID_SELF, 8, w, true)),
        Err(GrantError::Status(GNTST_BAD_VIRT_ADDR)),
    );
    // Write through the mapping, read through the original.
    let alias = w as *mut u64;
    // SAFETY: `w` is now mapped to DATA's frame, read-write; DATA is a
    // static page only accessed through raw pointers here.
    let seen = if h_ok {
        unsafe {
            alias.write_volatile(0x1234_5678_9abc_def0);
            (data as *const u64).read_volatile()
        }
    } else {
        0
    };
    t.check("write_through_grant_mapping", seen, 0x1234_5678_9abc_def0);
    t.check("revoke_while_mapped", table[10].try_revoke(), false);
    t.check(
        "unmap_wrong_address",
        gt::unmap_grant_ref(w + 4096, h),
        Err(GrantError::Status(GNTST_BAD_VIRT_ADDR)),
    );
    t.check("unmap", gt::unmap_grant_ref(w, h), Ok(()));
    t.check(
        "unmap_twice",
        gt::unmap_grant_ref(w, h),
        Err(GrantError::Status(GNTST_BAD_HANDLE)),
    );
    t.check("revoke_after_unmap", table[10].try_revoke(), true);
    let mut big = [GnttabMapGrantRef::default(); 65];
    t.check(
        "batch_too_big",
        gt::map_grant_refs(&mut big),
        Err(Errno::EINVAL),
    );
    t.check(
        "setup_table_too_many",
        gt::setup_table(&mut [0; 5]),
        Err(GrantError::Status(GNTST_GENERAL_ERROR)),
    );
    let mut frames = [0u64; 2];
    t.check("setup_table_2", gt::setup_table(&mut frames), Ok(()));
    t.check(
        "setup_table_frame_list",
        frames,
        [GUEST_GNTTAB_BASE >> 12, INVALID_GFN],
    );
    // Copy from a read-only grant into my own frame.
    let copy = GnttabCopy {
        source: GnttabCopyPtr {
            u: 8,
            domid: DOMID_SELF,
            offset: 0,
        },
        dest: GnttabCopyPtr {
            u: gfn as u64,
            domid: DOMID_SELF,
            offset: 64,
        },
        len: 8,
        flags: GNTCOPY_SOURCE_GREF,
        status: 0,
    };
    t.check("copy_from_grant", gt::copy(copy), Ok(()));
    // SAFETY: reading DATA through a raw pointer after the monitor wrote it.
    let copied = unsafe { ((data + 64) as *const u64).read_volatile() };
    t.check("copied_bytes", copied, 0x1234_5678_9abc_def0);
    let to_ro = GnttabCopy {
        flags: GNTCOPY_DEST_GREF,
        source: copy.dest,
        dest: copy.source,
        ..copy
    };
    t.check(
        "copy_into_ro_grant",
        gt::copy(to_ro),
        Err(GrantError::Status(GNTST_PERMISSION_DENIED)),
    );
    t.check(
        "copy_across_page",
        gt::copy(GnttabCopy { len: 4096, ..copy }),
        Err(GrantError::Status(GNTST_BAD_COPY_ARG)),
    );

    // The ring: a producer index that runs ahead is refused.
    let ring = core::ptr::addr_of!(RING) as usize;
    // SAFETY: RING is a zeroed page-aligned static; SharedRing is atomics.
    let sring: &SharedRing = unsafe { &*(ring as *const SharedRing) };
    if let Ok(mut f) = FrontRing::<u64, u64>::init(sring) {
        let mut b = BackRing::<u64, u64>::attach(sring).unwrap_or_else(|_| guest::crash());
        let n = b.size();
        sring.poke(n + 5, 0);
        t.check(
            "ring_request_index_ahead",
            b.take_request(),
            Err(RingError::ProducerOverflow {
                prod: n + 5,
                cons: 0,
            }),
        );
        sring.poke(0, 3);
        t.check(
            "ring_response_index_ahead",
            f.take_response(),
            Err(RingError::ProducerOverflow { prod: 3, cons: 0 }),
        );
        sring.poke(0, 0);
        let _ = f.push_request(&7);
        f.push_requests();
        t.check("ring_after_reset", b.take_request(), Ok(Some(7)));
    }
    println!("guest: checks passed {}/{}", t.passed, t.total);
    guest::poweroff()
}

/// This domain's id: the remote domain of a port it allocates for itself
/// (`DOMID_SELF` resolves to the caller's id).
pub fn peer_self() -> u16 {
    match ev::alloc_unbound(DOMID_SELF).and_then(|p| {
        let s = ev::status(DOMID_SELF, p);
        let _ = ev::close(p);
        s
    }) {
        Ok(s) => s.remote_dom(),
        Err(_) => 0,
    }
}
