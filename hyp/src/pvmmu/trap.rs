//! The slow path: a direct store into a protected table is a stage-2
//! permission fault. For a single 64-bit `str` without writeback the
//! syndrome says which register held the value; for the rest (no syndrome:
//! `stp`, and `str`/`stp` with pre- or post-index writeback) the monitor
//! decodes the instruction itself ([`decode_store`]). Only 64-bit stores of
//! general-purpose registers to 8-byte aligned addresses can be emulated;
//! anything else is refused.

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

/// Whether `esr` is a stage-2 permission fault on a write whose syndrome
/// carries no register (ISV clear), with a valid FAR and no external abort,
/// cache maintenance or stage-1 walk: one whose instruction
/// [`decode_store`] may decode.
pub fn needs_decode(esr: u64) -> bool {
    let ec = (esr >> 26) & 0x3f;
    let permission = (0x0d..=0x0f).contains(&(esr & 0x3f));
    let bad = (1 << 24) | (1 << 10) | (1 << 9) | (1 << 8) | (1 << 7);
    ec == EC_DABT_LOWER && permission && esr & bad == 0 && esr & (1 << 6) != 0
}

/// How a decoded store forms its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `[Xn, #imm]`: no writeback.
    Offset,
    /// `[Xn, #imm]!`: address `Xn + imm`, then `Xn` = address.
    PreIndex,
    /// `[Xn], #imm`: address `Xn`, then `Xn` += imm.
    PostIndex,
}

/// A 64-bit store of one or two general-purpose registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Store {
    /// The registers stored (31 = xzr), the second for `stp`.
    pub rt: [u8; 2],
    /// Two registers (`stp`: `rt[0]` at the address, `rt[1]` 8 bytes on).
    pub pair: bool,
    /// The base register (never 31: stores relative to SP are refused).
    pub rn: u8,
    /// Byte offset.
    pub imm: i64,
    /// Addressing mode.
    pub mode: Mode,
}

impl Store {
    /// Bytes stored.
    pub fn size(&self) -> u64 {
        if self.pair {
            16
        } else {
            8
        }
    }
    /// The address stored to and the base register's new value (if it is
    /// written back), given the base register's value.
    pub fn address(&self, xn: u64) -> (u64, Option<u64>) {
        let moved = xn.wrapping_add(self.imm as u64);
        match self.mode {
            Mode::Offset => (moved, None),
            Mode::PreIndex => (moved, Some(moved)),
            Mode::PostIndex => (xn, Some(moved)),
        }
    }
}

fn sext(v: u32, bits: u32) -> i64 {
    ((v as i64) << (64 - bits)) >> (64 - bits)
}

/// Decodes the A64 instruction `insn` if it is a store the monitor can
/// emulate: `str Xt, [Xn, #imm]` (unsigned offset, pre- or post-index) or
/// `stp Xt, Xt2, [Xn, #imm]` (signed offset, pre- or post-index). Refused
/// (`EINVAL`): anything else, SP as the base, and writeback into a
/// register that is also stored (CONSTRAINED UNPREDICTABLE in the
/// architecture).
pub fn decode_store(insn: u32) -> Result<Store, Errno> {
    let rt = (insn & 0x1f) as u8;
    let rn = ((insn >> 5) & 0x1f) as u8;
    let rt2 = ((insn >> 10) & 0x1f) as u8;
    let s = if insn & 0xffc0_0000 == 0xf900_0000 {
        Store {
            rt: [rt, 31],
            pair: false,
            rn,
            imm: (((insn >> 10) & 0xfff) * 8) as i64,
            mode: Mode::Offset,
        }
    } else if insn & 0xffe0_0400 == 0xf800_0400 {
        let mode = if insn & 0x800 != 0 {
            Mode::PreIndex
        } else {
            Mode::PostIndex
        };
        Store {
            rt: [rt, 31],
            pair: false,
            rn,
            imm: sext((insn >> 12) & 0x1ff, 9),
            mode,
        }
    } else if matches!(insn & 0xffc0_0000, 0xa880_0000 | 0xa980_0000 | 0xa900_0000) {
        let mode = match insn & 0xffc0_0000 {
            0xa880_0000 => Mode::PostIndex,
            0xa980_0000 => Mode::PreIndex,
            _ => Mode::Offset,
        };
        Store {
            rt: [rt, rt2],
            pair: true,
            rn,
            imm: sext((insn >> 15) & 0x7f, 7) * 8,
            mode,
        }
    } else {
        return Err(Errno::EINVAL);
    };
    let stored = |r: u8| s.rt[0] == r || (s.pair && s.rt[1] == r);
    if rn == 31 || (s.mode != Mode::Offset && stored(rn)) {
        return Err(Errno::EINVAL);
    }
    Ok(s)
}

/// The guest-physical address of the first byte a decoded store of `size`
/// bytes at virtual address `va` writes, given the fault's virtual address
/// `far` and guest-physical address `ipa`: the store must be 8-byte aligned
/// and lie within the faulting page (the one stage 2 protects), so that
/// the fault's translation covers all of it.
pub fn store_ipa(va: u64, size: u64, far: u64, ipa: u64) -> Result<u64, Errno> {
    let last = va.checked_add(size - 1).ok_or(Errno::EINVAL)?;
    if va % 8 != 0 || va >> 12 != far >> 12 || last >> 12 != far >> 12 {
        return Err(Errno::EINVAL);
    }
    Ok((ipa & !0xfff) | (va & 0xfff))
}

/// The faulting guest-physical address from HPFAR_EL2 and FAR_EL2.
pub fn fault_ipa(hpfar: u64, far: u64) -> u64 {
    ((hpfar >> 4) << 12) | (far & 0xfff)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `str x5, [..]` hitting a read-only stage-2 page at level 3.
    const STR_X5: u64 =
        (0x24 << 26) | (1 << 25) | (1 << 24) | (3 << 22) | (5 << 16) | (1 << 15) | (1 << 6) | 0x0f;

    #[test]
    fn emulable_stores() {
        assert_eq!(store_register(STR_X5, 0x4000_1008), Ok(5));
        assert_eq!(
            store_register(STR_X5 | (31 << 16), 0x4000_1000),
            Ok(31),
            "str xzr"
        );
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
            (
                (STR_X5 & !(0x3f << 26)) | (0x20 << 26),
                0x4000_1000,
                "instruction abort",
            ),
        ];
        for (esr, ipa, why) in bad {
            assert_eq!(store_register(esr, ipa), Err(Errno::EINVAL), "{why}");
        }
    }

    #[test]
    fn decodes_stores_with_pairs_and_writeback() {
        // Encodings as the assembler produces them.
        let cases = [
            (
                0xf9000441u32,
                "str x1, [x2, #8]",
                [1, 31],
                false,
                2,
                8,
                Mode::Offset,
            ),
            (
                0xf8008c41,
                "str x1, [x2, #8]!",
                [1, 31],
                false,
                2,
                8,
                Mode::PreIndex,
            ),
            (
                0xf81f8441,
                "str x1, [x2], #-8",
                [1, 31],
                false,
                2,
                -8,
                Mode::PostIndex,
            ),
            (
                0xa9000c41,
                "stp x1, x3, [x2]",
                [1, 3],
                true,
                2,
                0,
                Mode::Offset,
            ),
            (
                0xa9810c41,
                "stp x1, x3, [x2, #16]!",
                [1, 3],
                true,
                2,
                16,
                Mode::PreIndex,
            ),
            (
                0xa8bf0c41,
                "stp x1, x3, [x2], #-16",
                [1, 3],
                true,
                2,
                -16,
                Mode::PostIndex,
            ),
            (
                0xa9007c5f,
                "stp xzr, xzr, [x2]",
                [31, 31],
                true,
                2,
                0,
                Mode::Offset,
            ),
        ];
        for (insn, what, rt, pair, rn, imm, mode) in cases {
            assert_eq!(
                decode_store(insn),
                Ok(Store {
                    rt,
                    pair,
                    rn,
                    imm,
                    mode
                }),
                "{what}"
            );
        }
        let s = decode_store(0xa8bf0c41).unwrap();
        assert_eq!(s.address(0x4000_1010), (0x4000_1010, Some(0x4000_1000)));
        assert_eq!(
            decode_store(0xa9810c41).unwrap().address(0x1000),
            (0x1010, Some(0x1010))
        );
        let refused = [
            (0xa90007e1u32, "stp x1, x1, [sp]"),
            (0xf9000be1, "str x1, [sp, #16]"),
            (
                0xf8008c21,
                "str x1, [x1, #8]! (writeback into the stored register)",
            ),
            (0xa9810c42, "stp x2, x3, [x2, #16]! (likewise)"),
            (0xb9000441, "str w1, [x2, #4]"),
            (0x29000c41, "stp w1, w3, [x2]"),
            (0xad000c41, "stp q1, q3, [x2]"),
            (0xf9400441, "ldr x1, [x2, #8]"),
        ];
        for (insn, what) in refused {
            assert_eq!(decode_store(insn), Err(Errno::EINVAL), "{what}");
        }
    }

    #[test]
    fn decoded_stores_stay_in_the_faulting_page() {
        assert_eq!(
            store_ipa(0x4000_1ff0, 16, 0x4000_1ff8, 0x4000_1ff8),
            Ok(0x4000_1ff0)
        );
        assert_eq!(
            store_ipa(0x8000_1010, 16, 0x8000_1010, 0x4000_5010),
            Ok(0x4000_5010)
        );
        assert_eq!(
            store_ipa(0x4000_1ff8, 16, 0x4000_1ff8, 0x4000_1ff8),
            Err(Errno::EINVAL),
            "crosses a page"
        );
        assert_eq!(
            store_ipa(0x4000_2000, 8, 0x4000_1ff8, 0x4000_1ff8),
            Err(Errno::EINVAL),
            "another page"
        );
        assert_eq!(
            store_ipa(0x4000_1004, 8, 0x4000_1004, 0x4000_1004),
            Err(Errno::EINVAL),
            "misaligned"
        );
        assert_eq!(
            store_ipa(u64::MAX - 7, 16, u64::MAX, 0),
            Err(Errno::EINVAL),
            "wraps"
        );
        let stp = (0x24 << 26) | (1 << 25) | (1 << 6) | 0x0f;
        assert!(needs_decode(stp));
        assert!(!needs_decode(STR_X5), "has a syndrome");
        assert!(!needs_decode(stp & !(1 << 6)), "a read");
        assert!(!needs_decode(stp | (1 << 10)), "FAR not valid");
    }

    #[test]
    fn ipa_from_hpfar() {
        assert_eq!(
            fault_ipa(0x40_0010 << 4, 0xffff_0000_1234_5678),
            0x4_0001_0678
        );
    }
}
