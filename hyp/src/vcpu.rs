//! A virtual CPU's saved state, laid out for the vector code.

/// General registers and exception state, saved by `vectors.S` on every
/// exception from the guest and restored on every return to it. The layout is
/// fixed: the assembly uses these offsets.
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct VcpuRegs {
    /// x0..x30.
    pub x: [u64; 31],
    /// The guest's EL0 stack pointer.
    pub sp_el0: u64,
    /// Where the guest resumes.
    pub elr: u64,
    /// The guest's PSTATE at the exception.
    pub spsr: u64,
    /// Top of the EL2 stack of the CPU this vCPU runs on.
    pub host_sp: u64,
}

const _: () = {
    assert!(core::mem::offset_of!(VcpuRegs, sp_el0) == 248);
    assert!(core::mem::offset_of!(VcpuRegs, elr) == 256);
    assert!(core::mem::offset_of!(VcpuRegs, host_sp) == 272);
};

/// The EL1 system registers of a vCPU, saved and restored only when the
/// physical CPU switches to another vCPU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct El1State {
    /// Register values, in the order of [`EL1_REGS`].
    pub r: [u64; EL1_REGS.len()],
}

/// Names of the registers in [`El1State`], for reports and the arch layer.
pub const EL1_REGS: [&str; 24] = [
    "sctlr_el1",
    "cpacr_el1",
    "ttbr0_el1",
    "ttbr1_el1",
    "tcr_el1",
    "esr_el1",
    "far_el1",
    "afsr0_el1",
    "afsr1_el1",
    "mair_el1",
    "amair_el1",
    "contextidr_el1",
    "vbar_el1",
    "tpidr_el0",
    "tpidrro_el0",
    "tpidr_el1",
    "sp_el1",
    "elr_el1",
    "spsr_el1",
    "par_el1",
    "cntkctl_el1",
    "cntv_ctl_el0",
    "cntv_cval_el0",
    "csselr_el1",
];

/// SCTLR_EL1 at reset: RES1 bits only; MMU, caches and alignment checks off.
pub const SCTLR_EL1_RESET: u64 = 0x30d0_0800;
/// PSTATE for entering a guest: EL1h with D, A, I and F masked.
pub const SPSR_EL1H_MASKED: u64 = 0x3c5;

impl El1State {
    /// The state a freshly built vCPU starts with.
    pub fn reset() -> Self {
        let mut s = Self::default();
        s.r[0] = SCTLR_EL1_RESET;
        s
    }
    /// SCTLR_EL1 as saved.
    pub fn sctlr(&self) -> u64 {
        self.r[0]
    }
}

/// One virtual CPU.
#[derive(Debug, Default)]
pub struct Vcpu {
    /// Saved general registers (must stay first: TPIDR_EL2 points here).
    pub regs: VcpuRegs,
    /// Saved EL1 system registers.
    pub el1: El1State,
    /// Index of the vCPU within its domain.
    pub id: u32,
}

impl Vcpu {
    /// A vCPU that will start at `entry` with `x0 = arg` and a clean state.
    pub fn new(id: u32, entry: u64, arg: u64) -> Self {
        let mut regs = VcpuRegs::default();
        regs.x[0] = arg;
        regs.elr = entry;
        regs.spsr = SPSR_EL1H_MASKED;
        Self {
            regs,
            el1: El1State::reset(),
            id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_vcpu_is_clean() {
        let v = Vcpu::new(0, 0x4008_0000, 0x40f0_0000);
        assert_eq!(v.regs.x[0], 0x40f0_0000);
        assert!(v.regs.x[1..].iter().all(|&r| r == 0));
        assert_eq!(v.regs.elr, 0x4008_0000);
        assert_eq!(v.regs.spsr, SPSR_EL1H_MASKED);
        assert_eq!(v.el1.sctlr() & 1, 0, "MMU off");
        assert!(v.el1.r[1..].iter().all(|&r| r == 0));
    }
}
