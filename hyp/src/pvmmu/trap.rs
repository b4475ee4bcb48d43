//! The slow path: a direct store into a protected table is a stage-2
//! permission fault; its syndrome says which register held the value. Only
//! a single aligned 64-bit store of a general-purpose register can be
//! emulated; anything else is refused.

use hypercall_abi::errno::Errno;

/// Exception class of a data abort from a lower exception level.
const EC_DABT_LOWER: u64 = 0x24;

/// The register (0..=31, 31 = xzr) whose value a trapped store wrote, if
/// `esr` describes a stage-2 permission fault on a 64-bit store the monitor
/// can emulate (ISS valid, doubleword, 64-bit register, not a cache
/// maintenance operation or a stage-1 walk, no external abort); `ipa` must
/// be 8-byte aligned. `EINVAL` otherwise.
pub fn store_register(esr: u64, ipa: u64) -> Result<u8, Errno> {
    let ec = (esr >> 26) & 0x3f;
    let isv = esr & (1 << 24) != 0;
    let sas = (esr >> 22) & 3;
    let srt = ((esr >> 16) & 0x1f) as u8;
    let sf = esr & (1 << 15) != 0;
    let fnv = esr & (1 << 10) != 0;
    let ea = esr & (1 << 9) != 0;
    let cm = esr & (1 << 8) != 0;
    let s1ptw = esr & (1 << 7) != 0;
    let wnr = esr & (1 << 6) != 0;
    let dfsc = esr & 0x3f;
    let permission = (0x0d..=0x0f).contains(&dfsc);
    if ec != EC_DABT_LOWER || !permission || !isv || sas != 3 || !sf || !wnr {
        return Err(Errno::EINVAL);
    }
    if fnv || ea || cm || s1ptw || ipa % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(srt)
}

/// The faulting guest-physical address from HPFAR_EL2 and FAR_EL2.
pub fn fault_ipa(hpfar: u64, far: u64) -> u64 {
    ((hpfar >> 4) << 12) | (far & 0xfff)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `str x5, [..]` hitting a read-only stage-2 page at level 3.
    const STR_X5: u64 = (0x24 << 26) | (1 << 25) | (1 << 24) | (3 << 22) | (5 << 16) | (1 << 15) | (1 << 6) | 0x0f;

    #[test]
    fn emulable_stores() {
        assert_eq!(store_register(STR_X5, 0x4000_1008), Ok(5));
        assert_eq!(store_register(STR_X5 | (31 << 16), 0x4000_1000), Ok(31), "str xzr");
    }

    #[test]
    fn refused_accesses() {
        let bad = [
            (STR_X5, 0x4000_1004, "misaligned"),
            (STR_X5 & !(1 << 24), 0x4000_1000, "no syndrome (e.g. stp)"),
            (STR_X5 & !(3 << 22) | (2 << 22), 0x4000_1000, "32-bit store"),
            (STR_X5 & !(1 << 15), 0x4000_1000, "w register"),
            (STR_X5 & !(1 << 6), 0x4000_1000, "a read"),
            (STR_X5 | (1 << 7), 0x4000_1000, "stage-1 walk"),
            (STR_X5 | (1 << 8), 0x4000_1000, "cache maintenance"),
            (STR_X5 & !0x3f | 0x07, 0x4000_1000, "translation fault"),
            ((STR_X5 & !(0x3f << 26)) | (0x20 << 26), 0x4000_1000, "instruction abort"),
        ];
        for (esr, ipa, why) in bad {
            assert_eq!(store_register(esr, ipa), Err(Errno::EINVAL), "{why}");
        }
    }

    #[test]
    fn ipa_from_hpfar() {
        assert_eq!(fault_ipa(0x40_0010 << 4, 0xffff_0000_1234_5678), 0x4_0001_0678);
    }
}
