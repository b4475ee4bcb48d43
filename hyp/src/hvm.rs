//! `hvm_op` (ABI in `hypercall_abi::hvm`): `HVMOP_get_param` of
//! [`HVM_PARAM_DRIVER_DOMAIN`], the current driver domain, for front ends
//! that look for a new back end. A plain function over the calling guest's
//! memory and the monitor's answer, host-tested.

use crate::hypercall::Guest;
use hypercall_abi::event_channel::DOMID_SELF;
use hypercall_abi::hvm::{
    DriverDomain, HvmParam, HVMOP_GET_PARAM, HVMOP_SET_PARAM, HVM_PARAM_DRIVER_DOMAIN,
};
use hypercall_abi::Errno;

/// Handles `hvm_op(cmd, arg)` from domain `caller`, `driver` being the
/// monitor's current answer. Checks everything before writing anything.
pub fn hvm_op(
    g: &mut impl Guest,
    caller: u16,
    driver: DriverDomain,
    cmd: u64,
    arg: u64,
) -> Result<u64, Errno> {
    if cmd != HVMOP_GET_PARAM && cmd != HVMOP_SET_PARAM {
        return Err(Errno::ENOSYS);
    }
    let mut b = [0u8; 16];
    g.read(arg, &mut b)?;
    let mut p = HvmParam::from_bytes(&b);
    if p.domid != DOMID_SELF && p.domid != caller {
        return Err(Errno::EPERM);
    }
    if p.index != HVM_PARAM_DRIVER_DOMAIN {
        return Err(Errno::EINVAL);
    }
    if cmd == HVMOP_SET_PARAM {
        return Err(Errno::EPERM);
    }
    p.value = driver.encode();
    g.write(arg, &p.to_bytes())?;
    Ok(0)
}

/// The next domain id after `last`, in increasing order and wrapping from
/// `max` back to 1 (Xen gives out ids the same way), skipping ids for
/// which `in_use` holds; `None` if all of `1..=max` are in use.
pub fn next_domid(last: u16, max: u16, in_use: impl Fn(u16) -> bool) -> Option<u16> {
    if max == 0 {
        return None;
    }
    let start = if last >= max { 0 } else { last };
    (1..=max)
        .map(|k| ((start as u32 + k as u32 - 1) % max as u32 + 1) as u16)
        .find(|&id| !in_use(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypercall::sim::SimGuest;
    use proptest::prelude::*;

    const B: u64 = 0x4000_0000;
    const DRV: DriverDomain = DriverDomain {
        domid: Some(4),
        generation: 2,
    };

    fn put(g: &mut SimGuest, at: u64, domid: u16, index: u32) {
        let p = HvmParam {
            domid,
            pad: 0,
            index,
            value: 0xdead,
        };
        g.write(at, &p.to_bytes()).unwrap();
    }

    fn value(g: &SimGuest, at: u64) -> u64 {
        let mut b = [0u8; 16];
        g.read(at, &mut b).unwrap();
        HvmParam::from_bytes(&b).value
    }

    #[test]
    fn get_driver_domain_for_self_and_own_id() {
        let mut g = SimGuest::new(B, 4096);
        put(&mut g, B + 64, DOMID_SELF, HVM_PARAM_DRIVER_DOMAIN);
        assert_eq!(hvm_op(&mut g, 7, DRV, HVMOP_GET_PARAM, B + 64), Ok(0));
        assert_eq!(DriverDomain::decode(value(&g, B + 64)), Some(DRV));
        put(&mut g, B + 64, 7, HVM_PARAM_DRIVER_DOMAIN);
        let none = DriverDomain {
            domid: None,
            generation: 3,
        };
        assert_eq!(hvm_op(&mut g, 7, none, HVMOP_GET_PARAM, B + 64), Ok(0));
        assert_eq!(DriverDomain::decode(value(&g, B + 64)), Some(none));
    }

    #[test]
    fn bad_arguments_are_refused_and_change_nothing() {
        let mut g = SimGuest::new(B, 4096);
        put(&mut g, B, DOMID_SELF, HVM_PARAM_DRIVER_DOMAIN);
        let before = g.mem.clone();
        // Unknown sub-operations.
        for cmd in [2, 5, 99, u64::MAX] {
            assert_eq!(hvm_op(&mut g, 7, DRV, cmd, B), Err(Errno::ENOSYS));
        }
        // Setting is refused.
        assert_eq!(
            hvm_op(&mut g, 7, DRV, HVMOP_SET_PARAM, B),
            Err(Errno::EPERM)
        );
        // Pointers outside the guest, or a struct crossing its end.
        for at in [0, B - 8, B + 4096 - 8, B + 4096, u64::MAX - 4] {
            assert_eq!(
                hvm_op(&mut g, 7, DRV, HVMOP_GET_PARAM, at),
                Err(Errno::EFAULT),
                "{at:#x}"
            );
        }
        assert_eq!(g.mem, before);
        // Another domain's parameters.
        put(&mut g, B, 3, HVM_PARAM_DRIVER_DOMAIN);
        let before = g.mem.clone();
        assert_eq!(
            hvm_op(&mut g, 7, DRV, HVMOP_GET_PARAM, B),
            Err(Errno::EPERM)
        );
        assert_eq!(g.mem, before);
        // Parameters this monitor does not provide (Xen's included).
        for index in [0, 1, 2, 17, 18, 40, 0xff, 0x101, u32::MAX] {
            put(&mut g, B, DOMID_SELF, index);
            let before = g.mem.clone();
            assert_eq!(
                hvm_op(&mut g, 7, DRV, HVMOP_GET_PARAM, B),
                Err(Errno::EINVAL),
                "index {index}"
            );
            assert_eq!(g.mem, before);
        }
    }

    #[test]
    fn ids_go_up_and_wrap_skipping_those_in_use() {
        assert_eq!(next_domid(0, 63, |_| false), Some(1));
        assert_eq!(next_domid(3, 63, |_| false), Some(4));
        assert_eq!(next_domid(3, 63, |i| i == 4 || i == 5), Some(6));
        assert_eq!(next_domid(63, 63, |_| false), Some(1));
        assert_eq!(next_domid(62, 63, |i| i == 63), Some(1));
        assert_eq!(next_domid(10, 63, |i| i != 2), Some(2));
        assert_eq!(next_domid(10, 63, |_| true), None);
        assert_eq!(next_domid(10, 0, |_| false), None);
    }

    proptest! {
        #[test]
        fn next_id_is_free_in_range_and_the_first_after_last(
            last in 0u16..80, max in 1u16..70, used in proptest::collection::btree_set(1u16..70, 0..70)
        ) {
            let got = next_domid(last, max, |i| used.contains(&i));
            let free: Vec<u16> = (1..=max).filter(|i| !used.contains(i)).collect();
            match got {
                None => prop_assert!(free.is_empty()),
                Some(id) => {
                    prop_assert!((1..=max).contains(&id) && !used.contains(&id));
                    // No free id strictly between `last` and `id` (cyclically).
                    let start = if last >= max { 0 } else { last };
                    let dist = |i: u16| (i as u32 + max as u32 - start as u32 - 1) % max as u32;
                    prop_assert!(free.iter().all(|&f| dist(f) >= dist(id)));
                }
            }
        }

        #[test]
        fn driver_domain_values_round_trip(id in 0u16..0x7ff0, none in any::<bool>(), gen in any::<u32>()) {
            let d = DriverDomain { domid: (!none).then_some(id), generation: gen };
            prop_assert_eq!(DriverDomain::decode(d.encode()), Some(d));
        }
    }
}
