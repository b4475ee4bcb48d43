//! What the PV MMU needs from the CPU: TLB maintenance for the running
//! domain, EL1 translation registers, HCR_EL2.DC, and injecting a
//! synchronous exception into the guest.

use crate::pvmmu::sysreg::Reg;
use crate::vcpu::VcpuRegs;
use crate::{mrs, msr};

/// Invalidates the running domain's stage-1 TLB entries (its VMID is
/// active): all of them, or those of one VA in every ASID.
pub fn flush_stage1(va: Option<u64>) {
    // SAFETY: TLB maintenance and barriers only, for the current VMID.
    unsafe {
        match va {
            None => core::arch::asm!(
                "dsb ishst",
                "tlbi vmalle1is",
                "dsb ish",
                "isb",
                options(nostack)
            ),
            Some(va) => core::arch::asm!(
                "dsb ishst", "tlbi vaae1is, {}", "dsb ish", "isb",
                in(reg) (va >> 12) & 0xfff_ffff_ffff, options(nostack)
            ),
        }
    }
}

/// After a stage-2 permission change of the page at `ipa`: invalidates its
/// stage-2 entries and every combined stage-1+2 entry of the VMID.
pub fn flush_ipa(ipa: u64) {
    // SAFETY: TLB maintenance and barriers only, for the current VMID.
    unsafe {
        core::arch::asm!(
            "dsb ishst", "tlbi ipas2e1is, {}", "dsb ish", "tlbi vmalle1is", "dsb ish", "isb",
            in(reg) (ipa >> 12) & 0xf_ffff_ffff, options(nostack)
        )
    };
}

/// Writes an EL1 register the monitor trapped and accepted.
pub fn write_el1(reg: Reg, v: u64) {
    match reg {
        Reg::Sctlr => msr!("sctlr_el1", v),
        Reg::Ttbr0 => msr!("ttbr0_el1", v),
        Reg::Ttbr1 => msr!("ttbr1_el1", v),
        Reg::Tcr => msr!("tcr_el1", v),
        Reg::Mair => msr!("mair_el1", v),
        Reg::Amair => msr!("amair_el1", v),
        Reg::Esr => msr!("esr_el1", v),
        Reg::Far => msr!("far_el1", v),
        Reg::Afsr0 => msr!("afsr0_el1", v),
        Reg::Afsr1 => msr!("afsr1_el1", v),
        Reg::Contextidr => msr!("contextidr_el1", v),
    }
    super::isb();
}

/// The running vCPU's TCR_EL1.
pub fn tcr_el1() -> u64 {
    mrs!("tcr_el1")
}

/// ESR_EL1 of an undefined-instruction exception (32-bit instruction).
pub const ESR_UNDEF: u64 = 1 << 25;

/// ESR_EL1 of a permission fault (level 3) on a write, taken from EL1
/// (`from_el0` false) or EL0.
pub fn esr_write_fault(from_el0: bool) -> u64 {
    let ec: u64 = if from_el0 { 0x24 } else { 0x25 };
    ec << 26 | 1 << 25 | 1 << 6 | 0x0f
}

/// Makes the vCPU take a synchronous exception at EL1 when it resumes, as
/// the hardware would: ELR/SPSR_EL1 keep where it was, ESR/FAR_EL1 say why,
/// and it continues at the right entry of its VBAR_EL1 with everything
/// masked.
pub fn inject_sync(regs: &mut VcpuRegs, esr: u64, far: u64) {
    let m = regs.spsr & 0xf;
    let offset = match m {
        0b0101 => 0x200, // EL1h: current EL with SP_ELx
        0b0100 => 0x000, // EL1t: current EL with SP_EL0
        _ => 0x400,      // EL0: lower EL, AArch64
    };
    msr!("elr_el1", regs.elr);
    msr!("spsr_el1", regs.spsr);
    msr!("esr_el1", esr);
    msr!("far_el1", far);
    regs.elr = mrs!("vbar_el1") + offset;
    regs.spsr = crate::vcpu::SPSR_EL1H_MASKED;
}
