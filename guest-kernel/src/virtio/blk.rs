//! virtio-blk as a block back end's disk.

use super::hal::WindowHal;
use super::Irq;
use pvdev::blkback::{Disk, DiskError};
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::mmio::MmioTransport;

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

    /// Waits until request `token` is used, on the device's interrupt.
    fn wait_used(&mut self, token: u16, seen: &mut u32) {
        loop {
            if self.dev.peek_used() == Some(token) {
                let _ = self.dev.ack_interrupt();
                self.irq.eoi();
                return;
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
}

impl Disk for VirtioDisk {
    fn sectors(&self) -> u64 {
        self.dev.capacity()
    }
    fn read_only(&self) -> bool {
        self.dev.readonly()
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.check(sector, buf.len(), false)?;
        let (mut req, mut resp) = (BlkReq::default(), BlkResp::default());
        let mut seen = self.irq.seen();
        // SAFETY: `req`, `buf` and `resp` stay borrowed, untouched, until
        // `complete_read_blocks` returns them (the request is used).
        unsafe {
            let t = self
                .dev
                .read_blocks_nb(sector as usize, &mut req, buf, &mut resp)
                .map_err(|_| DiskError)?;
            self.wait_used(t, &mut seen);
            self.dev
                .complete_read_blocks(t, &req, buf, &mut resp)
                .map_err(|_| DiskError)
        }
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), DiskError> {
        self.check(sector, buf.len(), true)?;
        let (mut req, mut resp) = (BlkReq::default(), BlkResp::default());
        let mut seen = self.irq.seen();
        // SAFETY: as for `read`.
        unsafe {
            let t = self
                .dev
                .write_blocks_nb(sector as usize, &mut req, buf, &mut resp)
                .map_err(|_| DiskError)?;
            self.wait_used(t, &mut seen);
            self.dev
                .complete_write_blocks(t, &req, buf, &mut resp)
                .map_err(|_| DiskError)
        }
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        self.dev.flush().map_err(|_| DiskError)
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
}
