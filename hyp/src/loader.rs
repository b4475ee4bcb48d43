//! Kernel image loading plans: where each part of an ELF executable or an
//! arm64 Linux `Image` goes in a domain's guest-physical memory, checked
//! against that memory before a byte is copied.

use crate::config::KernelFormat;

/// One piece to copy: `file[file_off..file_off+file_len]` to `dest`, then
/// zeros up to `mem_len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical destination.
    pub dest: u64,
    /// Offset in the image file.
    pub file_off: usize,
    /// Bytes taken from the file.
    pub file_len: usize,
    /// Bytes occupied in memory (the rest is zeroed).
    pub mem_len: u64,
}

/// Most segments an image may have.
pub const MAX_SEGMENTS: usize = 8;

/// Where the pieces go and where execution starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    /// Pieces to copy.
    pub segments: heapless::Vec<Segment, MAX_SEGMENTS>,
    /// Guest-physical entry point.
    pub entry: u64,
    /// Lowest and highest (exclusive) guest-physical address used.
    pub extent: (u64, u64),
}

/// Why an image cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Too short for its own headers.
    Truncated,
    /// Not an ELF64 little-endian AArch64 executable.
    NotAarch64Elf,
    /// No `ARM\x64` magic in the Image header.
    NotImage,
    /// Big-endian Image.
    BigEndian,
    /// A piece would land outside the domain's memory.
    OutsideMemory,
    /// A piece claims more file bytes than the file has, or more file than memory.
    BadSegment,
    /// More than `MAX_SEGMENTS` loadable segments.
    TooManySegments,
    /// Entry point outside the loaded image.
    BadEntry,
}

fn u16_at(b: &[u8], o: usize) -> Result<u16, LoadError> {
    Ok(u16::from_le_bytes(
        b.get(o..o + 2)
            .ok_or(LoadError::Truncated)?
            .try_into()
            .unwrap(),
    ))
}
fn u32_at(b: &[u8], o: usize) -> Result<u32, LoadError> {
    Ok(u32::from_le_bytes(
        b.get(o..o + 4)
            .ok_or(LoadError::Truncated)?
            .try_into()
            .unwrap(),
    ))
}
fn u64_at(b: &[u8], o: usize) -> Result<u64, LoadError> {
    Ok(u64::from_le_bytes(
        b.get(o..o + 8)
            .ok_or(LoadError::Truncated)?
            .try_into()
            .unwrap(),
    ))
}

fn inside(ram: (u64, u64), dest: u64, len: u64) -> bool {
    let (base, size) = ram;
    dest >= base && dest.checked_add(len).is_some_and(|e| e <= base + size)
}

/// Plans loading `image` into guest RAM `ram = (base, size)`.
pub fn plan(format: KernelFormat, image: &[u8], ram: (u64, u64)) -> Result<LoadPlan, LoadError> {
    match format {
        KernelFormat::Elf => plan_elf(image, ram),
        KernelFormat::Image => plan_image(image, ram),
    }
}

/// ELF64 executable: every `PT_LOAD` at its physical address.
pub fn plan_elf(b: &[u8], ram: (u64, u64)) -> Result<LoadPlan, LoadError> {
    if b.len() < 64 {
        return Err(LoadError::Truncated);
    }
    const EM_AARCH64: u16 = 183;
    if &b[0..4] != b"\x7fELF"
        || b[4] != 2
        || b[5] != 1
        || u16_at(b, 18)? != EM_AARCH64
        || u16_at(b, 16)? != 2
    {
        return Err(LoadError::NotAarch64Elf);
    }
    let entry = u64_at(b, 24)?;
    let phoff = u64_at(b, 32)? as usize;
    let phentsize = u16_at(b, 54)? as usize;
    let phnum = u16_at(b, 56)? as usize;
    if phentsize < 56 {
        return Err(LoadError::NotAarch64Elf);
    }
    let mut segments = heapless::Vec::new();
    let (mut lo, mut hi) = (u64::MAX, 0);
    for i in 0..phnum {
        let ph = phoff
            .checked_add(i * phentsize)
            .ok_or(LoadError::Truncated)?;
        if u32_at(b, ph)? != 1 {
            continue; // not PT_LOAD
        }
        let off = u64_at(b, ph + 8)? as usize;
        let paddr = u64_at(b, ph + 24)?;
        let filesz = u64_at(b, ph + 32)? as usize;
        let memsz = u64_at(b, ph + 40)?;
        if filesz as u64 > memsz || off.checked_add(filesz).is_none_or(|e| e > b.len()) {
            return Err(LoadError::BadSegment);
        }
        if memsz == 0 {
            continue;
        }
        if !inside(ram, paddr, memsz) {
            return Err(LoadError::OutsideMemory);
        }
        lo = lo.min(paddr);
        hi = hi.max(paddr + memsz);
        segments
            .push(Segment {
                dest: paddr,
                file_off: off,
                file_len: filesz,
                mem_len: memsz,
            })
            .map_err(|_| LoadError::TooManySegments)?;
    }
    if segments.is_empty() {
        return Err(LoadError::BadSegment);
    }
    if !(lo..hi).contains(&entry) {
        return Err(LoadError::BadEntry);
    }
    Ok(LoadPlan {
        segments,
        entry,
        extent: (lo, hi),
    })
}

/// Offsets in the arm64 `Image` header (Linux's Documentation/arch/arm64/booting).
const IMAGE_TEXT_OFFSET: usize = 8;
const IMAGE_SIZE: usize = 16;
const IMAGE_FLAGS: usize = 24;
const IMAGE_MAGIC: usize = 56;
/// "ARM\x64".
pub const IMAGE_MAGIC_VALUE: u32 = 0x644d_5241;

/// arm64 `Image`: placed at `text_offset` above the 2 MiB-aligned base of
/// RAM, entered at its first byte, `image_size` bytes reserved (zeroed past
/// the file).
pub fn plan_image(b: &[u8], ram: (u64, u64)) -> Result<LoadPlan, LoadError> {
    if b.len() < 64 {
        return Err(LoadError::Truncated);
    }
    if u32_at(b, IMAGE_MAGIC)? != IMAGE_MAGIC_VALUE {
        return Err(LoadError::NotImage);
    }
    let flags = u64_at(b, IMAGE_FLAGS)?;
    if flags & 1 != 0 {
        return Err(LoadError::BigEndian);
    }
    let mut image_size = u64_at(b, IMAGE_SIZE)?;
    let text_offset = if image_size == 0 {
        // Pre-3.17 kernels: size unknown, text_offset 0x80000.
        image_size = b.len() as u64;
        0x8_0000
    } else {
        u64_at(b, IMAGE_TEXT_OFFSET)?
    };
    if image_size < b.len() as u64 {
        return Err(LoadError::BadSegment);
    }
    let base = ram.0.div_ceil(0x20_0000) * 0x20_0000;
    let dest = base
        .checked_add(text_offset)
        .ok_or(LoadError::OutsideMemory)?;
    if !inside(ram, dest, image_size) {
        return Err(LoadError::OutsideMemory);
    }
    let mut segments = heapless::Vec::new();
    segments
        .push(Segment {
            dest,
            file_off: 0,
            file_len: b.len(),
            mem_len: image_size,
        })
        .unwrap();
    Ok(LoadPlan {
        segments,
        entry: dest,
        extent: (dest, dest + image_size),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: (u64, u64) = (0x4000_0000, 16 << 20);

    fn elf(segs: &[(u64, usize, u64)], entry: u64) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 * segs.len()];
        b[0..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16..18].copy_from_slice(&2u16.to_le_bytes());
        b[18..20].copy_from_slice(&183u16.to_le_bytes());
        b[24..32].copy_from_slice(&entry.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(segs.len() as u16).to_le_bytes());
        for (i, &(paddr, filesz, memsz)) in segs.iter().enumerate() {
            let ph = 64 + 56 * i;
            b[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
            b[ph + 8..ph + 16].copy_from_slice(&0u64.to_le_bytes());
            b[ph + 24..ph + 32].copy_from_slice(&paddr.to_le_bytes());
            b[ph + 32..ph + 40].copy_from_slice(&(filesz as u64).to_le_bytes());
            b[ph + 40..ph + 48].copy_from_slice(&memsz.to_le_bytes());
        }
        b
    }

    fn image(text_offset: u64, size: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[8..16].copy_from_slice(&text_offset.to_le_bytes());
        b[16..24].copy_from_slice(&size.to_le_bytes());
        b[24..32].copy_from_slice(&0b1010u64.to_le_bytes());
        b[56..60].copy_from_slice(&IMAGE_MAGIC_VALUE.to_le_bytes());
        b
    }

    #[test]
    fn elf_segments_inside_memory() {
        let b = elf(&[(0x4008_0000, 100, 0x2000)], 0x4008_0000);
        let p = plan_elf(&b, RAM).unwrap();
        assert_eq!(p.entry, 0x4008_0000);
        assert_eq!(p.segments[0].mem_len, 0x2000);
        assert_eq!(p.extent, (0x4008_0000, 0x4008_2000));
    }

    #[test]
    fn elf_refusals() {
        assert_eq!(
            plan_elf(&elf(&[(0x3000_0000, 10, 10)], 0x3000_0000), RAM),
            Err(LoadError::OutsideMemory)
        );
        assert_eq!(
            plan_elf(&elf(&[(0x40ff_f000, 10, 0x2000)], 0x40ff_f000), RAM),
            Err(LoadError::OutsideMemory)
        );
        assert_eq!(
            plan_elf(&elf(&[(0x4008_0000, 10_000, 0x3000)], 0x4008_0000), RAM),
            Err(LoadError::BadSegment)
        );
        assert_eq!(
            plan_elf(&elf(&[(0x4008_0000, 10, 5)], 0x4008_0000), RAM),
            Err(LoadError::BadSegment)
        );
        assert_eq!(
            plan_elf(&elf(&[(0x4008_0000, 10, 0x1000)], 0x5000_0000), RAM),
            Err(LoadError::BadEntry)
        );
        assert_eq!(
            plan_elf(&elf(&[(u64::MAX - 5, 1, 100)], 0), RAM),
            Err(LoadError::OutsideMemory)
        );
        let mut b = elf(&[(0x4008_0000, 10, 10)], 0x4008_0000);
        b[18] = 62; // x86-64
        assert_eq!(plan_elf(&b, RAM), Err(LoadError::NotAarch64Elf));
        assert_eq!(plan_elf(&b[..20], RAM), Err(LoadError::Truncated));
    }

    #[test]
    fn image_placement() {
        let b = image(0x8_0000, 0x10_0000, 4096);
        let p = plan_image(&b, RAM).unwrap();
        assert_eq!(p.entry, 0x4008_0000);
        assert_eq!(p.segments[0].mem_len, 0x10_0000);
        assert_eq!(p.segments[0].file_len, 4096);
        // Legacy header: size 0 means text_offset 0x80000 and the file's length.
        let p = plan_image(&image(0, 0, 4096), RAM).unwrap();
        assert_eq!(p.entry, 0x4008_0000);
    }

    #[test]
    fn image_refusals() {
        assert_eq!(
            plan_image(&image(0x8_0000, 32 << 20, 4096), RAM),
            Err(LoadError::OutsideMemory)
        );
        assert_eq!(
            plan_image(&image(0x8_0000, 100, 4096), RAM),
            Err(LoadError::BadSegment)
        );
        let mut b = image(0x8_0000, 0x10_0000, 4096);
        b[56] = 0;
        assert_eq!(plan_image(&b, RAM), Err(LoadError::NotImage));
        let mut b = image(0x8_0000, 0x10_0000, 4096);
        b[24] |= 1;
        assert_eq!(plan_image(&b, RAM), Err(LoadError::BigEndian));
        assert_eq!(
            plan_image(&image(u64::MAX, 0x1000, 4096), RAM),
            Err(LoadError::OutsideMemory)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u64;
        for len in 0..300 {
            let b: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 33) as u8
                })
                .collect();
            let _ = plan_elf(&b, RAM);
            let _ = plan_image(&b, RAM);
        }
    }
}
