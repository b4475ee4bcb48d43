//! Trapped writes of EL1 translation registers (`HCR_EL2.TVM`, exception
//! class 0x18): decoding the syndrome and the rules for each register
//! (documented for guests in `hypercall_abi::mmu`).

use super::Ttbr;
use hypercall_abi::errno::Errno;

/// A register that `HCR_EL2.TVM` traps writes of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    /// SCTLR_EL1.
    Sctlr,
    /// TTBR0_EL1.
    Ttbr0,
    /// TTBR1_EL1.
    Ttbr1,
    /// TCR_EL1.
    Tcr,
    /// MAIR_EL1.
    Mair,
    /// AMAIR_EL1 (passed through).
    Amair,
    /// ESR_EL1 (passed through).
    Esr,
    /// FAR_EL1 (passed through).
    Far,
    /// AFSR0_EL1 (passed through).
    Afsr0,
    /// AFSR1_EL1 (passed through).
    Afsr1,
    /// CONTEXTIDR_EL1 (passed through).
    Contextidr,
}

/// A decoded MSR/MRS trap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// The register, if it is one of [`Reg`].
    pub reg: Option<Reg>,
    /// The general-purpose register (31 = xzr).
    pub rt: u8,
    /// MSR (write) rather than MRS (read).
    pub write: bool,
}

/// Decodes the ISS of an exception with class 0x18.
pub fn decode(iss: u32) -> Access {
    let op0 = (iss >> 20) & 3;
    let op2 = (iss >> 17) & 7;
    let op1 = (iss >> 14) & 7;
    let crn = (iss >> 10) & 0xf;
    let rt = ((iss >> 5) & 0x1f) as u8;
    let crm = (iss >> 1) & 0xf;
    let write = iss & 1 == 0;
    let reg = match (op0, op1, crn, crm, op2) {
        (3, 0, 1, 0, 0) => Some(Reg::Sctlr),
        (3, 0, 2, 0, 0) => Some(Reg::Ttbr0),
        (3, 0, 2, 0, 1) => Some(Reg::Ttbr1),
        (3, 0, 2, 0, 2) => Some(Reg::Tcr),
        (3, 0, 5, 1, 0) => Some(Reg::Afsr0),
        (3, 0, 5, 1, 1) => Some(Reg::Afsr1),
        (3, 0, 5, 2, 0) => Some(Reg::Esr),
        (3, 0, 6, 0, 0) => Some(Reg::Far),
        (3, 0, 10, 2, 0) => Some(Reg::Mair),
        (3, 0, 10, 3, 0) => Some(Reg::Amair),
        (3, 0, 13, 0, 1) => Some(Reg::Contextidr),
        _ => None,
    };
    Access { reg, rt, write }
}

/// The ISS an MSR of `reg` from `xN` produces (the inverse of [`decode`]).
pub fn encode(reg: Reg, rt: u8) -> u32 {
    let (crn, crm, op2) = match reg {
        Reg::Sctlr => (1, 0, 0),
        Reg::Ttbr0 => (2, 0, 0),
        Reg::Ttbr1 => (2, 0, 1),
        Reg::Tcr => (2, 0, 2),
        Reg::Afsr0 => (5, 1, 0),
        Reg::Afsr1 => (5, 1, 1),
        Reg::Esr => (5, 2, 0),
        Reg::Far => (6, 0, 0),
        Reg::Mair => (10, 2, 0),
        Reg::Amair => (10, 3, 0),
        Reg::Contextidr => (13, 0, 1),
    };
    (3 << 20) | (op2 << 17) | (crn << 10) | ((rt as u32) << 5) | (crm << 1)
}

fn field(v: u64, lsb: u32, bits: u32) -> u64 {
    (v >> lsb) & ((1 << bits) - 1)
}

/// `TCR_EL1.EPD1`: TTBR1 walks disabled.
pub fn tcr_epd1(tcr: u64) -> bool {
    tcr & (1 << 23) != 0
}

/// Whether `tcr` is a translation control value the monitor accepts: 4 KiB
/// granule, 48-bit VAs (4-level walk from level 0), write-back
/// inner-shareable walks, TTBR0 walks enabled, TTBR1 either disabled or
/// configured the same way, no hardware Access/Dirty updates.
pub fn tcr_ok(tcr: u64) -> bool {
    let half_ok = |lsb: u32, tg_4k: u64, tg_lsb: u32| {
        field(tcr, lsb, 6) == 16
            && field(tcr, lsb + 8, 2) == 0b01
            && field(tcr, lsb + 10, 2) == 0b01
            && field(tcr, lsb + 12, 2) == 0b11
            && field(tcr, tg_lsb, 2) == tg_4k
    };
    let epd0 = tcr & (1 << 7) != 0;
    let ha_hd = tcr & (3 << 39) != 0;
    !epd0 && !ha_hd && half_ok(0, 0b00, 14) && (tcr_epd1(tcr) || half_ok(16, 0b10, 30))
}

/// Whether every attribute of `mair` is Device or Normal write-back.
pub fn mair_ok(mair: u64) -> bool {
    mair.to_le_bytes().iter().all(|&a| {
        matches!(a, 0x00 | 0x04 | 0x08 | 0x0c) || (a >> 6 == 0b11 && (a & 0xf) >> 2 == 0b11)
    })
}

/// The table address in a TTBR value (ASID in 63:48 and CnP in bit 0 are
/// free; bits 11:1 must be zero for a 4 KiB-aligned level-0 table).
pub fn ttbr_table(v: u64) -> Result<u64, Errno> {
    if v & 0xffe != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(v & 0x0000_ffff_ffff_f000)
}

/// SCTLR_EL1 bits: M (MMU), C (data cache), I (instruction cache), E0E, EE.
const SCTLR_M: u64 = 1 << 0;
const SCTLR_C: u64 = 1 << 2;
const SCTLR_I: u64 = 1 << 12;
const SCTLR_E0E: u64 = 1 << 24;
const SCTLR_EE: u64 = 1 << 25;

/// Whether `sctlr` turns the stage-1 MMU on.
pub fn mmu_on(sctlr: u64) -> bool {
    sctlr & SCTLR_M != 0
}

/// What the monitor does with an accepted register write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write the register as asked.
    Write,
    /// Make the table at this address the base of this TTBR (through
    /// [`super::PvMmu::set_base`]), then write the register.
    Base(Ttbr, u64),
}

/// The checks for a write of `val` to `reg`, given the vCPU's current
/// `tcr` and whether its TTBR0 and TTBR1 bases are set.
pub fn check(reg: Reg, val: u64, tcr: u64, bases: [bool; 2]) -> Result<Decision, Errno> {
    match reg {
        Reg::Ttbr0 => Ok(Decision::Base(Ttbr::Ttbr0, ttbr_table(val)?)),
        Reg::Ttbr1 => Ok(Decision::Base(Ttbr::Ttbr1, ttbr_table(val)?)),
        Reg::Tcr if !tcr_ok(val) => Err(Errno::EINVAL),
        Reg::Mair if !mair_ok(val) => Err(Errno::EINVAL),
        Reg::Sctlr => {
            if val & (SCTLR_E0E | SCTLR_EE) != 0 {
                return Err(Errno::EINVAL);
            }
            if mmu_on(val) {
                let walks_ok = tcr_ok(tcr) && bases[0] && (tcr_epd1(tcr) || bases[1]);
                let cached = val & (SCTLR_C | SCTLR_I) == SCTLR_C | SCTLR_I;
                if !walks_ok || !cached {
                    return Err(Errno::EINVAL);
                }
            }
            Ok(Decision::Write)
        }
        _ => Ok(Decision::Write),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercall_abi::mmu::{MAIR_EL1_PV, TCR_EL1_PV};

    #[test]
    fn decodes_the_trapped_registers() {
        // msr ttbr0_el1, x3: ISS 0x300860, direction bit clear:
        // Op0 3, Op2 0, Op1 0, CRn 2, Rt 3, CRm 0.
        let a = decode(0x30_0860);
        assert_eq!(
            a,
            Access {
                reg: Some(Reg::Ttbr0),
                rt: 3,
                write: true
            }
        );
        for r in [
            Reg::Sctlr,
            Reg::Ttbr0,
            Reg::Ttbr1,
            Reg::Tcr,
            Reg::Mair,
            Reg::Amair,
            Reg::Esr,
            Reg::Far,
            Reg::Afsr0,
            Reg::Afsr1,
            Reg::Contextidr,
        ] {
            let a = decode(encode(r, 31));
            assert_eq!((a.reg, a.rt, a.write), (Some(r), 31, true));
            assert!(!decode(encode(r, 0) | 1).write, "MRS");
        }
        // VBAR_EL1 (CRn 12) is not one of them.
        assert_eq!(decode((3 << 20) | (12 << 10)).reg, None);
    }

    #[test]
    fn tcr_rules() {
        assert!(tcr_ok(TCR_EL1_PV));
        assert!(
            tcr_ok((TCR_EL1_PV & !(0x3f << 16)) | (1 << 23) | (25 << 16)),
            "TTBR1 off: T1SZ free"
        );
        assert!(!tcr_ok(0), "reset value");
        assert!(!tcr_ok((TCR_EL1_PV & !0x3f) | 25), "39-bit VAs");
        assert!(!tcr_ok(TCR_EL1_PV | 1 << 14), "64 KiB granule");
        assert!(!tcr_ok(TCR_EL1_PV | 1 << 39), "hardware access flag");
        assert!(!tcr_ok(TCR_EL1_PV | 1 << 40), "hardware dirty state");
        assert!(!tcr_ok(TCR_EL1_PV | 1 << 7), "TTBR0 walks off");
        assert!(!tcr_ok(TCR_EL1_PV & !(3 << 8)), "non-cacheable walks");
        assert!(!tcr_ok(TCR_EL1_PV & !(3 << 30)), "TTBR1 with a bad granule");
    }

    #[test]
    fn mair_rules() {
        assert!(mair_ok(MAIR_EL1_PV));
        assert!(mair_ok(0xffee_0c08_0400_ffff));
        assert!(!mair_ok(0x44), "normal non-cacheable");
        assert!(!mair_ok(0xbb << 8), "write-through");
        assert!(!mair_ok(0x01 << 56), "reserved device encoding");
    }

    #[test]
    fn sctlr_and_ttbr_rules() {
        let on = 0x30d0_0800 | 1 | 1 << 2 | 1 << 12;
        assert_eq!(
            check(Reg::Sctlr, on, TCR_EL1_PV, [true, true]),
            Ok(Decision::Write)
        );
        assert_eq!(
            check(Reg::Sctlr, on, TCR_EL1_PV, [true, false]),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            check(Reg::Sctlr, on, TCR_EL1_PV | 1 << 23, [true, false]),
            Ok(Decision::Write)
        );
        assert_eq!(
            check(Reg::Sctlr, on, 0, [true, true]),
            Err(Errno::EINVAL),
            "bad TCR"
        );
        assert_eq!(
            check(Reg::Sctlr, on & !4, TCR_EL1_PV, [true, true]),
            Err(Errno::EINVAL),
            "uncached"
        );
        assert_eq!(
            check(Reg::Sctlr, on | 1 << 25, TCR_EL1_PV, [true, true]),
            Err(Errno::EINVAL),
            "big-endian"
        );
        assert_eq!(
            check(Reg::Sctlr, 0x30d0_0800, 0, [false, false]),
            Ok(Decision::Write),
            "MMU off is always fine"
        );
        assert_eq!(
            check(Reg::Ttbr1, 5 << 48 | 0x4001_0000 | 1, 0, [false; 2]),
            Ok(Decision::Base(Ttbr::Ttbr1, 0x4001_0000))
        );
        assert_eq!(
            check(Reg::Ttbr0, 0x4001_0008, 0, [false; 2]),
            Err(Errno::EINVAL)
        );
        assert_eq!(check(Reg::Tcr, 0, 0, [false; 2]), Err(Errno::EINVAL));
        assert_eq!(check(Reg::Mair, 0x44, 0, [false; 2]), Err(Errno::EINVAL));
        assert_eq!(check(Reg::Far, 0x1234, 0, [false; 2]), Ok(Decision::Write));
    }
}
