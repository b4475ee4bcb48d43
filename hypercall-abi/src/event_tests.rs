//! Host tests of the shared-info 2-level rules and grant entries.

use crate::grant_table::*;
use crate::shared_info::SharedInfo;

#[test]
fn send_sets_selector_and_upcall_once() {
    let s = Box::new(SharedInfo::new());
    assert!(s.mark_pending(5));
    assert!(!s.mark_pending(5), "already pending: nothing new");
    assert!(!s.mark_pending(6), "selector word already flagged");
    assert!(
        s.mark_pending(64 * 3 + 1) == false,
        "upcall already pending"
    );
    assert_eq!(
        s.vcpu_info[0]
            .evtchn_pending_sel
            .load(core::sync::atomic::Ordering::Relaxed),
        0b1001
    );
    let mut got = Vec::new();
    assert_eq!(s.take_pending(0, |p| got.push(p)), 3);
    assert_eq!(got, [5, 6, 193]);
    assert!(!s.vcpu_info[0].upcall_pending());
    assert!(
        s.mark_pending(7),
        "a new event after the handler raises a new upcall"
    );
}

#[test]
fn masked_ports_wait_for_unmask() {
    let s = Box::new(SharedInfo::new());
    s.set_mask(9, true);
    assert!(!s.mark_pending(9));
    assert!(s.is_pending(9) && s.is_masked(9));
    assert!(!s.vcpu_info[0].upcall_pending());
    assert_eq!(s.take_pending(0, |_| panic!("masked")), 0);
    assert!(s.unmask(9), "unmasking a pending port raises the upcall");
    assert!(!s.unmask(9));
    let mut got = Vec::new();
    s.take_pending(0, |p| got.push(p));
    assert_eq!(got, [9]);
    // Out-of-range ports are never pending and always masked.
    assert!(!s.mark_pending(4096) && !s.is_pending(4096) && s.is_masked(4096));
    assert_eq!(s.take_pending(1, |_| panic!()), 0);
}

#[test]
fn grant_entries_publish_and_revoke() {
    let e = GrantEntryV1::new();
    e.grant(3, 0x40123, true);
    assert_eq!(
        e.flags.load(core::sync::atomic::Ordering::Relaxed),
        GTF_PERMIT_ACCESS | GTF_READONLY
    );
    e.flags
        .fetch_or(GTF_READING, core::sync::atomic::Ordering::Relaxed);
    assert!(!e.try_revoke(), "in use");
    e.flags
        .fetch_and(!GTF_READING, core::sync::atomic::Ordering::Relaxed);
    assert!(e.try_revoke());
    assert_eq!(e.flags.load(core::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(status_name(GNTST_BAD_GNTREF), "bad_gntref");
}
