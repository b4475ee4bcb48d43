//! The network back end's logic: a learning bridge between the guests'
//! virtual interfaces (vifs) and an uplink, and the checks on what a
//! front end puts on its tx and rx rings.
//!
//! # Bridge
//!
//! [`Bridge::forward`] takes a frame that arrived on a port and says where
//! it goes: it learns the source MAC on that port, then sends a frame for a
//! known unicast MAC to that MAC's port, and floods broadcast, multicast
//! and unknown destinations to every other port. Frames shorter than an
//! Ethernet header, longer than [`ETH_FRAME_MAX`], with a multicast source,
//! or (on a vif with a MAC assigned by the toolstack) a foreign source
//! MAC are dropped. The table has a fixed capacity; the least recently
//! seen entry makes room.
//!
//! # tx requests
//!
//! [`TxChain`] assembles a packet from consecutive tx requests (fragments
//! chained by `NETTXF_MORE_DATA`; the first request's `size` is the whole
//! packet's) and refuses, with `NETIF_RSP_ERROR` for every request of the
//! packet: a fragment crossing its page, a packet larger than a frame or
//! whose fragment sizes do not add up, more than `XEN_NETIF_NR_SLOTS_MIN`
//! fragments, and extra-info slots (not supported).
//!
//! ```
//! use pvdev::netback::*;
//! let mut br = Bridge::new(64);
//! let (a, b) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
//! br.add_port(Port::Uplink);
//! br.add_port(Port::Vif(1));
//! br.add_port(Port::Vif(2));
//! let f = frame(BROADCAST, a);
//! assert_eq!(br.forward(Port::Vif(1), &f), Forward::Flood(vec![Port::Uplink, Port::Vif(2)]));
//! assert_eq!(br.forward(Port::Vif(2), &frame(a, b)), Forward::To(Port::Vif(1)));
//! # fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> { let mut f = dst.to_vec(); f.extend(src); f.extend([8, 0]); f.resize(60, 0); f }
//! ```

pub mod vif;
pub mod xs;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use hypercall_abi::io::netif::*;

/// A MAC address.
pub type Mac = [u8; 6];
/// The broadcast MAC.
pub const BROADCAST: Mac = [0xff; 6];
/// Ethernet header bytes (destination, source, type).
pub const ETH_HEADER: usize = 14;

/// A bridge port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Port {
    /// The physical (virtio) network.
    Uplink,
    /// A guest's interface, by its domain id.
    Vif(u16),
}

/// Where a frame goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forward {
    /// To one port.
    To(Port),
    /// To these ports (every port but the one it came from).
    Flood(Vec<Port>),
    /// Nowhere.
    Drop(DropReason),
}

/// Why a frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than an Ethernet header or longer than a frame.
    BadLength,
    /// Multicast source address.
    BadSource,
    /// A vif sent with a MAC that is not its own.
    Spoofed,
    /// The destination is on the port it came from.
    SamePort,
    /// The port is not on the bridge.
    UnknownPort,
}

/// Whether `m` is a multicast (or broadcast) MAC.
pub fn is_multicast(m: &Mac) -> bool {
    m[0] & 1 != 0
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut m = [0u8; 6];
    let mut parts = s.trim_end_matches('\0').split(':');
    for b in m.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

/// A learning switch.
pub struct Bridge {
    table: BTreeMap<Mac, (Port, u64)>,
    ports: BTreeMap<Port, Option<Mac>>,
    capacity: usize,
    clock: u64,
}

impl Bridge {
    /// A bridge learning at most `capacity` MACs.
    pub fn new(capacity: usize) -> Self {
        Bridge {
            table: BTreeMap::new(),
            ports: BTreeMap::new(),
            capacity: capacity.max(1),
            clock: 0,
        }
    }

    /// Adds a port (any source MAC allowed).
    pub fn add_port(&mut self, p: Port) {
        self.ports.insert(p, None);
    }

    /// Adds a vif that may only send from `mac`.
    pub fn add_vif(&mut self, dom: u16, mac: Mac) {
        self.ports.insert(Port::Vif(dom), Some(mac));
    }

    /// Removes a port and forgets the MACs learnt on it.
    pub fn remove_port(&mut self, p: Port) {
        self.ports.remove(&p);
        self.table.retain(|_, (q, _)| *q != p);
    }

    /// The port `mac` was learnt on.
    pub fn lookup(&self, mac: &Mac) -> Option<Port> {
        self.table.get(mac).map(|(p, _)| *p)
    }

    fn learn(&mut self, mac: Mac, p: Port) {
        self.clock += 1;
        if !self.table.contains_key(&mac) && self.table.len() >= self.capacity {
            if let Some(old) = self
                .table
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(m, _)| *m)
            {
                self.table.remove(&old);
            }
        }
        self.table.insert(mac, (p, self.clock));
    }

    /// Learns from and forwards a frame that arrived on `from`.
    pub fn forward(&mut self, from: Port, frame: &[u8]) -> Forward {
        let Some(allowed) = self.ports.get(&from).copied() else {
            return Forward::Drop(DropReason::UnknownPort);
        };
        if frame.len() < ETH_HEADER || frame.len() > ETH_FRAME_MAX {
            return Forward::Drop(DropReason::BadLength);
        }
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&frame[..6]);
        src.copy_from_slice(&frame[6..12]);
        if is_multicast(&src) {
            return Forward::Drop(DropReason::BadSource);
        }
        if allowed.is_some_and(|m| m != src) {
            return Forward::Drop(DropReason::Spoofed);
        }
        self.learn(src, from);
        if !is_multicast(&dst) {
            if let Some(to) = self.lookup(&dst) {
                return if to == from {
                    Forward::Drop(DropReason::SamePort)
                } else {
                    Forward::To(to)
                };
            }
        }
        Forward::Flood(self.ports.keys().copied().filter(|p| *p != from).collect())
    }
}

/// One fragment of a tx packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Grant reference of the page.
    pub gref: u32,
    /// Offset in the page.
    pub offset: u16,
    /// Bytes.
    pub len: u16,
}

/// Why a tx packet was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxError {
    /// A fragment passes the end of its page.
    CrossesPage,
    /// The packet is larger than a frame, smaller than a header, or its
    /// fragments do not add up to the first request's size.
    BadSize,
    /// More fragments than `XEN_NETIF_NR_SLOTS_MIN`.
    TooManySlots,
    /// Extra-info slots (GSO, multicast) are not supported.
    ExtraInfo,
}

/// A packet assembled from tx requests, or the refusal of one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxPacket {
    /// Ids of the requests it used (each needs a response).
    pub ids: Vec<u16>,
    /// The fragments, or why the packet is refused (then every id gets
    /// `NETIF_RSP_ERROR`).
    pub result: Result<Vec<Fragment>, TxError>,
}

/// Assembles tx packets from requests taken off the ring.
#[derive(Default)]
pub struct TxChain {
    ids: Vec<u16>,
    frags: Vec<Fragment>,
    total: u16,
    error: Option<TxError>,
}

impl TxChain {
    /// No packet in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next request; returns a packet when it was the last one.
    pub fn push(&mut self, r: &NetifTxRequest) -> Option<TxPacket> {
        let first = self.ids.is_empty();
        self.ids.push(r.id);
        if first {
            self.total = r.size;
        }
        let err = if r.flags & NETTXF_EXTRA_INFO != 0 {
            Some(TxError::ExtraInfo)
        } else if r.offset as usize + if first { 0 } else { r.size as usize } > 4096
            || r.offset as usize >= 4096
        {
            Some(TxError::CrossesPage)
        } else if self.ids.len() > XEN_NETIF_NR_SLOTS_MIN {
            Some(TxError::TooManySlots)
        } else {
            None
        };
        if self.error.is_none() {
            self.error = err;
        }
        self.frags.push(Fragment {
            gref: r.gref,
            offset: r.offset,
            len: r.size,
        });
        if r.flags & NETTXF_MORE_DATA != 0 && self.ids.len() <= XEN_NETIF_NR_SLOTS_MIN {
            return None;
        }
        Some(self.finish())
    }

    fn finish(&mut self) -> TxPacket {
        let ids = core::mem::take(&mut self.ids);
        let mut frags = core::mem::take(&mut self.frags);
        let mut error = self.error.take();
        let rest: u32 = frags.iter().skip(1).map(|f| f.len as u32).sum();
        let total = self.total as u32;
        if error.is_none()
            && (total as usize > ETH_FRAME_MAX || (total as usize) < ETH_HEADER || rest > total)
        {
            error = Some(TxError::BadSize);
        }
        if error.is_none() {
            // The first fragment holds what the others do not.
            frags[0].len = (total - rest) as u16;
            if frags[0].offset as usize + frags[0].len as usize > 4096 {
                error = Some(TxError::CrossesPage);
            }
        }
        TxPacket {
            ids,
            result: error.map_or(Ok(frags), Err),
        }
    }

    /// Whether a packet is half assembled.
    pub fn in_progress(&self) -> bool {
        !self.ids.is_empty()
    }
}

/// The rx response for delivering `len` bytes into the page of `req`,
/// or `NETIF_RSP_ERROR` if the frame cannot fit one page (this back end
/// does not split received frames).
pub fn rx_response(req: &NetifRxRequest, len: usize) -> NetifRxResponse {
    let status = if (ETH_HEADER..=ETH_FRAME_MAX).contains(&len) {
        len as i16
    } else {
        NETIF_RSP_ERROR
    };
    NetifRxResponse {
        id: req.id,
        offset: 0,
        flags: 0,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn frame(dst: Mac, src: Mac, len: usize) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend(src);
        f.extend([0x08, 0x00]);
        f.resize(len, 0xee);
        f
    }
    const A: Mac = [2, 0, 0, 0, 0, 0xa];
    const B: Mac = [2, 0, 0, 0, 0, 0xb];
    const H: Mac = [0x52, 0x55, 10, 0, 2, 2];

    #[test]
    fn learns_forwards_and_floods() {
        let mut br = Bridge::new(8);
        br.add_port(Port::Uplink);
        br.add_vif(1, A);
        br.add_vif(2, B);
        // Unknown destination: flood to the others.
        assert_eq!(
            br.forward(Port::Vif(1), &frame(H, A, 60)),
            Forward::Flood(vec![Port::Uplink, Port::Vif(2)])
        );
        assert_eq!(br.lookup(&A), Some(Port::Vif(1)));
        // The host answers from the uplink: learnt, sent straight to A.
        assert_eq!(
            br.forward(Port::Uplink, &frame(A, H, 60)),
            Forward::To(Port::Vif(1))
        );
        assert_eq!(
            br.forward(Port::Vif(1), &frame(H, A, 1514)),
            Forward::To(Port::Uplink)
        );
        // Multicast destination floods even when known sources exist.
        assert_eq!(
            br.forward(Port::Vif(2), &frame([1, 0, 0x5e, 0, 0, 1], B, 60)),
            Forward::Flood(vec![Port::Uplink, Port::Vif(1)])
        );
        assert_eq!(
            br.forward(Port::Vif(2), &frame(A, B, 60)),
            Forward::To(Port::Vif(1))
        );
        // Removing a vif forgets its MAC.
        br.remove_port(Port::Vif(1));
        assert_eq!(br.lookup(&A), None);
        assert_eq!(
            br.forward(Port::Vif(1), &frame(B, A, 60)),
            Forward::Drop(DropReason::UnknownPort)
        );
    }

    #[test]
    fn drops_bad_frames() {
        let mut br = Bridge::new(8);
        br.add_port(Port::Uplink);
        br.add_vif(1, A);
        assert_eq!(
            br.forward(Port::Vif(1), &frame(H, A, 13)),
            Forward::Drop(DropReason::BadLength)
        );
        assert_eq!(
            br.forward(Port::Vif(1), &frame(H, A, 1515)),
            Forward::Drop(DropReason::BadLength)
        );
        assert_eq!(
            br.forward(Port::Vif(1), &frame(H, B, 60)),
            Forward::Drop(DropReason::Spoofed)
        );
        assert_eq!(
            br.forward(Port::Uplink, &frame(H, BROADCAST, 60)),
            Forward::Drop(DropReason::BadSource)
        );
        assert_eq!(br.lookup(&B), None, "a dropped frame teaches nothing");
        br.forward(Port::Uplink, &frame(A, H, 60));
        assert_eq!(
            br.forward(Port::Uplink, &frame(H, [2, 9, 9, 9, 9, 9], 60)),
            Forward::Drop(DropReason::SamePort)
        );
    }

    #[test]
    fn table_capacity_evicts_least_recent() {
        let mut br = Bridge::new(2);
        br.add_port(Port::Uplink);
        br.add_port(Port::Vif(1));
        let m = |i: u8| [2, 0, 0, 0, 0, i];
        br.forward(Port::Uplink, &frame(H, m(1), 60));
        br.forward(Port::Uplink, &frame(H, m(2), 60));
        br.forward(Port::Uplink, &frame(H, m(1), 60)); // m1 is fresher
        br.forward(Port::Vif(1), &frame(H, m(3), 60));
        assert_eq!(
            (br.lookup(&m(1)), br.lookup(&m(2)), br.lookup(&m(3))),
            (Some(Port::Uplink), None, Some(Port::Vif(1)))
        );
    }

    fn tx(id: u16, offset: u16, size: u16, more: bool) -> NetifTxRequest {
        NetifTxRequest {
            gref: id as u32,
            offset,
            flags: if more { NETTXF_MORE_DATA } else { 0 },
            id,
            size,
        }
    }

    #[test]
    fn tx_chains() {
        let mut c = TxChain::new();
        let p = c.push(&tx(1, 100, 60, false)).unwrap();
        assert_eq!(
            p,
            TxPacket {
                ids: vec![1],
                result: Ok(vec![Fragment {
                    gref: 1,
                    offset: 100,
                    len: 60
                }])
            }
        );
        // 1514 bytes in three fragments: 1000 + 400 + 114.
        assert_eq!(c.push(&tx(2, 0, 1514, true)), None);
        assert!(c.in_progress());
        assert_eq!(c.push(&tx(3, 0, 400, true)), None);
        let p = c.push(&tx(4, 3000, 114, false)).unwrap();
        assert_eq!(p.ids, [2, 3, 4]);
        assert_eq!(
            p.result.unwrap().iter().map(|f| f.len).collect::<Vec<_>>(),
            [1000, 400, 114]
        );
        assert!(!c.in_progress());
    }

    #[test]
    fn tx_refusals_cover_every_slot() {
        let mut c = TxChain::new();
        assert_eq!(
            c.push(&tx(1, 4000, 200, false)).unwrap().result,
            Err(TxError::CrossesPage)
        );
        assert_eq!(
            c.push(&tx(2, 0, 1515, false)).unwrap().result,
            Err(TxError::BadSize)
        );
        assert_eq!(
            c.push(&tx(3, 0, 10, false)).unwrap().result,
            Err(TxError::BadSize)
        );
        assert_eq!(c.push(&tx(4, 0, 100, true)), None);
        let p = c.push(&tx(5, 0, 200, false)).unwrap();
        assert_eq!(
            (p.ids, p.result),
            (vec![4, 5], Err(TxError::BadSize)),
            "fragments exceed the total"
        );
        let mut x = tx(6, 0, 100, false);
        x.flags |= NETTXF_EXTRA_INFO;
        assert_eq!(c.push(&x).unwrap().result, Err(TxError::ExtraInfo));
        // A chain that never ends is cut at the slot limit.
        let mut out = None;
        for i in 0..40 {
            if let Some(p) = c.push(&tx(i, 0, 60, true)) {
                out = Some((i, p));
                break;
            }
        }
        let (i, p) = out.unwrap();
        assert_eq!(
            (i as usize, p.ids.len(), p.result),
            (
                XEN_NETIF_NR_SLOTS_MIN,
                XEN_NETIF_NR_SLOTS_MIN + 1,
                Err(TxError::TooManySlots)
            )
        );
    }

    #[test]
    fn rx_and_macs() {
        let r = NetifRxRequest { id: 7, gref: 3 };
        assert_eq!(rx_response(&r, 60).status, 60);
        assert_eq!(rx_response(&r, 4000).status, NETIF_RSP_ERROR);
        assert_eq!(
            parse_mac("00:16:3e:01:02:0a"),
            Some([0, 0x16, 0x3e, 1, 2, 10])
        );
        assert_eq!(parse_mac("00:16:3e:01:02"), None);
        assert_eq!(parse_mac("00:16:3e:01:02:0a:00"), None);
        assert_eq!(parse_mac("zz:16:3e:01:02:0a"), None);
    }
}
