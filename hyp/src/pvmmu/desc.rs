//! Decoding and checking one AArch64 stage-1 descriptor (4 KiB granule,
//! 48-bit output addresses) against the rules of `hypercall_abi::mmu`.

use hypercall_abi::errno::Errno;

/// Output-address bits 47:12.
pub const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;
/// Valid.
pub const VALID: u64 = 1;
const TABLE_OR_PAGE: u64 = 2;
/// `AP[2]`: read-only.
pub const AP_RO: u64 = 1 << 7;
/// Bits a table descriptor must have clear: 11:2 and 58:48.
const TABLE_RES0: u64 = (0x3ff << 2) | (0x7ff << 48);
/// Bits a block or page descriptor must have clear: NS (5), 51:48 (GP,
/// DBM, reserved) and Contiguous (52).
pub const LEAF_RES0: u64 = (1 << 5) | (0xf << 48) | (1 << 52);

/// `PXN` and `UXN`: never executable.
pub const XN: u64 = (1 << 53) | (1 << 54);

/// The attribute indices of `mair` that are Device memory (attribute
/// `0b0000dd00`): bit `i` for index `i`.
pub fn device_mask(mair: u64) -> u8 {
    mair.to_le_bytes()
        .iter()
        .enumerate()
        .fold(0, |m, (i, a)| if a >> 4 == 0 { m | 1 << i } else { m })
}

/// The memory-attribute rule for a block or page descriptor `d`, given the
/// Device indices of the guest's `MAIR_EL1` ([`device_mask`]): Device
/// memory must be mapped execute-never at both ELs (`PXN = UXN = 1`), since
/// instruction fetches (speculative ones included) from device registers
/// have side effects.
#[inline(always)]
pub fn exec_ok(d: u64, device: u8) -> bool {
    (device >> ((d >> 2) & 7)) & 1 == 0 || d & XN == XN
}

/// What a valid descriptor refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Desc {
    /// Invalid: refers to nothing.
    Invalid,
    /// A next-level table at this guest-physical address.
    Table(u64),
    /// A block or page: output address, size in bytes, writable.
    Leaf {
        /// Guest-physical output address.
        oa: u64,
        /// Bytes mapped.
        size: u64,
        /// `AP[2]` clear.
        writable: bool,
    },
}

/// Bytes mapped by a leaf at `level`.
pub const fn leaf_size(level: u8) -> u64 {
    1 << (12 + 9 * (3 - level as u32))
}

/// Decodes descriptor `d` found in a table of `level` (0..=3); `EINVAL`
/// for a reserved encoding or reserved bits.
pub fn decode(d: u64, level: u8) -> Result<Desc, Errno> {
    if d & VALID == 0 {
        return Ok(Desc::Invalid);
    }
    let table_or_page = d & TABLE_OR_PAGE != 0;
    if table_or_page && level < 3 {
        if d & TABLE_RES0 != 0 {
            return Err(Errno::EINVAL);
        }
        return Ok(Desc::Table(d & ADDR_MASK));
    }
    // A block at level 0 or a 0b01 entry at level 3 is reserved.
    if !table_or_page && (level == 0 || level == 3) {
        return Err(Errno::EINVAL);
    }
    if d & LEAF_RES0 != 0 {
        return Err(Errno::EINVAL);
    }
    let size = leaf_size(level);
    let oa = d & ADDR_MASK;
    if oa % size != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Desc::Leaf {
        oa,
        size,
        writable: d & AP_RO == 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercall_abi::mmu::desc as d;

    #[test]
    fn encodings_per_level() {
        let t = d::table(0x4000_3000);
        assert_eq!(decode(t, 0), Ok(Desc::Table(0x4000_3000)));
        assert_eq!(decode(t, 2), Ok(Desc::Table(0x4000_3000)));
        // At level 3 the same bits are a page.
        assert_eq!(
            decode(t, 3),
            Ok(Desc::Leaf {
                oa: 0x4000_3000,
                size: 4096,
                writable: true
            })
        );
        let blk = d::block(0x4020_0000, d::RO_EL1 | d::NORMAL);
        assert_eq!(
            decode(blk, 2),
            Ok(Desc::Leaf {
                oa: 0x4020_0000,
                size: 2 << 20,
                writable: false
            })
        );
        assert_eq!(decode(blk, 0), Err(Errno::EINVAL), "no level-0 blocks");
        assert_eq!(
            decode(blk, 3),
            Err(Errno::EINVAL),
            "0b01 is reserved at level 3"
        );
        assert_eq!(decode(0xdead_beef_0000_0000, 1), Ok(Desc::Invalid));
    }

    #[test]
    fn device_memory_is_never_executable() {
        let mair = hypercall_abi::mmu::MAIR_EL1_PV; // 0: Normal, 1..7: Device
        assert_eq!(device_mask(mair), 0xfe);
        assert_eq!(device_mask(0), 0xff, "reset value: all Device-nGnRnE");
        let dev = |attrs| d::page(0x4000_0000, attrs | 1 << 2);
        assert!(exec_ok(dev(d::RW_EL1), 0xfe), "PXN and UXN");
        assert!(!exec_ok(dev(d::UXN), 0xfe), "EL1 may execute");
        assert!(!exec_ok(dev(d::PXN), 0xfe), "EL0 may execute");
        assert!(
            exec_ok(d::page(0x4000_0000, d::RX_EL1 | d::NORMAL), 0xfe),
            "Normal memory may be executable"
        );
        assert!(!exec_ok(d::page(0x4000_0000, d::RX_EL1 | d::NORMAL), 0xff));
    }

    #[test]
    fn reserved_bits_and_alignment() {
        let p = d::page(0x4000_0000, d::RW_EL1 | d::NORMAL);
        for bit in [5, 48, 49, 50, 51, 52] {
            assert_eq!(decode(p | 1 << bit, 3), Err(Errno::EINVAL), "bit {bit}");
        }
        // Software bits 55-58 and the ignored top bits are free.
        for bit in [55, 58, 59, 63] {
            assert!(decode(p | 1 << bit, 3).is_ok(), "bit {bit}");
        }
        let t = d::table(0x4000_0000);
        for bit in [2, 11, 48, 58] {
            assert_eq!(decode(t | 1 << bit, 1), Err(Errno::EINVAL), "bit {bit}");
        }
        for bit in [59, 60, 61, 62, 63] {
            assert!(decode(t | 1 << bit, 1).is_ok(), "bit {bit}");
        }
        // A 2 MiB block whose output address is not 2 MiB aligned.
        assert_eq!(decode(d::block(0x4000_1000, 0), 2), Err(Errno::EINVAL));
        assert_eq!(decode(d::block(0x4020_0000, 0), 1), Err(Errno::EINVAL));
    }
}
