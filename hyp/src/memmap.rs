//! The machine's memory map: RAM from the device tree minus what is in use
//! (the monitor image, the device tree, firmware reservations), as the
//! page-aligned free ranges the heap and the frame allocator are carved from.

/// A half-open physical address range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Range {
    /// `[start, start+size)`, saturating at the top of the address space.
    pub fn sized(start: u64, size: u64) -> Self {
        Self {
            start,
            end: start.saturating_add(size),
        }
    }
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Most free ranges the monitor tracks.
pub const MAX_RANGES: usize = 32;

/// Free ranges: `ram` minus every range in `used`, shrunk to `align`
/// boundaries, sorted by address. Ranges beyond `MAX_RANGES` are reported as
/// an error rather than dropped.
pub fn free_ranges(
    ram: &[Range],
    used: &[Range],
    align: u64,
) -> Result<heapless::Vec<Range, MAX_RANGES>, Range> {
    let mut out: heapless::Vec<Range, MAX_RANGES> = heapless::Vec::new();
    let mut sorted_ram: heapless::Vec<Range, MAX_RANGES> = heapless::Vec::new();
    for r in ram.iter().filter(|r| !r.is_empty()) {
        sorted_ram.push(*r).map_err(|r| r)?;
    }
    sorted_ram.sort_unstable_by_key(|r| r.start);
    // Merge overlapping or touching RAM ranges.
    let mut merged: heapless::Vec<Range, MAX_RANGES> = heapless::Vec::new();
    for r in sorted_ram {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r).map_err(|r| r)?,
        }
    }
    for r in merged {
        // Cut `r` by every used range, left to right.
        let mut pieces: heapless::Vec<Range, MAX_RANGES> = heapless::Vec::new();
        pieces.push(r).map_err(|r| r)?;
        for u in used.iter().filter(|u| !u.is_empty()) {
            let mut next: heapless::Vec<Range, MAX_RANGES> = heapless::Vec::new();
            for p in &pieces {
                if u.end <= p.start || u.start >= p.end {
                    next.push(*p).map_err(|r| r)?;
                    continue;
                }
                if u.start > p.start {
                    next.push(Range {
                        start: p.start,
                        end: u.start,
                    })
                    .map_err(|r| r)?;
                }
                if u.end < p.end {
                    next.push(Range {
                        start: u.end,
                        end: p.end,
                    })
                    .map_err(|r| r)?;
                }
            }
            pieces = next;
        }
        for p in pieces {
            let start = p.start.div_ceil(align) * align;
            let end = p.end / align * align;
            if end > start {
                out.push(Range { start, end }).map_err(|r| r)?;
            }
        }
    }
    out.sort_unstable_by_key(|r| r.start);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(s: u64, e: u64) -> Range {
        Range { start: s, end: e }
    }

    #[test]
    fn cuts_out_image_and_tree() {
        let ram = [r(0x4000_0000, 0x8000_0000)];
        let used = [r(0x4000_0000, 0x4000_2000), r(0x4020_0000, 0x4031_0123)];
        let f = free_ranges(&ram, &used, 0x1000).unwrap();
        assert_eq!(
            &f[..],
            &[r(0x4000_2000, 0x4020_0000), r(0x4031_1000, 0x8000_0000)]
        );
    }

    #[test]
    fn pi_layout_with_low_reservation() {
        let ram = [r(0, 0x3c00_0000)];
        let used = [r(0, 0x1000), r(0x8_0000, 0x18_0000)];
        let f = free_ranges(&ram, &used, 0x1000).unwrap();
        assert_eq!(&f[..], &[r(0x1000, 0x8_0000), r(0x18_0000, 0x3c00_0000)]);
    }

    proptest! {
        #[test]
        fn free_is_ram_minus_used(ram in prop::collection::vec((0u64..64, 1u64..16), 1..4),
                                  used in prop::collection::vec((0u64..80, 1u64..8), 0..6)) {
            let ram: Vec<Range> = ram.iter().map(|&(s, n)| r(s * 0x1000, (s + n) * 0x1000)).collect();
            let used: Vec<Range> = used.iter().map(|&(s, n)| r(s * 0x1000 + 5, (s + n) * 0x1000 - 3)).collect();
            let f = free_ranges(&ram, &used, 0x1000).unwrap();
            for page in 0..96u64 {
                let a = page * 0x1000;
                let in_ram = ram.iter().any(|x| x.start <= a && a + 0x1000 <= x.end);
                let touched = used.iter().any(|u| u.start < a + 0x1000 && a < u.end);
                let free = f.iter().any(|x| x.start <= a && a + 0x1000 <= x.end);
                prop_assert_eq!(free, in_ram && !touched, "page {:#x}", a);
            }
            for w in f.windows(2) { prop_assert!(w[0].end <= w[1].start); }
        }
    }
}
