//! Virtual time: counter ticks to and from nanoseconds of system time (as
//! Xen's, ns since boot) without overflow, and per-vCPU one-shot timer
//! deadlines with the earliest one per physical CPU.

use crate::sched::VcpuId;
use alloc::vec::Vec;

/// Nanoseconds per second.
pub const NS_PER_SEC: u64 = 1_000_000_000;

/// `ticks` of a counter running at `freq` Hz, in ns (rounded down,
/// saturating at `u64::MAX`; 0 for a zero frequency).
pub fn ticks_to_ns(ticks: u64, freq: u64) -> u64 {
    if freq == 0 {
        return 0;
    }
    let ns = ticks as u128 * NS_PER_SEC as u128 / freq as u128;
    ns.min(u64::MAX as u128) as u64
}

/// `ns` in ticks of a counter running at `freq` Hz (rounded up, so a
/// deadline converted to ticks is never early; saturating).
pub fn ns_to_ticks(ns: u64, freq: u64) -> u64 {
    let t = (ns as u128 * freq as u128).div_ceil(NS_PER_SEC as u128);
    t.min(u64::MAX as u128) as u64
}

/// One-shot timers of vCPUs (`set_timer_op`): at most one deadline per
/// vCPU, in ns of system time.
#[derive(Clone, Debug, Default)]
pub struct Timers {
    t: Vec<(VcpuId, u64)>,
}

impl Timers {
    /// No timers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `v`'s deadline (replacing any); 0 cancels it, as in
    /// `set_timer_op`.
    pub fn set(&mut self, v: VcpuId, deadline: u64) {
        self.cancel(v);
        if deadline != 0 {
            self.t.push((v, deadline));
        }
    }

    /// Cancels `v`'s deadline (and forgets it: use when a vCPU goes away).
    pub fn cancel(&mut self, v: VcpuId) {
        self.t.retain(|&(x, _)| x != v);
    }

    /// Cancels the deadlines of every vCPU of domain `dom`.
    pub fn cancel_domain(&mut self, dom: u16) {
        self.t.retain(|&(x, _)| x.dom != dom);
    }

    /// `v`'s deadline, if set.
    pub fn deadline(&self, v: VcpuId) -> Option<u64> {
        self.t.iter().find(|&&(x, _)| x == v).map(|&(_, d)| d)
    }

    /// Removes and returns (in deadline order) the vCPUs whose deadline is
    /// at or before `now`: their timer fires.
    pub fn expire(&mut self, now: u64) -> Vec<VcpuId> {
        let mut due: Vec<(VcpuId, u64)> =
            self.t.iter().copied().filter(|&(_, d)| d <= now).collect();
        self.t.retain(|&(_, d)| d > now);
        due.sort_by_key(|&(v, d)| (d, v));
        due.into_iter().map(|(v, _)| v).collect()
    }

    /// The earliest deadline among the vCPUs for which `on_cpu` says they
    /// belong to this physical CPU (the CPU whose timer must fire for
    /// them), or `None`.
    pub fn earliest(&self, on_cpu: impl Fn(VcpuId) -> bool) -> Option<u64> {
        self.t
            .iter()
            .filter(|&&(v, _)| on_cpu(v))
            .map(|&(_, d)| d)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn conversions_at_common_frequencies() {
        assert_eq!(ticks_to_ns(62_500_000, 62_500_000), NS_PER_SEC); // QEMU virt
        assert_eq!(ticks_to_ns(54, 54_000_000), 1_000); // Raspberry Pi 4
        assert_eq!(ns_to_ticks(1_000, 54_000_000), 54);
        assert_eq!(ns_to_ticks(1, 62_500_000), 1, "rounded up, never early");
        assert_eq!(ticks_to_ns(1, 62_500_000), 16, "rounded down");
        // A counter value that would overflow ticks * 1e9 in u64.
        let ticks = u64::MAX / 2;
        assert_eq!(ticks_to_ns(ticks, 1_000_000_000), ticks);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX, "saturates");
        assert_eq!(ns_to_ticks(u64::MAX, 2_000_000_000), u64::MAX, "saturates");
        assert_eq!(ticks_to_ns(5, 0), 0);
    }

    #[test]
    fn timers_set_replace_cancel_expire() {
        let (a, b, c) = (VcpuId::new(1, 0), VcpuId::new(1, 1), VcpuId::new(2, 0));
        let mut t = Timers::new();
        t.set(a, 300);
        t.set(b, 100);
        t.set(c, 200);
        t.set(a, 50); // replaces
        assert_eq!(t.deadline(a), Some(50));
        assert_eq!(t.earliest(|_| true), Some(50));
        assert_eq!(t.earliest(|v| v.dom == 2), Some(200));
        assert_eq!(t.earliest(|v| v.dom == 3), None);
        t.set(b, 0); // cancels
        assert_eq!(t.deadline(b), None);
        assert_eq!(t.expire(49), vec![]);
        assert_eq!(t.expire(200), vec![a, c]);
        assert_eq!(t.earliest(|_| true), None);
        t.set(a, 10);
        t.set(c, 10);
        t.cancel_domain(1);
        assert_eq!(t.expire(u64::MAX), vec![c]);
    }

    proptest! {
        #[test]
        fn round_trip_is_never_early(ns in 0u64..u64::MAX / 4, freq in 1u64..=4_000_000_000) {
            let ticks = ns_to_ticks(ns, freq);
            let back = ticks_to_ns(ticks, freq);
            prop_assert!(back >= ns || ticks == u64::MAX);
            // At most one tick late.
            prop_assert!(back - ns <= NS_PER_SEC / freq + 1);
        }

        #[test]
        fn earliest_is_the_minimum_and_expire_takes_exactly_the_due(
            ds in prop::collection::vec((0u16..4, 1u64..1000), 0..20), now in 0u64..1000,
        ) {
            let mut t = Timers::new();
            let mut last = std::collections::BTreeMap::new();
            for (k, (cpu, d)) in ds.iter().enumerate() {
                let v = VcpuId::new(*cpu, k as u16 % 3);
                t.set(v, *d);
                last.insert(v, *d);
            }
            for cpu in 0..4 {
                let want = last.iter().filter(|(v, _)| v.dom == cpu).map(|(_, &d)| d).min();
                prop_assert_eq!(t.earliest(|v| v.dom == cpu), want);
            }
            let fired = t.expire(now);
            prop_assert_eq!(fired.len(), last.values().filter(|&&d| d <= now).count());
            prop_assert!(t.earliest(|_| true).is_none_or(|d| d > now));
        }
    }
}
