//! The EL2 physical timer (CNTHP), the monitor's periodic tick.

/// Counter frequency, Hz.
pub fn frequency() -> u64 {
    crate::mrs!("cntfrq_el0")
}

/// Physical counter.
pub fn now() -> u64 {
    crate::mrs!("cntpct_el0")
}

/// Arms the timer to fire `ticks` counter ticks from now.
pub fn arm(ticks: u64) {
    crate::msr!("cnthp_tval_el2", ticks.min(u32::MAX as u64));
    crate::msr!("cnthp_ctl_el2", 1); // ENABLE, not masked
    super::isb();
}

/// Arms the timer to fire when the physical counter reaches `cval`.
pub fn arm_at(cval: u64) {
    crate::msr!("cnthp_cval_el2", cval);
    crate::msr!("cnthp_ctl_el2", 1); // ENABLE, not masked
    super::isb();
}

/// Stops the timer.
pub fn stop() {
    crate::msr!("cnthp_ctl_el2", 0);
}
