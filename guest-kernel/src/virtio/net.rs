//! virtio-net as a frame device (for smoltcp directly, or as the bridge's
//! uplink).

use super::hal::WindowHal;
use super::Irq;
use netsvc::FrameIo;
use virtio_drivers::device::net::VirtIONet;
use virtio_drivers::transport::mmio::MmioTransport;

/// Receive buffers (and queue size).
pub const QUEUE: usize = 16;
/// Bytes per receive buffer (a frame plus the virtio-net header).
pub const BUF_LEN: usize = 2048;

/// The device and its interrupt.
pub struct VirtioNic {
    dev: VirtIONet<WindowHal, MmioTransport<'static>, QUEUE>,
    /// Its interrupt.
    pub irq: Irq,
    /// Frames the device refused.
    pub tx_errors: u64,
}

impl VirtioNic {
    /// Wraps an initialised device.
    pub fn new(mut dev: VirtIONet<WindowHal, MmioTransport<'static>, QUEUE>, irq: Irq) -> Self {
        dev.enable_interrupts();
        VirtioNic {
            dev,
            irq,
            tx_errors: 0,
        }
    }

    /// The device's MAC.
    pub fn mac(&self) -> [u8; 6] {
        self.dev.mac_address()
    }

    /// Acknowledges the device's interrupt and ends it (after the rings
    /// were looked at).
    pub fn ack(&mut self) {
        let _ = self.dev.ack_interrupt();
        self.irq.eoi();
    }
}

impl FrameIo for VirtioNic {
    fn send(&mut self, frame: &[u8]) -> bool {
        let mut tx = self.dev.new_tx_buffer(frame.len());
        tx.packet_mut().copy_from_slice(frame);
        // `send` waits for the device to take the frame (QEMU does at once).
        let ok = self.dev.send(tx).is_ok();
        self.tx_errors += u64::from(!ok);
        ok
    }

    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        if !self.dev.can_recv() {
            return None;
        }
        let rx = self.dev.receive().ok()?;
        let p = rx.packet();
        let n = p.len().min(buf.len());
        buf[..n].copy_from_slice(&p[..n]);
        let _ = self.dev.recycle_rx_buffer(rx);
        Some(n)
    }

    fn can_send(&mut self) -> bool {
        self.dev.can_send()
    }
}
