//! Block device protocol (Xen's `io/blkif.h`): requests name a start
//! sector and up to [`BLKIF_MAX_SEGMENTS_PER_REQUEST`] segments, each a
//! granted page of the front end and a range of 512-byte sectors in it
//! (`first_sect..=last_sect`, both `0..=7`); a response echoes the request
//! `id` and gives a status.
//!
//! | request field | offset | size |
//! |---|---|---|
//! | `operation` | 0 | 1 |
//! | `nr_segments` | 1 | 1 |
//! | `handle` | 2 | 2 |
//! | (padding) | 4 | 4 |
//! | `id` | 8 | 8 |
//! | `sector_number` | 16 | 8 |
//! | `seg[11]`: `gref` (4), `first_sect` (1), `last_sect` (1), pad (2) | 24 | 88 |
//!
//! The response is `id` (8), `operation` (1), pad (1), `status` (i16), pad
//! (4): 16 bytes. A ring slot holds 112 bytes, so a page has
//! [`BLKIF_RING_SIZE`] = 32 slots.
//!
//! Store keys (under the front end's and back end's device directories):
//! `ring-ref`, `event-channel`, `protocol` (front end), `sectors`,
//! `sector-size`, `info`, `feature-flush-cache`, `feature-barrier`
//! (back end); see [`keys`].
//!
//! ```
//! use hypercall_abi::io::blkif::*;
//! let mut req = BlkifRequest::new(BLKIF_OP_WRITE, 1, 0);
//! req.push_segment(BlkifSegment { gref: 12, first_sect: 0, last_sect: 7 }).unwrap();
//! let mut bytes = [0u8; BLKIF_REQUEST_BYTES];
//! req.encode(&mut bytes).unwrap();
//! assert_eq!(BlkifRequest::decode(&bytes), Ok(req));
//! assert_eq!(req.total_bytes(), 4096);
//! ```

use super::{get_u16, get_u32, get_u64, need, put_u16, put_u32, put_u64, CodecError};
use crate::grant_table::GrantRef;
use crate::ring::{ring_size, RingEntry, SlotReader, SlotWriter, PAGE_SLOT_WORDS};

/// `BLKIF_OP_READ`: read sectors into the segments' pages.
pub const BLKIF_OP_READ: u8 = 0;
/// `BLKIF_OP_WRITE`: write the segments' pages to sectors.
pub const BLKIF_OP_WRITE: u8 = 1;
/// `BLKIF_OP_WRITE_BARRIER`: a write that completes only after every
/// earlier request, and before any later one starts.
pub const BLKIF_OP_WRITE_BARRIER: u8 = 2;
/// `BLKIF_OP_FLUSH_DISKCACHE`: make every completed write durable (may
/// carry segments: a write followed by a flush).
pub const BLKIF_OP_FLUSH_DISKCACHE: u8 = 3;
/// `BLKIF_OP_RESERVED_1` (never used).
pub const BLKIF_OP_RESERVED_1: u8 = 4;
/// `BLKIF_OP_DISCARD` (not supported here).
pub const BLKIF_OP_DISCARD: u8 = 5;
/// `BLKIF_OP_INDIRECT` (not supported here).
pub const BLKIF_OP_INDIRECT: u8 = 6;

/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`.
pub const BLKIF_MAX_SEGMENTS_PER_REQUEST: usize = 11;
/// Sector size of the protocol: `sector_number`, `first_sect` and
/// `last_sect` count 512-byte units whatever the disk's own sector size.
pub const SECTOR_SIZE: u64 = 512;
/// Sectors per 4 KiB page: `first_sect`/`last_sect` are at most 7.
pub const SECTORS_PER_PAGE: u8 = 8;

/// `BLKIF_RSP_EOPNOTSUPP`: operation not supported.
pub const BLKIF_RSP_EOPNOTSUPP: i16 = -2;
/// `BLKIF_RSP_ERROR`: the request failed (or was malformed).
pub const BLKIF_RSP_ERROR: i16 = -1;
/// `BLKIF_RSP_OKAY`.
pub const BLKIF_RSP_OKAY: i16 = 0;

/// `VDISK_CDROM` bit of the back end's `info` key.
pub const VDISK_CDROM: u32 = 1;
/// `VDISK_REMOVABLE` bit of `info`.
pub const VDISK_REMOVABLE: u32 = 2;
/// `VDISK_READONLY` bit of `info`.
pub const VDISK_READONLY: u32 = 4;

/// Bytes of an encoded request.
pub const BLKIF_REQUEST_BYTES: usize = 112;
/// Bytes of an encoded response.
pub const BLKIF_RESPONSE_BYTES: usize = 16;
/// Requests in a one-page ring (`__CONST_RING_SIZE(blkif, 4096)`).
pub const BLKIF_RING_SIZE: u32 = ring_size(BLKIF_REQUEST_BYTES / 4, PAGE_SLOT_WORDS);

/// Store key names of the block protocol.
pub mod keys {
    /// Front end: grant reference of the ring page.
    pub const RING_REF: &str = "ring-ref";
    /// Front end: its event-channel port (unbound, for the back end).
    pub const EVENT_CHANNEL: &str = "event-channel";
    /// Front end: ABI of the ring (`"arm-abi"` here).
    pub const PROTOCOL: &str = "protocol";
    /// Back end: disk size in 512-byte sectors.
    pub const SECTORS: &str = "sectors";
    /// Back end: the disk's logical sector size in bytes.
    pub const SECTOR_SIZE: &str = "sector-size";
    /// Back end: `VDISK_*` bits.
    pub const INFO: &str = "info";
    /// Back end: `"1"` if `BLKIF_OP_FLUSH_DISKCACHE` is supported.
    pub const FEATURE_FLUSH: &str = "feature-flush-cache";
    /// Back end: `"1"` if `BLKIF_OP_WRITE_BARRIER` is supported.
    pub const FEATURE_BARRIER: &str = "feature-barrier";
    /// Both: the `XenbusState` number, in decimal.
    pub const STATE: &str = "state";
}

/// `struct blkif_request_segment`: sectors `first_sect..=last_sect` of the
/// page granted as `gref`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifSegment {
    /// Grant reference of the front end's page.
    pub gref: GrantRef,
    /// First 512-byte sector in the page (0..=7).
    pub first_sect: u8,
    /// Last 512-byte sector in the page (first_sect..=7).
    pub last_sect: u8,
}

impl BlkifSegment {
    /// Sectors covered, if the range is well formed (`first <= last <= 7`).
    pub fn sectors(&self) -> Option<u64> {
        (self.first_sect <= self.last_sect && self.last_sect < SECTORS_PER_PAGE)
            .then(|| (self.last_sect - self.first_sect) as u64 + 1)
    }
}

/// `struct blkif_request`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequest {
    /// `BLKIF_OP_*`.
    pub operation: u8,
    /// Segments in use (a peer may write anything: validate).
    pub nr_segments: u8,
    /// The virtual device (`blkif_vdev_t`).
    pub handle: u16,
    /// Echoed in the response.
    pub id: u64,
    /// First 512-byte sector on the disk.
    pub sector_number: u64,
    /// The segments (only `nr_segments` are meaningful).
    pub seg: [BlkifSegment; BLKIF_MAX_SEGMENTS_PER_REQUEST],
}

impl BlkifRequest {
    /// A request with no segments yet.
    pub fn new(operation: u8, id: u64, sector_number: u64) -> Self {
        BlkifRequest {
            operation,
            id,
            sector_number,
            ..Default::default()
        }
    }

    /// Appends a segment; refuses a 12th.
    pub fn push_segment(&mut self, s: BlkifSegment) -> Result<(), CodecError> {
        let n = self.nr_segments as usize;
        if n >= BLKIF_MAX_SEGMENTS_PER_REQUEST {
            return Err(CodecError::TooLarge);
        }
        self.seg[n] = s;
        self.nr_segments += 1;
        Ok(())
    }

    /// The segments in use (clamped to 11 if `nr_segments` is bogus).
    pub fn segments(&self) -> &[BlkifSegment] {
        &self.seg[..(self.nr_segments as usize).min(BLKIF_MAX_SEGMENTS_PER_REQUEST)]
    }

    /// Bytes the segments cover (malformed segments count 0).
    pub fn total_bytes(&self) -> u64 {
        self.segments()
            .iter()
            .map(|s| s.sectors().unwrap_or(0) * SECTOR_SIZE)
            .sum()
    }

    /// Writes the 112-byte wire form.
    pub fn encode(&self, b: &mut [u8]) -> Result<(), CodecError> {
        need(b.len(), BLKIF_REQUEST_BYTES)?;
        b[..BLKIF_REQUEST_BYTES].fill(0);
        b[0] = self.operation;
        b[1] = self.nr_segments;
        put_u16(b, 2, self.handle);
        put_u64(b, 8, self.id);
        put_u64(b, 16, self.sector_number);
        for (i, s) in self.seg.iter().enumerate() {
            let at = 24 + 8 * i;
            put_u32(b, at, s.gref);
            b[at + 4] = s.first_sect;
            b[at + 5] = s.last_sect;
        }
        Ok(())
    }

    /// Reads the wire form (any contents; only the length is checked).
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        need(b.len(), BLKIF_REQUEST_BYTES)?;
        Ok(BlkifRequest {
            operation: b[0],
            nr_segments: b[1],
            handle: get_u16(b, 2),
            id: get_u64(b, 8),
            sector_number: get_u64(b, 16),
            seg: core::array::from_fn(|i| {
                let at = 24 + 8 * i;
                BlkifSegment {
                    gref: get_u32(b, at),
                    first_sect: b[at + 4],
                    last_sect: b[at + 5],
                }
            }),
        })
    }
}

/// `struct blkif_response`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifResponse {
    /// The request's `id`.
    pub id: u64,
    /// The request's `operation`.
    pub operation: u8,
    /// `BLKIF_RSP_*`.
    pub status: i16,
}

impl BlkifResponse {
    /// Writes the 16-byte wire form.
    pub fn encode(&self, b: &mut [u8]) -> Result<(), CodecError> {
        need(b.len(), BLKIF_RESPONSE_BYTES)?;
        b[..BLKIF_RESPONSE_BYTES].fill(0);
        put_u64(b, 0, self.id);
        b[8] = self.operation;
        put_u16(b, 10, self.status as u16);
        Ok(())
    }

    /// Reads the wire form.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        need(b.len(), BLKIF_RESPONSE_BYTES)?;
        Ok(BlkifResponse {
            id: get_u64(b, 0),
            operation: b[8],
            status: get_u16(b, 10) as i16,
        })
    }
}

pub(crate) fn write_words(bytes: &[u8], slot: &mut SlotWriter<'_>) {
    for (i, w) in bytes.chunks(4).enumerate() {
        let mut x = [0u8; 4];
        x[..w.len()].copy_from_slice(w);
        slot.put(i, u32::from_le_bytes(x));
    }
}

pub(crate) fn read_words(bytes: &mut [u8], slot: &SlotReader<'_>) {
    for (i, w) in bytes.chunks_mut(4).enumerate() {
        let x = slot.get(i).to_le_bytes();
        let n = w.len();
        w.copy_from_slice(&x[..n]);
    }
}

/// Implements [`RingEntry`] through the byte encoding.
macro_rules! ring_entry_by_bytes {
    ($t:ty, $n:expr) => {
        impl RingEntry for $t {
            const WORDS: usize = $n.div_ceil(4);
            fn write(&self, slot: &mut SlotWriter<'_>) {
                let mut b = [0u8; $n];
                // The buffer has exactly the encoded size.
                let _ = self.encode(&mut b);
                $crate::io::blkif::write_words(&b, slot);
            }
            fn read(slot: &SlotReader<'_>) -> Self {
                let mut b = [0u8; $n];
                $crate::io::blkif::read_words(&mut b, slot);
                Self::decode(&b).unwrap_or_default()
            }
        }
    };
}
pub(crate) use ring_entry_by_bytes;

// Block entries are on the data path: they go to and from the slot word
// by word (the layout of `encode`, little-endian, padding zero), with no
// byte buffer in between. `io/tests.rs` checks both forms agree.
impl RingEntry for BlkifRequest {
    const WORDS: usize = BLKIF_REQUEST_BYTES / 4;
    fn write(&self, slot: &mut SlotWriter<'_>) {
        slot.put(
            0,
            self.operation as u32 | (self.nr_segments as u32) << 8 | (self.handle as u32) << 16,
        );
        slot.put(1, 0);
        slot.put_u64(2, self.id);
        slot.put_u64(4, self.sector_number);
        for (i, s) in self.seg.iter().enumerate() {
            slot.put(6 + 2 * i, s.gref);
            slot.put(7 + 2 * i, s.first_sect as u32 | (s.last_sect as u32) << 8);
        }
    }
    fn read(slot: &SlotReader<'_>) -> Self {
        let w0 = slot.get(0);
        BlkifRequest {
            operation: w0 as u8,
            nr_segments: (w0 >> 8) as u8,
            handle: (w0 >> 16) as u16,
            id: slot.get_u64(2),
            sector_number: slot.get_u64(4),
            seg: core::array::from_fn(|i| {
                let w = slot.get(7 + 2 * i);
                BlkifSegment {
                    gref: slot.get(6 + 2 * i),
                    first_sect: w as u8,
                    last_sect: (w >> 8) as u8,
                }
            }),
        }
    }
}

impl RingEntry for BlkifResponse {
    const WORDS: usize = BLKIF_RESPONSE_BYTES / 4;
    fn write(&self, slot: &mut SlotWriter<'_>) {
        slot.put_u64(0, self.id);
        slot.put(2, self.operation as u32 | (self.status as u16 as u32) << 16);
        slot.put(3, 0);
    }
    fn read(slot: &SlotReader<'_>) -> Self {
        let w2 = slot.get(2);
        BlkifResponse {
            id: slot.get_u64(0),
            operation: w2 as u8,
            status: (w2 >> 16) as u16 as i16,
        }
    }
}
