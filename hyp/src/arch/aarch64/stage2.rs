//! Stage-2 translation control: VTCR_EL2, VTTBR_EL2 and TLB maintenance by VMID.

/// VTCR_EL2: T0SZ=25 (39-bit guest-physical space), start at level 1
/// (SL0=1), inner/outer write-back, inner shareable, 4 KiB granule, 40-bit
/// physical addresses, RES1 bit 31.
pub const VTCR: u64 = 25 | (1 << 6) | (1 << 8) | (1 << 10) | (3 << 12) | (2 << 16) | (1 << 31);

/// Sets up stage-2 translation on this CPU.
pub fn init_cpu() {
    crate::msr!("vtcr_el2", VTCR);
    super::isb();
}

/// Makes `root` with `vmid` the current stage-2 map.
pub fn activate(root: u64, vmid: u16) {
    crate::msr!("vttbr_el2", ((vmid as u64) << 48) | root);
    super::isb();
}

/// Invalidates every stage-1 and stage-2 TLB entry of `vmid` on all CPUs
/// (inner shareable), e.g. before its tables or frames are reused.
pub fn flush_vmid(root: u64, vmid: u16) {
    let saved = crate::mrs!("vttbr_el2");
    activate(root, vmid);
    // SAFETY: TLB maintenance and barriers only.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi vmalls12e1is",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
    crate::msr!("vttbr_el2", saved);
    super::isb();
}

/// Invalidates the stage-2 TLB entries for guest-physical page `ipa` of
/// `vmid` (and its combined stage-1+2 entries) on all CPUs, after a
/// stage-2 entry was removed or downgraded.
pub fn flush_ipa(root: u64, vmid: u16, ipa: u64) {
    let saved = crate::mrs!("vttbr_el2");
    activate(root, vmid);
    // SAFETY: TLB maintenance and barriers only.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi ipas2e1is, {ipa}",
            "dsb ish",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            ipa = in(reg) ipa >> 12,
            options(nostack)
        )
    };
    crate::msr!("vttbr_el2", saved);
    super::isb();
}
