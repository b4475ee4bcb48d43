//! The block back end: checks each request a front end puts on its ring,
//! then executes it against a [`Disk`], moving data through the front
//! end's granted pages with a [`GrantAccess`] (grant mapping or grant copy
//! in the driver domain; plain memory in tests).
//!
//! A request is refused with `BLKIF_RSP_ERROR`, *before anything is
//! touched*, when:
//! * the operation is not one of Xen's (`> BLKIF_OP_INDIRECT`);
//! * a read or write has 0 segments, or any request more than 11;
//! * a segment has `first_sect > last_sect` or `last_sect > 7`;
//! * the sector range (`sector_number` + all segments' sectors) passes
//!   the end of the disk or overflows;
//! * it writes to a read-only disk.
//!
//! `BLKIF_OP_DISCARD`, `BLKIF_OP_INDIRECT` and `BLKIF_OP_RESERVED_1` are
//! answered `BLKIF_RSP_EOPNOTSUPP`. A grant that cannot be used (the front
//! end did not grant it, or not writable for a read) makes the request
//! fail with `BLKIF_RSP_ERROR`: every segment's grant is checked
//! ([`GrantAccess::check`]) before the disk is touched, so a bad grant
//! leaves the disk unchanged. A disk in memory ([`Disk::slice`]) is copied
//! straight to or from the granted pages, with no bounce buffer.
//!
//! Ordering: requests are executed one at a time in ring order, each
//! completing before the next starts. [`BlkBack::execute_batch`] takes
//! several at once and merges adjacent reads (or writes) of consecutive
//! sectors into one disk I/O (up to [`Disk::merge_limit`]), with the same
//! results as executing them one by one. `BLKIF_OP_WRITE_BARRIER` flushes
//! before and after its write (everything earlier is durable before it,
//! it is durable before anything later); `BLKIF_OP_FLUSH_DISKCACHE`
//! writes its segments, if any, then flushes.
//!
//! ```
//! use pvdev::blkback::*;
//! use hypercall_abi::io::blkif::*;
//! let mut back = BlkBack::new(RamDisk::new(64));
//! let mut grants = MemGrants::default();
//! grants.grant(5, [0xab; 4096]);
//! let mut w = BlkifRequest::new(BLKIF_OP_WRITE, 1, 8);
//! w.push_segment(BlkifSegment { gref: 5, first_sect: 0, last_sect: 7 }).unwrap();
//! assert_eq!(back.execute(&w, &mut grants).status, BLKIF_RSP_OKAY);
//! let mut bad = w;
//! bad.sector_number = 60; // 60 + 8 > 64 sectors
//! assert_eq!(back.execute(&bad, &mut grants).status, BLKIF_RSP_ERROR);
//! ```

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use hypercall_abi::grant_table::GrantRef;
use hypercall_abi::io::blkif::*;

/// A disk failed an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskError;

/// A disk of 512-byte sectors.
pub trait Disk {
    /// Size in 512-byte sectors.
    fn sectors(&self) -> u64;
    /// Whether writes are refused.
    fn read_only(&self) -> bool {
        false
    }
    /// Reads `buf.len()` bytes (a multiple of 512) from `sector`.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError>;
    /// Writes `buf` (a multiple of 512 bytes) at `sector`.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), DiskError>;
    /// Makes completed writes durable.
    fn flush(&mut self) -> Result<(), DiskError>;
    /// The bytes of `len` bytes at `sector`, if the disk is in memory
    /// (lets the back end copy straight between disk and granted page).
    fn slice(&self, _sector: u64, _len: usize) -> Option<&[u8]> {
        None
    }
    /// Like [`slice`](Self::slice), writable (never for a read-only disk).
    fn slice_mut(&mut self, _sector: u64, _len: usize) -> Option<&mut [u8]> {
        None
    }
    /// The largest run of adjacent reads (or writes) that
    /// [`BlkBack::execute_batch`] merges into one I/O on this disk, in
    /// bytes (0, the default: none; a disk in memory gains nothing).
    fn merge_limit(&self) -> usize {
        0
    }
    /// Reads `len` bytes (a multiple of 512) at `sector` and hands them to
    /// `out(offset, bytes)` in pieces that cover `0..len` once each, in any
    /// order: a disk that stages data in its own (DMA) buffers lets the
    /// caller copy straight out of them. Default: one piece, through
    /// [`read`](Self::read) into a temporary buffer.
    fn read_pieces(
        &mut self,
        sector: u64,
        len: usize,
        out: &mut dyn FnMut(usize, &[u8]),
    ) -> Result<(), DiskError> {
        let mut buf = vec![0; len];
        self.read(sector, &mut buf)?;
        out(0, &buf);
        Ok(())
    }
    /// Writes `len` bytes (a multiple of 512) at `sector`, asking
    /// `fill(offset, buf)` to fill each piece (pieces cover `0..len`, in
    /// order); a failed `fill` stops the write with an error (pieces
    /// already filled may have been written). Default: one piece, through
    /// [`write`](Self::write).
    fn write_pieces(
        &mut self,
        sector: u64,
        len: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> Result<(), ()>,
    ) -> Result<(), DiskError> {
        let mut buf = vec![0; len];
        fill(0, &mut buf).map_err(|_| DiskError)?;
        self.write(sector, &buf)
    }
}

/// A grant could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantError {
    /// The reference.
    pub gref: GrantRef,
}

/// Access to the front end's granted pages (byte ranges within a page).
pub trait GrantAccess {
    /// Copies `out.len()` bytes at `offset` of page `gref` out.
    fn read(&mut self, gref: GrantRef, offset: usize, out: &mut [u8]) -> Result<(), GrantError>;
    /// Copies `data` to `offset` of page `gref` (a writable grant).
    fn write(&mut self, gref: GrantRef, offset: usize, data: &[u8]) -> Result<(), GrantError>;
    /// Whether page `gref` can be used, read from (`to_page` false) or
    /// written to (`to_page` true), checked before the disk is touched.
    fn check(&mut self, gref: GrantRef, to_page: bool) -> Result<(), GrantError> {
        if to_page {
            self.write(gref, 0, &[])
        } else {
            self.read(gref, 0, &mut [])
        }
    }
}

/// A disk in memory.
#[derive(Clone, Debug)]
pub struct RamDisk {
    data: Vec<u8>,
    /// Flushes done.
    pub flushes: u64,
    read_only: bool,
}

impl RamDisk {
    /// A zeroed disk of `sectors` 512-byte sectors.
    pub fn new(sectors: u64) -> Self {
        RamDisk {
            data: vec![0; (sectors * SECTOR_SIZE) as usize],
            flushes: 0,
            read_only: false,
        }
    }
    /// A read-only disk holding `data` (padded to whole sectors).
    pub fn read_only(mut data: Vec<u8>) -> Self {
        let len = data.len().div_ceil(512) * 512;
        data.resize(len, 0);
        RamDisk {
            data,
            flushes: 0,
            read_only: true,
        }
    }
    /// The contents.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }
}

impl Disk for RamDisk {
    fn sectors(&self) -> u64 {
        self.data.len() as u64 / SECTOR_SIZE
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let at = sector.checked_mul(SECTOR_SIZE).ok_or(DiskError)? as usize;
        let src = self
            .data
            .get(at..at.checked_add(buf.len()).ok_or(DiskError)?)
            .ok_or(DiskError)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), DiskError> {
        if self.read_only {
            return Err(DiskError);
        }
        let at = sector.checked_mul(SECTOR_SIZE).ok_or(DiskError)? as usize;
        let dst = self
            .data
            .get_mut(at..at.checked_add(buf.len()).ok_or(DiskError)?)
            .ok_or(DiskError)?;
        dst.copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        self.flushes += 1;
        Ok(())
    }
    fn slice(&self, sector: u64, len: usize) -> Option<&[u8]> {
        let at = usize::try_from(sector.checked_mul(SECTOR_SIZE)?).ok()?;
        self.data.get(at..at.checked_add(len)?)
    }
    fn slice_mut(&mut self, sector: u64, len: usize) -> Option<&mut [u8]> {
        if self.read_only {
            return None;
        }
        let at = usize::try_from(sector.checked_mul(SECTOR_SIZE)?).ok()?;
        self.data.get_mut(at..at.checked_add(len)?)
    }
}

/// The known content of a fresh RAM disk of the driver domain: byte
/// `offset` (a front end checks a read of data it never wrote).
pub fn disk_pattern(offset: u64) -> u8 {
    let sector = offset / SECTOR_SIZE;
    ((sector.wrapping_mul(0x9e37_79b9) >> 8) as u8) ^ (offset as u8)
}

impl RamDisk {
    /// A disk of `sectors` sectors filled by `f(byte offset)` (a known
    /// pattern a front end can check without having written it).
    pub fn with_pattern(sectors: u64, f: impl Fn(u64) -> u8) -> Self {
        let mut d = RamDisk::new(sectors);
        for (i, b) in d.data.iter_mut().enumerate() {
            *b = f(i as u64);
        }
        d
    }
}

/// Granted pages in memory, by reference (tests, and a model of what a
/// front end granted).
#[derive(Clone, Debug, Default)]
pub struct MemGrants {
    pages: BTreeMap<GrantRef, (Vec<u8>, bool)>,
}

impl MemGrants {
    /// Grants a writable page.
    pub fn grant(&mut self, gref: GrantRef, page: [u8; 4096]) {
        self.pages.insert(gref, (page.to_vec(), false));
    }
    /// Grants a read-only page.
    pub fn grant_readonly(&mut self, gref: GrantRef, page: [u8; 4096]) {
        self.pages.insert(gref, (page.to_vec(), true));
    }
    /// A granted page's contents.
    pub fn page(&self, gref: GrantRef) -> Option<&[u8]> {
        self.pages.get(&gref).map(|(p, _)| p.as_slice())
    }
}

impl GrantAccess for MemGrants {
    fn read(&mut self, gref: GrantRef, offset: usize, out: &mut [u8]) -> Result<(), GrantError> {
        let (p, _) = self.pages.get(&gref).ok_or(GrantError { gref })?;
        let src = p
            .get(offset..offset + out.len())
            .ok_or(GrantError { gref })?;
        out.copy_from_slice(src);
        Ok(())
    }
    fn write(&mut self, gref: GrantRef, offset: usize, data: &[u8]) -> Result<(), GrantError> {
        match self.pages.get_mut(&gref) {
            Some((p, false)) => {
                let dst = p
                    .get_mut(offset..offset + data.len())
                    .ok_or(GrantError { gref })?;
                dst.copy_from_slice(data);
                Ok(())
            }
            _ => Err(GrantError { gref }),
        }
    }
}

/// Why a request was refused (its response status is in
/// [`Refusal::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not one of Xen's operations.
    BadOperation(u8),
    /// A defined operation this back end does not implement.
    Unsupported(u8),
    /// Segment count 0 (for a read or write) or over 11.
    BadSegmentCount(u8),
    /// Segment `index` has a bad sector range.
    BadSegment(usize),
    /// The sectors pass the end of the disk.
    OutOfRange,
    /// A write to a read-only disk.
    ReadOnly,
}

impl Refusal {
    /// The `BLKIF_RSP_*` status for this refusal.
    pub fn status(self) -> i16 {
        match self {
            Refusal::Unsupported(_) => BLKIF_RSP_EOPNOTSUPP,
            _ => BLKIF_RSP_ERROR,
        }
    }
}

/// Checks a request against a disk of `sectors` sectors; returns the
/// number of sectors it covers.
pub fn validate(req: &BlkifRequest, sectors: u64, read_only: bool) -> Result<u64, Refusal> {
    let op = req.operation;
    match op {
        BLKIF_OP_READ | BLKIF_OP_WRITE | BLKIF_OP_WRITE_BARRIER | BLKIF_OP_FLUSH_DISKCACHE => {}
        BLKIF_OP_RESERVED_1 | BLKIF_OP_DISCARD | BLKIF_OP_INDIRECT => {
            return Err(Refusal::Unsupported(op))
        }
        _ => return Err(Refusal::BadOperation(op)),
    }
    let n = req.nr_segments;
    if n as usize > BLKIF_MAX_SEGMENTS_PER_REQUEST
        || n == 0 && matches!(op, BLKIF_OP_READ | BLKIF_OP_WRITE)
    {
        return Err(Refusal::BadSegmentCount(n));
    }
    let mut total = 0u64;
    for (i, s) in req.segments().iter().enumerate() {
        total += s.sectors().ok_or(Refusal::BadSegment(i))?;
    }
    let end = req
        .sector_number
        .checked_add(total)
        .ok_or(Refusal::OutOfRange)?;
    if end > sectors {
        return Err(Refusal::OutOfRange);
    }
    if op != BLKIF_OP_READ && total > 0 && read_only {
        return Err(Refusal::ReadOnly);
    }
    Ok(total)
}

/// Counters of a back end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests answered OKAY.
    pub ok: u64,
    /// Requests refused by validation.
    pub refused: u64,
    /// Requests that failed on a grant or the disk.
    pub failed: u64,
    /// Bytes read from the disk for the front end.
    pub bytes_read: u64,
    /// Bytes written to the disk.
    pub bytes_written: u64,
}

/// A block back end over one disk.
pub struct BlkBack<D: Disk> {
    disk: D,
    /// Counters.
    pub stats: Stats,
    buf: Vec<u8>,
}

impl<D: Disk> BlkBack<D> {
    /// A back end for `disk`.
    pub fn new(disk: D) -> Self {
        BlkBack {
            disk,
            stats: Stats::default(),
            buf: Vec::new(),
        }
    }

    /// The disk.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// The disk, mutably (e.g. for the driver domain's own direct I/O).
    pub fn disk_mut(&mut self) -> &mut D {
        &mut self.disk
    }

    /// Gives the disk back (the device is gone; the disk may serve
    /// another back end).
    pub fn into_disk(self) -> D {
        self.disk
    }

    /// Validates and executes one request; the response to put on the ring.
    pub fn execute(&mut self, req: &BlkifRequest, grants: &mut impl GrantAccess) -> BlkifResponse {
        let status = match validate(req, self.disk.sectors(), self.disk.read_only()) {
            Err(r) => {
                self.stats.refused += 1;
                r.status()
            }
            Ok(total) => match self.run(req, total, grants) {
                Ok(()) => {
                    self.stats.ok += 1;
                    BLKIF_RSP_OKAY
                }
                Err(()) => {
                    self.stats.failed += 1;
                    BLKIF_RSP_ERROR
                }
            },
        };
        BlkifResponse {
            id: req.id,
            operation: req.operation,
            status,
        }
    }

    fn run(
        &mut self,
        req: &BlkifRequest,
        total: u64,
        grants: &mut impl GrantAccess,
    ) -> Result<(), ()> {
        let bytes = (total * SECTOR_SIZE) as usize;
        let segs = req.segments();
        let range = |s: &BlkifSegment| {
            let off = s.first_sect as usize * SECTOR_SIZE as usize;
            let len = (s.last_sect - s.first_sect + 1) as usize * SECTOR_SIZE as usize;
            (off, len)
        };
        // Every grant is checked before the disk is touched: a bad one
        // leaves the disk as it was.
        for s in segs {
            grants
                .check(s.gref, req.operation == BLKIF_OP_READ)
                .map_err(|_| ())?;
        }
        let direct = self.disk.slice(req.sector_number, bytes).is_some();
        match req.operation {
            BLKIF_OP_READ if direct => {
                let mut sector = req.sector_number;
                for s in segs {
                    let (off, len) = range(s);
                    let src = self.disk.slice(sector, len).ok_or(())?;
                    grants.write(s.gref, off, src).map_err(|_| ())?;
                    sector += (len as u64) / SECTOR_SIZE;
                }
                self.stats.bytes_read += bytes as u64;
            }
            BLKIF_OP_READ => {
                self.buf.clear();
                self.buf.resize(bytes, 0);
                self.disk
                    .read(req.sector_number, &mut self.buf)
                    .map_err(|_| ())?;
                let mut at = 0;
                for s in segs {
                    let (off, len) = range(s);
                    grants
                        .write(s.gref, off, &self.buf[at..at + len])
                        .map_err(|_| ())?;
                    at += len;
                }
                self.stats.bytes_read += bytes as u64;
            }
            op => {
                if op == BLKIF_OP_WRITE_BARRIER {
                    self.disk.flush().map_err(|_| ())?;
                }
                if bytes > 0 && direct && self.disk.slice_mut(req.sector_number, bytes).is_some() {
                    let mut sector = req.sector_number;
                    for s in segs {
                        let (off, len) = range(s);
                        let dst = self.disk.slice_mut(sector, len).ok_or(())?;
                        grants.read(s.gref, off, dst).map_err(|_| ())?;
                        sector += (len as u64) / SECTOR_SIZE;
                    }
                    self.stats.bytes_written += bytes as u64;
                } else if bytes > 0 {
                    self.buf.clear();
                    self.buf.resize(bytes, 0);
                    let mut at = 0;
                    for s in segs {
                        let (off, len) = range(s);
                        grants
                            .read(s.gref, off, &mut self.buf[at..at + len])
                            .map_err(|_| ())?;
                        at += len;
                    }
                    self.disk
                        .write(req.sector_number, &self.buf)
                        .map_err(|_| ())?;
                    self.stats.bytes_written += bytes as u64;
                }
                if op != BLKIF_OP_WRITE {
                    self.disk.flush().map_err(|_| ())?;
                }
            }
        }
        Ok(())
    }
}

mod cache;
mod merge;
pub use cache::GrantCache;

#[cfg(test)]
mod tests;
