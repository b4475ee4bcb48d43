//! Network services for the guest kernel over [`smoltcp`], kept free of
//! hypercalls and device registers so that they are tested on the host
//! (two stacks joined by an in-memory wire).
//!
//! * [`FrameIo`]: what a network device must do (send and receive whole
//!   Ethernet frames); the netfront and virtio-net drivers implement it.
//! * [`Stack`]: a smoltcp interface with a static IPv4 address and default
//!   gateway over a [`FrameIo`] (QEMU's user network: 10.0.2.15/24, gateway
//!   10.0.2.2, no DHCP needed). It answers ICMP echo requests by itself.
//! * [`HttpServer`]: a listening TCP socket that answers each request with
//!   a fixed page, counting requests served.
//! * [`Pinger`]: ICMP echo requests to a peer, counting checked replies.
//! * [`Blaster`] / [`Sink`]: a TCP byte stream with a checked pattern, for
//!   the throughput benchmark.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

extern crate alloc;

mod services;
pub use services::{parse_response, Blaster, HttpGet, HttpServer, Pinger, Sink};

use alloc::vec;
use alloc::vec::Vec;
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};

pub use smoltcp;

/// Largest Ethernet frame carried (no FCS).
pub const FRAME_MAX: usize = 1514;

/// A device that moves whole Ethernet frames.
pub trait FrameIo {
    /// Sends one frame; false when the device has no room now (the frame
    /// is dropped, as on a real wire; TCP retransmits).
    fn send(&mut self, frame: &[u8]) -> bool;
    /// Receives one frame into `buf` (at least [`FRAME_MAX`] bytes).
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize>;
    /// Whether a frame can be sent now.
    fn can_send(&mut self) -> bool {
        true
    }
}

/// A [`FrameIo`] as a smoltcp device.
pub struct EthDevice<F: FrameIo> {
    /// The device.
    pub io: F,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// Frames sent and received.
    pub frames: (u64, u64),
    /// Frames the device refused to send.
    pub send_refused: u64,
}

impl<F: FrameIo> EthDevice<F> {
    /// Wraps `io`.
    pub fn new(io: F) -> Self {
        EthDevice {
            io,
            rx: vec![0; FRAME_MAX],
            tx: vec![0; FRAME_MAX],
            frames: (0, 0),
            send_refused: 0,
        }
    }
}

/// Receive token: a frame already copied in.
pub struct RxTok<'a>(&'a [u8]);
/// Transmit token.
pub struct TxTok<'a, F: FrameIo> {
    io: &'a mut F,
    buf: &'a mut Vec<u8>,
    sent: &'a mut u64,
    refused: &'a mut u64,
}

impl phy::RxToken for RxTok<'_> {
    fn consume<R, G: FnOnce(&[u8]) -> R>(self, f: G) -> R {
        f(self.0)
    }
}

impl<F: FrameIo> phy::TxToken for TxTok<'_, F> {
    fn consume<R, G: FnOnce(&mut [u8]) -> R>(self, len: usize, f: G) -> R {
        let len = len.min(FRAME_MAX);
        let r = f(&mut self.buf[..len]);
        if self.io.send(&self.buf[..len]) {
            *self.sent += 1;
        } else {
            *self.refused += 1;
        }
        r
    }
}

impl<F: FrameIo> phy::Device for EthDevice<F> {
    type RxToken<'a>
        = RxTok<'a>
    where
        F: 'a;
    type TxToken<'a>
        = TxTok<'a, F>
    where
        F: 'a;

    fn receive(&mut self, _t: Instant) -> Option<(RxTok<'_>, TxTok<'_, F>)> {
        let n = self.io.recv(&mut self.rx)?;
        self.frames.1 += 1;
        let n = n.min(FRAME_MAX);
        Some((
            RxTok(&self.rx[..n]),
            TxTok {
                io: &mut self.io,
                buf: &mut self.tx,
                sent: &mut self.frames.0,
                refused: &mut self.send_refused,
            },
        ))
    }

    fn transmit(&mut self, _t: Instant) -> Option<TxTok<'_, F>> {
        if !self.io.can_send() {
            return None;
        }
        Some(TxTok {
            io: &mut self.io,
            buf: &mut self.tx,
            sent: &mut self.frames.0,
            refused: &mut self.send_refused,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = FRAME_MAX;
        c.max_burst_size = Some(8);
        c
    }
}

/// Static IPv4 configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Config {
    /// The address.
    pub addr: [u8; 4],
    /// Prefix length.
    pub prefix: u8,
    /// Default gateway, if any.
    pub gateway: Option<[u8; 4]>,
}

impl Ipv4Config {
    /// QEMU's user network (slirp) defaults for the first guest.
    pub const SLIRP: Ipv4Config = Ipv4Config {
        addr: [10, 0, 2, 15],
        prefix: 24,
        gateway: Some([10, 0, 2, 2]),
    };

    /// Parses `a.b.c.d/len` (no gateway).
    pub fn parse(s: &str) -> Option<Ipv4Config> {
        let (a, p) = s.split_once('/')?;
        let prefix: u8 = p.parse().ok().filter(|p| *p <= 32)?;
        let mut addr = [0u8; 4];
        let mut it = a.split('.');
        for b in addr.iter_mut() {
            *b = it.next()?.parse().ok()?;
        }
        it.next().is_none().then_some(Ipv4Config {
            addr,
            prefix,
            gateway: None,
        })
    }
}

/// An interface, its device and its sockets.
pub struct Stack<F: FrameIo> {
    /// The device.
    pub dev: EthDevice<F>,
    /// The smoltcp interface.
    pub iface: Interface,
    /// Its sockets.
    pub sockets: SocketSet<'static>,
}

impl<F: FrameIo> Stack<F> {
    /// A stack on `io` with `mac` and `ip`, at time `now_ms`.
    pub fn new(io: F, mac: [u8; 6], ip: Ipv4Config, now_ms: i64) -> Self {
        let mut dev = EthDevice::new(io);
        let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        cfg.random_seed =
            u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0x5a, 0xa5]);
        let mut iface = Interface::new(cfg, &mut dev, Instant::from_millis(now_ms));
        iface.update_ip_addrs(|a| {
            let [x, y, z, w] = ip.addr;
            let _ = a.push(IpCidr::new(Ipv4Address::new(x, y, z, w).into(), ip.prefix));
        });
        if let Some([x, y, z, w]) = ip.gateway {
            let _ = iface
                .routes_mut()
                .add_default_ipv4_route(Ipv4Address::new(x, y, z, w));
        }
        Stack {
            dev,
            iface,
            sockets: SocketSet::new(vec![]),
        }
    }

    /// Processes what arrived and sends what is due; true if anything
    /// happened.
    pub fn poll(&mut self, now_ms: i64) -> bool {
        self.iface.poll(
            Instant::from_millis(now_ms),
            &mut self.dev,
            &mut self.sockets,
        ) != smoltcp::iface::PollResult::None
    }

    /// Milliseconds until smoltcp next needs a poll (None: only on input).
    pub fn poll_delay_ms(&mut self, now_ms: i64) -> Option<u64> {
        self.iface
            .poll_delay(Instant::from_millis(now_ms), &self.sockets)
            .map(|d| d.total_millis())
    }
}

#[cfg(test)]
mod tests;
