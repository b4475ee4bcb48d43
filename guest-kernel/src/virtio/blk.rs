//! virtio-blk as a block back end's disk.
//!
//! Every transfer is split into virtio requests of at most [`CHUNK`]
//! bytes, up to [`IN_FLIGHT`] of them submitted at once (the crate's
//! non-blocking calls), each on its own [`DmaBuf`] in the DMA window that
//! the device reads or writes directly (no bounce). A write fills each
//! buffer just before submitting it; a read hands each buffer to its
//! consumer as its request completes (in the device's order), so copying
//! overlaps the device's work. A completion is first polled for by reading
//! the device's interrupt status up to [`POLLS`] times (QEMU completes a
//! request in a few microseconds of host time, and a register read costs
//! the guest one instruction where a yield costs hundreds: under `-icount`
//! the wait then costs almost no virtual time, whatever the host's load),
//! then waited for on the device's interrupt. [`Disk::read`]/[`Disk::write`] copy between these buffers and
//! the caller's; the block back end copies straight between them and the
//! front end's granted pages ([`Disk::read_pieces`]/[`Disk::write_pieces`]).

use super::hal::{DmaBuf, WindowHal};
use super::Irq;
use alloc::boxed::Box;
use alloc::vec::Vec;
use pvdev::blkback::{Disk, DiskError};
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::mmio::MmioTransport;

/// Bytes per virtio request.
pub const CHUNK: usize = 128 * 1024;
/// virtio requests in flight per transfer.
pub const IN_FLIGHT: usize = 4;
/// Device register reads before waiting for the interrupt.
pub const POLLS: usize = 1 << 16;
/// Largest run of adjacent blkif requests the back end merges.
pub const MERGE_LIMIT: usize = 1 << 20;

/// One virtio request in flight: its header and status (which the crate
/// bounces: a few bytes) and its data, in the window.
struct Slot {
    token: u16,
    req: BlkReq,
    resp: BlkResp,
    buf: DmaBuf,
    /// Byte offset in the transfer.
    at: usize,
}

/// The disk: a virtio-blk device and its interrupt.
pub struct VirtioDisk {
    dev: VirtIOBlk<WindowHal, MmioTransport<'static>>,
    irq: Irq,
    /// Requests completed through an interrupt.
    pub irqs: u64,
}

impl VirtioDisk {
    /// Wraps an initialised device.
    pub fn new(mut dev: VirtIOBlk<WindowHal, MmioTransport<'static>>, irq: Irq) -> Self {
        dev.enable_interrupts();
        VirtioDisk { dev, irq, irqs: 0 }
    }

    /// Waits until some request is used (polling, then on the device's
    /// interrupt); its token.
    fn next_used(&mut self, seen: &mut u32) -> u16 {
        for _ in 0..POLLS {
            if let Some(t) = self.dev.peek_used() {
                let _ = self.dev.ack_interrupt();
                self.irq.eoi();
                return t;
            }
            let _ = self.dev.ack_interrupt();
        }
        loop {
            if let Some(t) = self.dev.peek_used() {
                let _ = self.dev.ack_interrupt();
                self.irq.eoi();
                return t;
            }
            self.irq.wait(*seen);
            let now = self.irq.seen();
            if now != *seen {
                self.irqs += 1;
                *seen = now;
            }
            let _ = self.dev.ack_interrupt();
            self.irq.eoi();
        }
    }

    fn check(&self, sector: u64, len: usize, write: bool) -> Result<(), DiskError> {
        if len == 0 || len % SECTOR_SIZE != 0 {
            return Err(DiskError);
        }
        let end = sector
            .checked_add((len / SECTOR_SIZE) as u64)
            .ok_or(DiskError)?;
        if end > self.sectors() || (write && self.read_only()) {
            return Err(DiskError);
        }
        Ok(())
    }

    /// Transfers `len` bytes at `sector` in requests of [`CHUNK`], up to
    /// [`IN_FLIGHT`] at once: a write asks `fill` for each chunk before
    /// submitting it, a read gives each completed chunk to `out`. After an
    /// error nothing more is submitted; what is in flight is completed.
    fn transfer(
        &mut self,
        sector: u64,
        len: usize,
        write: bool,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> Result<(), ()>,
        out: &mut dyn FnMut(usize, &[u8]),
    ) -> Result<(), DiskError> {
        self.check(sector, len, write)?;
        let mut slots: Vec<Box<Slot>> = Vec::with_capacity(IN_FLIGHT);
        let (mut next, mut failed) = (0usize, false);
        let mut seen = self.irq.seen();
        loop {
            while !failed && next < len && slots.len() < IN_FLIGHT {
                let n = CHUNK.min(len - next);
                let Some(mut buf) = DmaBuf::new(n) else {
                    // The window is full: wait for what is in flight.
                    failed = slots.is_empty();
                    break;
                };
                if write && fill(next, buf.bytes_mut()).is_err() {
                    failed = true;
                    break;
                }
                let mut slot = Box::new(Slot {
                    token: 0,
                    req: BlkReq::default(),
                    resp: BlkResp::default(),
                    buf,
                    at: next,
                });
                let s = &mut *slot;
                let at = (sector + (next / SECTOR_SIZE) as u64) as usize;
                // SAFETY: the slot is boxed (its address stable) and kept
                // in `slots`, untouched, until `complete_*` returns its
                // buffers after the device used the request.
                let r = unsafe {
                    if write {
                        self.dev
                            .write_blocks_nb(at, &mut s.req, s.buf.bytes(), &mut s.resp)
                    } else {
                        self.dev
                            .read_blocks_nb(at, &mut s.req, s.buf.bytes_mut(), &mut s.resp)
                    }
                };
                match r {
                    Ok(t) => {
                        slot.token = t;
                        slots.push(slot);
                        next += n;
                    }
                    // The queue is full: wait for a completion.
                    Err(virtio_drivers::Error::QueueFull) if !slots.is_empty() => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            if slots.is_empty() {
                break;
            }
            let t = self.next_used(&mut seen);
            let Some(i) = slots.iter().position(|s| s.token == t) else {
                // A token this transfer never got: the device is broken.
                // Its buffers must outlive any use the device makes of them.
                core::mem::forget(slots);
                return Err(DiskError);
            };
            let mut slot = slots.swap_remove(i);
            let s = &mut *slot;
            // SAFETY: the buffers passed when token `t` was submitted.
            let r = unsafe {
                if write {
                    self.dev
                        .complete_write_blocks(t, &s.req, s.buf.bytes(), &mut s.resp)
                } else {
                    self.dev
                        .complete_read_blocks(t, &s.req, s.buf.bytes_mut(), &mut s.resp)
                }
            };
            match r {
                Ok(()) if !write => out(s.at, s.buf.bytes()),
                Ok(()) => {}
                Err(_) => failed = true,
            }
        }
        if failed || next < len {
            Err(DiskError)
        } else {
            Ok(())
        }
    }
}

impl Disk for VirtioDisk {
    fn sectors(&self) -> u64 {
        self.dev.capacity()
    }
    fn read_only(&self) -> bool {
        self.dev.readonly()
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let len = buf.len();
        self.transfer(sector, len, false, &mut |_, _| Err(()), &mut |at, data| {
            buf[at..at + data.len()].copy_from_slice(data)
        })
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), DiskError> {
        self.transfer(
            sector,
            buf.len(),
            true,
            &mut |at, chunk| {
                chunk.copy_from_slice(&buf[at..at + chunk.len()]);
                Ok(())
            },
            &mut |_, _| {},
        )
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        self.dev.flush().map_err(|_| DiskError)
    }
    fn merge_limit(&self) -> usize {
        MERGE_LIMIT
    }
    fn read_pieces(
        &mut self,
        sector: u64,
        len: usize,
        out: &mut dyn FnMut(usize, &[u8]),
    ) -> Result<(), DiskError> {
        self.transfer(sector, len, false, &mut |_, _| Err(()), out)
    }
    fn write_pieces(
        &mut self,
        sector: u64,
        len: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> Result<(), ()>,
    ) -> Result<(), DiskError> {
        self.transfer(sector, len, true, fill, &mut |_, _| {})
    }
}

/// The disk behind one vbd of the driver domain: a RAM disk or the
/// virtio-blk device.
pub enum BackDisk {
    /// A RAM disk (prefilled with `pvdev::blkback::disk_pattern`).
    Ram(pvdev::blkback::RamDisk),
    /// The passed-through virtio-blk device.
    Virtio(VirtioDisk),
}

impl Disk for BackDisk {
    fn sectors(&self) -> u64 {
        match self {
            BackDisk::Ram(d) => d.sectors(),
            BackDisk::Virtio(d) => d.sectors(),
        }
    }
    fn read_only(&self) -> bool {
        match self {
            BackDisk::Ram(d) => d.read_only(),
            BackDisk::Virtio(d) => d.read_only(),
        }
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        match self {
            BackDisk::Ram(d) => d.read(sector, buf),
            BackDisk::Virtio(d) => d.read(sector, buf),
        }
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), DiskError> {
        match self {
            BackDisk::Ram(d) => d.write(sector, buf),
            BackDisk::Virtio(d) => d.write(sector, buf),
        }
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        match self {
            BackDisk::Ram(d) => d.flush(),
            BackDisk::Virtio(d) => d.flush(),
        }
    }
    fn slice(&self, sector: u64, len: usize) -> Option<&[u8]> {
        match self {
            BackDisk::Ram(d) => d.slice(sector, len),
            BackDisk::Virtio(_) => None,
        }
    }
    fn slice_mut(&mut self, sector: u64, len: usize) -> Option<&mut [u8]> {
        match self {
            BackDisk::Ram(d) => d.slice_mut(sector, len),
            BackDisk::Virtio(_) => None,
        }
    }
    fn merge_limit(&self) -> usize {
        match self {
            BackDisk::Ram(d) => d.merge_limit(),
            BackDisk::Virtio(d) => d.merge_limit(),
        }
    }
    fn read_pieces(
        &mut self,
        sector: u64,
        len: usize,
        out: &mut dyn FnMut(usize, &[u8]),
    ) -> Result<(), DiskError> {
        match self {
            BackDisk::Ram(d) => d.read_pieces(sector, len, out),
            BackDisk::Virtio(d) => d.read_pieces(sector, len, out),
        }
    }
    fn write_pieces(
        &mut self,
        sector: u64,
        len: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> Result<(), ()>,
    ) -> Result<(), DiskError> {
        match self {
            BackDisk::Ram(d) => d.write_pieces(sector, len, fill),
            BackDisk::Virtio(d) => d.write_pieces(sector, len, fill),
        }
    }
}
