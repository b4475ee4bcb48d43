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
    /// Index of that CPU (for the monitor's trap fast path).
    pub cpu: u64,
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

/// The FP/SIMD register file: `q0..q31`, FPCR and FPSR. Saved and restored
/// when the physical CPU switches vCPUs (the monitor itself never uses them).
#[repr(C, align(16))]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FpState {
    /// `q0..q31`.
    pub q: [u128; 32],
    /// FPCR.
    pub fpcr: u64,
    /// FPSR.
    pub fpsr: u64,
}

const _: () = {
    assert!(core::mem::offset_of!(FpState, fpcr) == 512);
    assert!(core::mem::offset_of!(FpState, fpsr) == 520);
};

/// Where a vCPU is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Power {
    /// Not started (secondary vCPUs until `VCPUOP_up` or PSCI `CPU_ON`), or
    /// stopped by `VCPUOP_down` / PSCI `CPU_OFF`.
    #[default]
    Down,
    /// Started: runnable or blocked, as the scheduler knows.
    Up,
}

/// One virtual CPU.
#[derive(Debug, Default)]
pub struct Vcpu {
    /// Saved general registers (must stay first: TPIDR_EL2 points here).
    pub regs: VcpuRegs,
    /// Saved EL1 system registers.
    pub el1: El1State,
    /// Saved FP/SIMD registers.
    pub fp: FpState,
    /// Index of the vCPU within its domain.
    pub id: u32,
    /// Started or not.
    pub power: Power,
    /// Has a start state (the boot vCPU, or after `VCPUOP_initialise` /
    /// PSCI `CPU_ON`).
    pub initialised: bool,
    /// Blocked until an event or its timer (WFI, `SCHEDOP_block`).
    pub blocked: bool,
    /// The physical CPU it is loaded on, if any.
    pub on_cpu: Option<usize>,
    /// The monitor's timer interrupt fired for this vCPU and the guest has
    /// not yet acknowledged it (by its next `set_timer_op`).
    pub timer_pending: bool,
    /// CPU time used, ns.
    pub cpu_time: u64,
    /// Has run at least once (its first run is reported).
    pub ran: bool,
    /// Sleeping in `SCHEDOP_poll` (woken by any event, or its timeout).
    pub polling: bool,
    /// When it was last put on a CPU (system time, ns).
    pub since: u64,
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
            ..Self::default()
        }
    }

    /// Puts the vCPU back at `entry` with `x0 = arg`, as PSCI `CPU_ON` and
    /// `VCPUOP_initialise` do: clean registers, MMU off, interrupts masked.
    pub fn reset(&mut self, entry: u64, arg: u64) {
        let (host_sp, cpu) = (self.regs.host_sp, self.regs.cpu);
        self.regs = VcpuRegs::default();
        self.regs.x[0] = arg;
        self.regs.elr = entry;
        self.regs.spsr = SPSR_EL1H_MASKED;
        self.regs.host_sp = host_sp;
        self.regs.cpu = cpu;
        self.el1 = El1State::reset();
        self.fp = FpState::default();
        self.timer_pending = false;
        self.blocked = false;
    }

    /// Whether a virtual IRQ must be signalled to the vCPU.
    pub fn irq_line(&self) -> bool {
        self.timer_pending
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
        assert_eq!(v.power, Power::Down);
        assert!(!v.irq_line());
    }

    #[test]
    fn reset_clears_state_but_keeps_the_host_stack() {
        let mut v = Vcpu::new(1, 0x4008_0000, 0);
        v.regs.host_sp = 0x1234_0000;
        v.regs.cpu = 3;
        v.regs.x[5] = 9;
        v.fp.q[3] = 7;
        v.el1.r[2] = 0x4444_0000;
        v.timer_pending = true;
        v.reset(0x4010_0000, 42);
        assert_eq!(v.regs.x[0], 42);
        assert_eq!(v.regs.x[5], 0);
        assert_eq!(v.regs.elr, 0x4010_0000);
        assert_eq!(v.regs.host_sp, 0x1234_0000);
        assert_eq!(v.regs.cpu, 3);
        assert_eq!(v.fp, FpState::default());
        assert_eq!(v.el1, El1State::reset());
        assert!(!v.irq_line());
    }
}
