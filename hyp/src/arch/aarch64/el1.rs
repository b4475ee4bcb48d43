//! Saving and restoring a vCPU's EL1 system registers, and the EL2 settings
//! that apply while a guest runs.

use crate::vcpu::El1State;

macro_rules! save_restore {
    ($($i:literal => $reg:literal),* $(,)?) => {
        /// Reads the live EL1 registers into `s`.
        pub fn save(s: &mut El1State) {
            $( s.r[$i] = crate::mrs!($reg); )*
        }
        /// Loads `s` into the EL1 registers.
        pub fn restore(s: &El1State) {
            $( crate::msr!($reg, s.r[$i]); )*
            super::isb();
        }
    };
}

// Same order as `vcpu::EL1_REGS`.
save_restore! {
    0 => "sctlr_el1", 1 => "cpacr_el1", 2 => "ttbr0_el1", 3 => "ttbr1_el1", 4 => "tcr_el1",
    5 => "esr_el1", 6 => "far_el1", 7 => "afsr0_el1", 8 => "afsr1_el1", 9 => "mair_el1",
    10 => "amair_el1", 11 => "contextidr_el1", 12 => "vbar_el1", 13 => "tpidr_el0",
    14 => "tpidrro_el0", 15 => "tpidr_el1", 16 => "sp_el1", 17 => "elr_el1", 18 => "spsr_el1",
    19 => "par_el1", 20 => "cntkctl_el1", 21 => "cntv_ctl_el0", 22 => "cntv_cval_el0",
    23 => "csselr_el1",
}

/// HCR_EL2 while guests run: EL1 is AArch64 (RW); stage 2 on (VM); set/way
/// invalidates upgraded (SWIO); IRQ, FIQ and SError routed to EL2 (IMO, FMO,
/// AMO); SMC trapped so guests cannot reach firmware (TSC); WFI trapped so
/// an idle guest gives up the CPU (TWI); the guest's memory cacheable while
/// its stage-1 MMU is off (DC, cleared while it is on); writes of the EL1
/// translation registers trapped for the PV MMU (TVM).
pub const HCR_GUEST: u64 = (1 << 31)
    | (1 << 26)
    | (1 << 0)
    | (1 << 1)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 19)
    | (1 << 13)
    | (1 << 12);

/// HCR_EL2.DC: default cacheable, for a guest whose stage-1 MMU is off.
pub const HCR_DC: u64 = 1 << 12;

/// HCR_EL2.VI: a virtual IRQ is pending for the guest.
pub const HCR_VI: u64 = 1 << 7;

/// Sets the offset of the guests' virtual counter: they count from the
/// monitor's boot (Xen's system time).
pub fn set_cntvoff(boot_cnt: u64) {
    crate::msr!("cntvoff_el2", boot_cnt);
}

/// One-time EL2 set-up for running guests on this CPU.
pub fn init_cpu() {
    // No traps of FP/SIMD (bit 10 TFP clear); RES1 bits set.
    crate::msr!("cptr_el2", 0x33ff);
    // Guests may read the physical counter, not program the physical timer.
    crate::msr!("cnthctl_el2", 0b01);
    crate::msr!("cntvoff_el2", 0);
    // Debug and performance-monitor registers: no traps yet; HPMN = PMCR_EL0.N.
    let pmcr_n = (crate::mrs!("pmcr_el0") >> 11) & 0x1f;
    crate::msr!("mdcr_el2", pmcr_n);
    crate::msr!("hcr_el2", HCR_GUEST);
    super::isb();
}

/// Sets the virtual MPIDR the running vCPU reads.
pub fn set_vmpidr(vcpu_id: u32) {
    crate::msr!("vmpidr_el2", (1 << 31) | vcpu_id as u64);
}

/// Translates a guest virtual address with the guest's stage-1 tables (AT
/// S1E1R/W), giving the intermediate physical address. PAR_EL1 belongs to
/// the guest, so it is preserved.
pub fn gva_to_ipa(gva: u64, write: bool) -> Option<u64> {
    let saved = crate::mrs!("par_el1");
    // SAFETY: address translation instructions only update PAR_EL1.
    unsafe {
        if write {
            core::arch::asm!("at s1e1w, {}", "isb", in(reg) gva, options(nostack));
        } else {
            core::arch::asm!("at s1e1r, {}", "isb", in(reg) gva, options(nostack));
        }
    }
    let par = crate::mrs!("par_el1");
    crate::msr!("par_el1", saved);
    if par & 1 != 0 {
        None
    } else {
        Some((par & 0x0000_ffff_ffff_f000) | (gva & 0xfff))
    }
}
