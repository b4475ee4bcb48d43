//! Host tests for the ABI definitions.

use crate::console::{self, CONSOLE_IO_MAX};
use crate::errno::{self, MAX_ERRNO};
use crate::sched::{SchedPoll, SchedRemoteShutdown, SchedShutdown, SchedWatchdog, ShutdownReason};
use crate::version::{self, XenCompileInfo, XenFeatureInfo, XenPlatformParameters};
use crate::{nr, psci, result_from_raw, result_to_raw, Errno};
use core::mem::{align_of, size_of};
use proptest::prelude::*;

#[test]
fn errno_numbers_match_xen() {
    let expected: &[(Errno, u16, &str)] = &[
        (Errno::EPERM, 1, "EPERM"),
        (Errno::ENOENT, 2, "ENOENT"),
        (Errno::ESRCH, 3, "ESRCH"),
        (Errno::EINTR, 4, "EINTR"),
        (Errno::EIO, 5, "EIO"),
        (Errno::ENXIO, 6, "ENXIO"),
        (Errno::E2BIG, 7, "E2BIG"),
        (Errno::EAGAIN, 11, "EAGAIN"),
        (Errno::ENOMEM, 12, "ENOMEM"),
        (Errno::EACCES, 13, "EACCES"),
        (Errno::EFAULT, 14, "EFAULT"),
        (Errno::EBUSY, 16, "EBUSY"),
        (Errno::EEXIST, 17, "EEXIST"),
        (Errno::ENODEV, 19, "ENODEV"),
        (Errno::EINVAL, 22, "EINVAL"),
        (Errno::ENOSPC, 28, "ENOSPC"),
        (Errno::ERANGE, 34, "ERANGE"),
        (Errno::ENOSYS, 38, "ENOSYS"),
        (Errno::EOVERFLOW, 75, "EOVERFLOW"),
        (Errno::EOPNOTSUPP, 95, "EOPNOTSUPP"),
        (Errno::ETIMEDOUT, 110, "ETIMEDOUT"),
    ];
    for &(e, code, name) in expected {
        assert_eq!(e.code(), code);
        assert_eq!(e.name(), name);
        assert_eq!(e.to_raw(), -(code as i64));
        assert!(e.is_known());
    }
    assert_eq!(Errno::EWOULDBLOCK, Errno::EAGAIN);
    assert_eq!(Errno::EDEADLOCK.name(), "EDEADLK");
}

#[test]
fn known_errnos_round_trip_and_have_unique_numbers() {
    for (i, &e) in errno::ALL_KNOWN.iter().enumerate() {
        assert_eq!(Errno::from_raw(e.to_raw()), Some(e));
        assert_eq!(Errno::new(e.code()), Some(e));
        assert_eq!(result_from_raw(e.to_raw()), Err(e));
        assert_ne!(e.name(), "EUNKNOWN");
        for &other in &errno::ALL_KNOWN[i + 1..] {
            assert_ne!(e.code(), other.code(), "{} and {}", e.name(), other.name());
        }
    }
}

#[test]
fn unknown_errno_round_trips() {
    for code in [10u16, 15, 40, 1000, 4094, MAX_ERRNO] {
        let e = Errno::new(code).unwrap();
        if code == 10 {
            assert!(e.is_known()); // ECHILD
            continue;
        }
        assert!(!e.is_known());
        assert_eq!(e.name(), "EUNKNOWN");
        assert_eq!(e.code(), code);
        assert_eq!(result_from_raw(e.to_raw()), Err(e));
        assert_eq!(result_to_raw(Err(e)), -(code as i64));
        assert_eq!(format!("{e}"), format!("errno {code}"));
        assert_eq!(format!("{e:?}"), format!("Errno({code})"));
    }
    assert_eq!(Errno::new(0), None);
    assert_eq!(Errno::new(MAX_ERRNO + 1), None);
    assert_eq!(format!("{}", Errno::EINVAL), "EINVAL (22)");
    assert_eq!(format!("{:?}", Errno::EINVAL), "EINVAL");
    assert_eq!(i64::from(Errno::ENOSYS), -38);
}

#[test]
fn result_from_raw_boundaries() {
    assert_eq!(result_from_raw(0), Ok(0));
    assert_eq!(result_from_raw(1), Ok(1));
    assert_eq!(result_from_raw(-1), Err(Errno::EPERM));
    assert_eq!(result_from_raw(-4095), Err(Errno::new(4095).unwrap()));
    assert_eq!(result_from_raw(-4096), Ok((-4096i64) as u64));
    assert_eq!(result_from_raw(i64::MAX), Ok(i64::MAX as u64));
    assert_eq!(result_from_raw(i64::MIN), Ok(1u64 << 63));
    assert_eq!(result_from_raw(0x7fff_0000), Ok(0x7fff_0000));
    assert_eq!(Errno::from_raw(0), None);
    assert_eq!(Errno::from_raw(-4096), None);
    assert_eq!(result_to_raw(Ok(0)), 0);
    assert_eq!(result_to_raw(Ok(u64::MAX - 4095)), -4096);
}

#[test]
fn shutdown_reason_round_trip() {
    let names = [
        "poweroff",
        "reboot",
        "suspend",
        "crash",
        "watchdog",
        "soft_reset",
    ];
    for (i, r) in ShutdownReason::ALL.into_iter().enumerate() {
        assert_eq!(r.to_raw(), i as u32);
        assert_eq!(ShutdownReason::from_raw(i as u32), Some(r));
        assert_eq!(r.name(), names[i]);
        assert_eq!(SchedShutdown::new(r).reason, i as u32);
    }
    assert_eq!(ShutdownReason::from_raw(6), None);
    assert_eq!(ShutdownReason::from_raw(u32::MAX), None);
}

#[test]
fn struct_layouts() {
    assert_eq!(size_of::<SchedShutdown>(), 4);
    assert_eq!(align_of::<SchedShutdown>(), 4);
    assert_eq!(size_of::<XenFeatureInfo>(), 8);
    assert_eq!(align_of::<XenFeatureInfo>(), 4);
    assert_eq!(size_of::<SchedPoll>(), 24);
    assert_eq!(size_of::<SchedRemoteShutdown>(), 8);
    assert_eq!(size_of::<SchedWatchdog>(), 8);
    assert_eq!(size_of::<XenCompileInfo>(), version::XEN_COMPILE_INFO_LEN);
    assert_eq!(size_of::<XenPlatformParameters>(), 8);
    assert_eq!(core::mem::offset_of!(SchedPoll, timeout), 16);
    assert_eq!(core::mem::offset_of!(SchedRemoteShutdown, reason), 4);
    assert_eq!(core::mem::offset_of!(XenFeatureInfo, submap), 4);
}

#[test]
fn version_encode_decode() {
    assert_eq!(version::encode_version(4, 19), 0x0004_0013);
    assert_eq!(version::decode_version(0x0004_0013), (4, 19));
    assert_eq!(version::decode_version(u32::MAX), (u16::MAX, u16::MAX));
    assert_eq!(
        version::ABI_VERSION,
        version::encode_version(crate::ABI_VERSION_MAJOR, crate::ABI_VERSION_MINOR)
    );
    assert!(version::guest_compatible(version::ABI_VERSION));
    assert!(version::guest_compatible(version::encode_version(
        crate::ABI_VERSION_MAJOR,
        crate::ABI_VERSION_MINOR + 1
    )));
    assert!(!version::guest_compatible(version::encode_version(
        crate::ABI_VERSION_MAJOR + 1,
        crate::ABI_VERSION_MINOR
    )));
    assert_eq!(version::until_nul(b"-microhyp\0\0\0\0\0\0\0"), b"-microhyp");
    assert_eq!(version::until_nul(b"abc"), b"abc");
    assert_eq!(version::until_nul(b"\0abc"), b"");
}

#[test]
fn hypercall_numbers() {
    assert_eq!(nr::HVC_IMM, 0xEA1);
    let table = [
        (nr::SET_TRAP_TABLE, 0),
        (nr::MMU_UPDATE, 1),
        (nr::MEMORY_OP, 12),
        (nr::MULTICALL, 13),
        (nr::UPDATE_VA_MAPPING, 14),
        (nr::SET_TIMER_OP, 15),
        (nr::XEN_VERSION, 17),
        (nr::CONSOLE_IO, 18),
        (nr::GRANT_TABLE_OP, 20),
        (nr::VM_ASSIST, 21),
        (nr::VCPU_OP, 24),
        (nr::MMUEXT_OP, 26),
        (nr::SCHED_OP, 29),
        (nr::EVENT_CHANNEL_OP, 32),
        (nr::PHYSDEV_OP, 33),
        (nr::HVM_OP, 34),
        (nr::SYSCTL, 35),
        (nr::DOMCTL, 36),
        (nr::HYPFS_OP, 42),
    ];
    for (n, v) in table {
        assert_eq!(n, v);
        assert!(nr::name(n).is_some());
    }
    assert_eq!(nr::name(nr::SCHED_OP), Some("sched_op"));
    assert_eq!(nr::name(11), None);
    assert_eq!(nr::name(56), None);
    // Names are unique.
    for a in 0..64 {
        for b in a + 1..64 {
            if let (Some(x), Some(y)) = (nr::name(a), nr::name(b)) {
                assert_ne!(x, y);
            }
        }
    }
}

#[test]
fn console_chunking() {
    let data = vec![b'x'; 2 * CONSOLE_IO_MAX + 5];
    let mut lens = Vec::new();
    assert_eq!(
        console::write_chunked(&data, |c| {
            lens.push(c.len());
            0
        }),
        Ok(())
    );
    assert_eq!(lens, [CONSOLE_IO_MAX, CONSOLE_IO_MAX, 5]);

    let mut calls = 0;
    assert_eq!(console::write_chunked(&[], |_| unreachable!()), Ok(()));
    assert_eq!(
        console::write_chunked(&data, |_| {
            calls += 1;
            if calls == 2 {
                Errno::EFAULT.to_raw()
            } else {
                0
            }
        }),
        Err(Errno::EFAULT)
    );
    assert_eq!(calls, 2);

    assert_eq!(console::check_count(0), Ok(0));
    assert_eq!(
        console::check_count(CONSOLE_IO_MAX as u64),
        Ok(CONSOLE_IO_MAX)
    );
    assert_eq!(
        console::check_count(CONSOLE_IO_MAX as u64 + 1),
        Err(Errno::EINVAL)
    );
    assert_eq!(console::check_count(u64::MAX), Err(Errno::EINVAL));
}

#[test]
fn psci_values() {
    assert_eq!(psci::PSCI_VERSION, 0x8400_0000);
    assert_eq!(psci::CPU_SUSPEND, 0xC400_0001);
    assert_eq!(psci::CPU_OFF, 0x8400_0002);
    assert_eq!(psci::CPU_ON, 0xC400_0003);
    assert_eq!(psci::AFFINITY_INFO, 0xC400_0004);
    assert_eq!(psci::SYSTEM_OFF, 0x8400_0008);
    assert_eq!(psci::SYSTEM_RESET, 0x8400_0009);
    assert_eq!(psci::PSCI_FEATURES, 0x8400_000A);
    for code in [
        psci::SUCCESS,
        psci::NOT_SUPPORTED,
        psci::INVALID_PARAMETERS,
        psci::DENIED,
        psci::ALREADY_ON,
        psci::INVALID_ADDRESS,
    ] {
        let x0 = psci::status_to_x0(code);
        assert_eq!(psci::status_from_x0(x0), code);
        assert!(psci::status_name(code).is_some());
    }
    assert_eq!(psci::status_to_x0(psci::NOT_SUPPORTED), u64::MAX);
    assert_eq!(psci::status_from_x0(0xFFFF_FFFF), psci::NOT_SUPPORTED);
    assert_eq!(psci::MONITOR_PSCI_VERSION, 0x0001_0001);
    assert_eq!(psci::function_name(psci::CPU_ON), Some("CPU_ON"));
    assert_eq!(psci::function_name(0x8400_00FF), None);
}

proptest! {
    #[test]
    fn any_raw_value_decodes(ret in any::<i64>()) {
        match result_from_raw(ret) {
            Err(e) => {
                prop_assert!((-(MAX_ERRNO as i64)..=-1).contains(&ret));
                prop_assert_eq!(e.to_raw(), ret);
                prop_assert_eq!(e.code() as i64, -ret);
                prop_assert_eq!(result_to_raw(Err(e)), ret);
            }
            Ok(v) => {
                prop_assert!(!(-(MAX_ERRNO as i64)..=-1).contains(&ret));
                prop_assert_eq!(v as i64, ret);
                prop_assert_eq!(result_to_raw(Ok(v)), ret);
            }
        }
        // name() and formatting never panic.
        if let Err(e) = result_from_raw(ret) {
            let _ = (e.name(), format!("{e}"), format!("{e:?}"));
        }
    }

    #[test]
    fn error_range_is_exactly_errors(code in 1u16..=MAX_ERRNO) {
        let raw = -(code as i64);
        prop_assert_eq!(result_from_raw(raw), Err(Errno::new(code).unwrap()));
    }

    #[test]
    fn successes_outside_error_range(v in any::<u64>()) {
        let ret = v as i64;
        let is_err = (-(MAX_ERRNO as i64)..=-1).contains(&ret);
        prop_assert_eq!(result_from_raw(ret).is_err(), is_err);
    }

    #[test]
    fn version_round_trip(major in any::<u16>(), minor in any::<u16>()) {
        prop_assert_eq!(version::decode_version(version::encode_version(major, minor)), (major, minor));
    }

    #[test]
    fn shutdown_reason_from_any_u32(raw in any::<u32>()) {
        match ShutdownReason::from_raw(raw) {
            Some(r) => prop_assert_eq!(r.to_raw(), raw),
            None => prop_assert!(raw > 5),
        }
    }
}

#[test]
fn vcpu_op_numbers_and_layouts_match_xen() {
    use crate::vcpu::*;
    assert_eq!(
        [VCPUOP_INITIALISE, VCPUOP_UP, VCPUOP_DOWN, VCPUOP_IS_UP],
        [0, 1, 2, 3]
    );
    assert_eq!(
        (VCPUOP_SET_SINGLESHOT_TIMER, VCPUOP_STOP_SINGLESHOT_TIMER),
        (8, 9)
    );
    assert_eq!(core::mem::offset_of!(VcpuSetSingleshotTimer, flags), 8);
    assert_eq!(core::mem::offset_of!(VcpuGuestContext, x0), 16);
    assert_eq!(VcpuGuestContext::new(0x1000, 0x2000, 7).validate(), Ok(()));
    assert_eq!(
        VcpuGuestContext::new(0x1002, 0x2000, 0).validate(),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        VcpuGuestContext::new(0x1000, 0x2008, 0).validate(),
        Err(Errno::EINVAL)
    );
    let mut c = VcpuGuestContext::new(0x1000, 0x2000, 0);
    c.flags = VGCF_MMU_LIKE_CALLER;
    assert_eq!(c.validate(), Ok(()));
    c.flags = 2;
    assert_eq!(c.validate(), Err(Errno::EINVAL));
}

#[test]
fn domctl_numbers_and_layout() {
    use crate::domctl::*;
    assert_eq!(
        [
            DOMCTL_CREATEDOMAIN,
            DOMCTL_DESTROYDOMAIN,
            DOMCTL_PAUSEDOMAIN,
            DOMCTL_UNPAUSEDOMAIN,
            DOMCTL_GETDOMAININFO,
            DOMCTL_SCHEDULER_OP
        ],
        [1, 2, 3, 4, 5, 16]
    );
    assert_eq!(nr::DOMCTL, 36);
    assert_eq!(core::mem::offset_of!(Domctl, domain), 8);
    assert_eq!(core::mem::offset_of!(Domctl, create), 16);
    assert_eq!(DOMINF_PAUSED, 8);
    let op = Domctl::new(DOMCTL_PAUSEDOMAIN, 3);
    assert_eq!(
        (op.interface_version, op.domain),
        (DOMCTL_INTERFACE_VERSION, 3)
    );
    let c = CreateDomain::new("web", "hello").unwrap();
    assert_eq!(until_nul(&c.name), Some(&b"web"[..]));
    assert_eq!(until_nul(&c.cmdline), Some(&b"hello"[..]));
    assert_eq!(
        CreateDomain::new("a-name-of-16-chr", ""),
        None,
        "no room for the NUL"
    );
    assert_eq!(CreateDomain::new("a\0b", ""), None);
    assert_eq!(until_nul(&[b'x'; 4]), None);
}

mod mmu_abi {
    use crate::mmu::{self, desc, BatchError, MmuBatch, MmuUpdate, MmuextOp, Submit};
    use crate::multicall::{MulticallEntry, MULTICALL_MAX};
    use crate::{nr, Errno};
    use core::mem::{align_of, offset_of, size_of};
    use proptest::prelude::*;

    #[test]
    fn layouts_match_xen() {
        assert_eq!(size_of::<MmuUpdate>(), 16);
        assert_eq!(offset_of!(MmuUpdate, val), 8);
        assert_eq!(size_of::<MmuextOp>(), 24);
        assert_eq!(offset_of!(MmuextOp, arg1), 8);
        assert_eq!(offset_of!(MmuextOp, arg2), 16);
        assert_eq!(align_of::<MmuextOp>(), 8);
        assert_eq!(size_of::<MulticallEntry>(), 64);
        assert_eq!(offset_of!(MulticallEntry, result), 8);
        assert_eq!(offset_of!(MulticallEntry, args), 16);
        assert_eq!(MULTICALL_MAX, 64);
    }

    #[test]
    fn numbers_match_xen() {
        assert_eq!(nr::MMU_UPDATE, 1);
        assert_eq!(nr::MULTICALL, 13);
        assert_eq!(nr::MMUEXT_OP, 26);
        assert_eq!(
            [
                mmu::MMU_NORMAL_PT_UPDATE,
                mmu::MMU_MACHPHYS_UPDATE,
                mmu::MMU_PT_UPDATE_PRESERVE_AD,
                mmu::MMU_PT_UPDATE_NO_TRANSLATE
            ],
            [0, 1, 2, 3]
        );
        let cmds = [
            mmu::MMUEXT_PIN_L1_TABLE,
            mmu::MMUEXT_PIN_L2_TABLE,
            mmu::MMUEXT_PIN_L3_TABLE,
            mmu::MMUEXT_PIN_L4_TABLE,
            mmu::MMUEXT_UNPIN_TABLE,
            mmu::MMUEXT_NEW_BASEPTR,
            mmu::MMUEXT_TLB_FLUSH_LOCAL,
            mmu::MMUEXT_INVLPG_LOCAL,
            mmu::MMUEXT_TLB_FLUSH_MULTI,
            mmu::MMUEXT_INVLPG_MULTI,
            mmu::MMUEXT_TLB_FLUSH_ALL,
            mmu::MMUEXT_INVLPG_ALL,
        ];
        assert_eq!(cmds, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(mmu::MMUEXT_NEW_USER_BASEPTR, 15);
        assert_eq!(mmu::DOMID_SELF, 0x7ff0);
    }

    #[test]
    fn xen_levels_map_onto_aarch64_levels() {
        // Xen's L4 is the AArch64 root (level 0); its L1 holds pages (level 3).
        assert_eq!(mmu::pin_cmd(0), Some(mmu::MMUEXT_PIN_L4_TABLE));
        assert_eq!(mmu::pin_cmd(3), Some(mmu::MMUEXT_PIN_L1_TABLE));
        assert_eq!(mmu::pin_cmd(4), None);
        for l in 0..4 {
            assert_eq!(mmu::pin_level(mmu::pin_cmd(l).unwrap()), Some(l));
        }
        assert_eq!(mmu::pin_level(mmu::MMUEXT_UNPIN_TABLE), None);
    }

    #[test]
    fn descriptors() {
        assert_eq!(desc::table(0x4000_1234), 0x4000_1003);
        let p = desc::page(0x4000_2000, desc::RW_EL1 | desc::NORMAL);
        assert_eq!(p & 3, 3);
        assert_eq!(p & desc::AP_RO, 0);
        assert_eq!(p & desc::ADDR_MASK, 0x4000_2000);
        assert_eq!(desc::block(0x4020_0000, desc::RO_EL1) & 3, 1);
        let va = 0x0000_0080_4020_3000u64;
        assert_eq!([0, 1, 2, 3].map(|l| desc::index(va, l)), [1, 1, 1, 3]);
        assert_eq!(MmuUpdate::normal(0x4000_0013, 7).ptr, 0x4000_0010);
        assert_eq!(
            MmuUpdate {
                ptr: 0x4000_0012,
                val: 0
            }
            .cmd(),
            2
        );
    }

    /// A monitor model: refuses requests whose value is `u64::MAX`.
    #[derive(Default)]
    struct Model {
        applied: Vec<MmuUpdate>,
        calls: Vec<usize>,
    }

    impl Submit for Model {
        fn mmu_update(&mut self, reqs: &[MmuUpdate]) -> (usize, Result<(), Errno>) {
            self.calls.push(reqs.len());
            for (i, r) in reqs.iter().enumerate() {
                if r.val == u64::MAX {
                    return (i, Err(Errno::EPERM));
                }
                self.applied.push(*r);
            }
            (reqs.len(), Ok(()))
        }
        fn mmuext_op(&mut self, ops: &[MmuextOp]) -> (usize, Result<(), Errno>) {
            (ops.len(), Ok(()))
        }
    }

    #[test]
    fn batch_flushes_when_full_and_resumes_after_errors() {
        let mut b: MmuBatch<Model, 4> = MmuBatch::new(Model::default());
        for i in 0..9 {
            b.push(MmuUpdate::normal(0x4000_0000 + 8 * i, i)).unwrap();
        }
        // Two full batches went out by themselves; one request is queued.
        assert_eq!(b.submitter().calls, vec![4, 4]);
        assert_eq!(b.len(), 1);
        b.flush().unwrap();
        assert_eq!(b.stats(), (9, 3));
        // A bad request in the middle: the first is done, the bad one and
        // the one after stay queued.
        b.push(MmuUpdate::normal(0x4000_1000, 1)).unwrap();
        b.push(MmuUpdate::normal(0x4000_1008, u64::MAX)).unwrap();
        b.push(MmuUpdate::normal(0x4000_1010, 3)).unwrap();
        let e = b.flush().unwrap_err();
        assert_eq!(
            e,
            BatchError {
                errno: Errno::EPERM,
                failed: MmuUpdate::normal(0x4000_1008, u64::MAX)
            }
        );
        assert_eq!(b.len(), 2);
        b.skip();
        b.flush().unwrap();
        let addrs: Vec<u64> = b.submitter().applied[9..].iter().map(|u| u.ptr).collect();
        assert_eq!(addrs, vec![0x4000_1000, 0x4000_1010]);
        assert!(b.is_empty());
        assert!(b.flush().is_ok(), "an empty flush makes no call");
        assert_eq!(b.stats().1, 5);
    }

    proptest! {
        /// Whatever fails, every good request reaches the monitor exactly
        /// once and in order, when the caller skips each failing one.
        #[test]
        fn batch_delivers_every_good_request_once(vals in prop::collection::vec(prop_oneof![Just(u64::MAX), 0u64..1000], 0..40)) {
            let mut b: MmuBatch<Model, 5> = MmuBatch::new(Model::default());
            let mut failures = 0;
            for (i, &v) in vals.iter().enumerate() {
                let u = MmuUpdate::normal(8 * i as u64, v);
                while let Err(e) = b.push(u) {
                    prop_assert_eq!(e.failed.val, u64::MAX);
                    b.skip();
                    failures += 1;
                }
            }
            while let Err(e) = b.flush() {
                prop_assert_eq!(e.failed.val, u64::MAX);
                b.skip();
                failures += 1;
            }
            let good: Vec<u64> = vals.iter().copied().filter(|&v| v != u64::MAX).collect();
            let got: Vec<u64> = b.submitter().applied.iter().map(|u| u.val).collect();
            prop_assert_eq!(got, good);
            prop_assert_eq!(failures, vals.iter().filter(|&&v| v == u64::MAX).count());
        }
    }
}
