//! Decoding of exception syndromes (ESR_EL2) for dispatch and for reports.

/// Which vector an exception came through (as passed by the vector code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum ExceptionKind {
    /// Synchronous exception.
    Sync = 0,
    /// Physical IRQ.
    Irq = 1,
    /// Physical FIQ.
    Fiq = 2,
    /// SError (asynchronous abort).
    SError = 3,
}

impl ExceptionKind {
    /// From the value the vector code passes; unknown values read as `SError`
    /// so that they end up reported, never ignored.
    pub fn from_raw(v: u64) -> Self {
        match v {
            0 => Self::Sync,
            1 => Self::Irq,
            2 => Self::Fiq,
            _ => Self::SError,
        }
    }

    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sync => "synchronous",
            Self::Irq => "IRQ",
            Self::Fiq => "FIQ",
            Self::SError => "SError",
        }
    }
}

/// Exception classes (ESR_ELx.EC) the monitor dispatches on.
pub mod ec {
    /// Unknown reason.
    pub const UNKNOWN: u8 = 0x00;
    /// WFI or WFE.
    pub const WFX: u8 = 0x01;
    /// SVC from AArch64 (only seen at EL2 by mistake).
    pub const SVC64: u8 = 0x15;
    /// HVC from AArch64.
    pub const HVC64: u8 = 0x16;
    /// SMC from AArch64 (trapped by HCR_EL2.TSC).
    pub const SMC64: u8 = 0x17;
    /// MSR/MRS/system instruction trapped.
    pub const SYSREG: u8 = 0x18;
    /// Instruction abort from a lower EL.
    pub const IABT_LOWER: u8 = 0x20;
    /// Instruction abort at the same EL.
    pub const IABT_CUR: u8 = 0x21;
    /// Data abort from a lower EL.
    pub const DABT_LOWER: u8 = 0x24;
    /// Data abort at the same EL.
    pub const DABT_CUR: u8 = 0x25;
}

/// A decoded ESR value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Esr(pub u64);

impl Esr {
    /// The exception class.
    pub fn ec(self) -> u8 {
        ((self.0 >> 26) & 0x3f) as u8
    }

    /// The instruction-specific syndrome.
    pub fn iss(self) -> u32 {
        (self.0 & 0x1ff_ffff) as u32
    }

    /// Whether the trapped instruction was 32 bits long (IL).
    pub fn il32(self) -> bool {
        self.0 & (1 << 25) != 0
    }

    /// The immediate of an HVC/SMC/SVC.
    pub fn imm16(self) -> u16 {
        (self.0 & 0xffff) as u16
    }

    /// For aborts: the fault status code (DFSC/IFSC).
    pub fn fault_status(self) -> u8 {
        (self.0 & 0x3f) as u8
    }

    /// For data aborts: whether the access was a write (WnR).
    pub fn is_write(self) -> bool {
        self.0 & (1 << 6) != 0
    }

    /// The class's name, as the Arm architecture names it.
    pub fn ec_name(self) -> &'static str {
        ec_name(self.ec())
    }
}

/// Name of an exception class.
pub fn ec_name(ec: u8) -> &'static str {
    match ec {
        0x00 => "Unknown reason",
        0x01 => "WFI/WFE",
        0x03 => "MCR/MRC (CP15)",
        0x04 => "MCRR/MRRC (CP15)",
        0x05 => "MCR/MRC (CP14)",
        0x06 => "LDC/STC (CP14)",
        0x07 => "SVE/SIMD/FP access",
        0x0c => "MRRC (CP14)",
        0x0d => "Branch target exception",
        0x0e => "Illegal execution state",
        0x11 => "SVC (AArch32)",
        0x12 => "HVC (AArch32)",
        0x13 => "SMC (AArch32)",
        0x15 => "SVC (AArch64)",
        0x16 => "HVC (AArch64)",
        0x17 => "SMC (AArch64)",
        0x18 => "MSR/MRS/system instruction",
        0x19 => "SVE access",
        0x1c => "Pointer authentication failure",
        0x20 => "Instruction abort from a lower EL",
        0x21 => "Instruction abort at the same EL",
        0x22 => "PC alignment fault",
        0x24 => "Data abort from a lower EL",
        0x25 => "Data abort at the same EL",
        0x26 => "SP alignment fault",
        0x28 => "FP exception (AArch32)",
        0x2c => "FP exception (AArch64)",
        0x2f => "SError",
        0x30 => "Breakpoint from a lower EL",
        0x31 => "Breakpoint at the same EL",
        0x32 => "Software step from a lower EL",
        0x33 => "Software step at the same EL",
        0x34 => "Watchpoint from a lower EL",
        0x35 => "Watchpoint at the same EL",
        0x38 => "BKPT (AArch32)",
        0x3c => "BRK (AArch64)",
        _ => "Reserved exception class",
    }
}

/// Name of a data/instruction abort fault status code.
pub fn fault_status_name(fsc: u8) -> &'static str {
    match fsc {
        0x00..=0x03 => "address size fault",
        0x04..=0x07 => "translation fault",
        0x09..=0x0b => "access flag fault",
        0x0d..=0x0f => "permission fault",
        0x10 => "synchronous external abort",
        0x21 => "alignment fault",
        0x30 => "TLB conflict abort",
        _ => "other fault",
    }
}

/// Level of a translation/permission/access fault, if the code has one.
pub fn fault_level(fsc: u8) -> Option<u8> {
    match fsc {
        0x00..=0x0f => Some(fsc & 3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_hvc() {
        // EC 0x16, IL, imm 0xEA1.
        let e = Esr((0x16 << 26) | (1 << 25) | 0xea1);
        assert_eq!(e.ec(), ec::HVC64);
        assert_eq!(e.imm16(), 0xea1);
        assert!(e.il32());
        assert_eq!(e.ec_name(), "HVC (AArch64)");
    }

    #[test]
    fn decodes_data_abort() {
        // Lower-EL data abort, write, level-2 translation fault.
        let e = Esr((0x24 << 26) | (1 << 25) | (1 << 6) | 0x06);
        assert_eq!(e.ec(), ec::DABT_LOWER);
        assert!(e.is_write());
        assert_eq!(fault_status_name(e.fault_status()), "translation fault");
        assert_eq!(fault_level(e.fault_status()), Some(2));
        assert_eq!(e.ec_name(), "Data abort from a lower EL");
    }

    #[test]
    fn every_class_has_a_name() {
        for ec in 0..64u8 {
            assert!(!ec_name(ec).is_empty());
        }
        assert_eq!(ec_name(0x3f), "Reserved exception class");
    }

    #[test]
    fn kinds_round_trip() {
        for k in [
            ExceptionKind::Sync,
            ExceptionKind::Irq,
            ExceptionKind::Fiq,
            ExceptionKind::SError,
        ] {
            assert_eq!(ExceptionKind::from_raw(k as u64), k);
        }
        assert_eq!(ExceptionKind::from_raw(99), ExceptionKind::SError);
    }
}
