//! Network device protocol (Xen's `io/netif.h`): two rings per interface.
//!
//! * **tx** (guest to back end): the front end grants a page holding a
//!   packet fragment and sends a [`NetifTxRequest`] (`gref`, `offset`,
//!   `size`, `flags`, `id`); a packet of several fragments sets
//!   [`NETTXF_MORE_DATA`] on all but the last, and the first request's
//!   `size` is the whole packet's. The back end answers each request with
//!   a [`NetifTxResponse`] (`id`, `status`).
//! * **rx** (back end to guest): the front end posts empty granted pages
//!   as [`NetifRxRequest`]s (`id`, `gref`); the back end copies a received
//!   packet into one and answers with a [`NetifRxResponse`] (`id`,
//!   `offset`, `flags`, `status` = bytes received, or a negative
//!   `NETIF_RSP_*`).
//!
//! | struct | bytes | fields (offset) |
//! |---|---|---|
//! | `netif_tx_request` | 12 | gref (0), offset (4), flags (6), id (8), size (10) |
//! | `netif_tx_response` | 4 | id (0), status (2) |
//! | `netif_rx_request` | 8 | id (0), pad (2), gref (4) |
//! | `netif_rx_response` | 8 | id (0), offset (2), flags (4), status (6) |
//!
//! Both rings have [`NET_TX_RING_SIZE`] = [`NET_RX_RING_SIZE`] = 256 slots.
//!
//! ```
//! use hypercall_abi::io::netif::*;
//! let req = NetifTxRequest { gref: 10, offset: 0, flags: NETTXF_MORE_DATA, id: 3, size: 1514 };
//! let mut b = [0u8; NETIF_TX_REQUEST_BYTES];
//! req.encode(&mut b).unwrap();
//! assert_eq!(NetifTxRequest::decode(&b), Ok(req));
//! assert_eq!(NET_TX_RING_SIZE, 256);
//! ```

use super::blkif::ring_entry_by_bytes;
use super::{get_u16, get_u32, need, put_u16, put_u32, CodecError};
use crate::grant_table::GrantRef;
use crate::ring::{ring_size, RingEntry, SlotReader, SlotWriter, PAGE_SLOT_WORDS};

/// `NETTXF_csum_blank`: the checksum is to be filled in.
pub const NETTXF_CSUM_BLANK: u16 = 1 << 0;
/// `NETTXF_data_validated`: the checksum has been checked.
pub const NETTXF_DATA_VALIDATED: u16 = 1 << 1;
/// `NETTXF_more_data`: more fragments of this packet follow.
pub const NETTXF_MORE_DATA: u16 = 1 << 2;
/// `NETTXF_extra_info`: a `netif_extra_info` slot follows.
pub const NETTXF_EXTRA_INFO: u16 = 1 << 3;

/// `NETRXF_data_validated`.
pub const NETRXF_DATA_VALIDATED: u16 = 1 << 0;
/// `NETRXF_csum_blank`.
pub const NETRXF_CSUM_BLANK: u16 = 1 << 1;
/// `NETRXF_more_data`: the packet continues in the next response.
pub const NETRXF_MORE_DATA: u16 = 1 << 2;
/// `NETRXF_extra_info`.
pub const NETRXF_EXTRA_INFO: u16 = 1 << 3;
/// `NETRXF_gso_prefix`.
pub const NETRXF_GSO_PREFIX: u16 = 1 << 4;

/// `NETIF_RSP_DROPPED`: the packet was dropped.
pub const NETIF_RSP_DROPPED: i16 = -2;
/// `NETIF_RSP_ERROR`: the request was malformed or failed.
pub const NETIF_RSP_ERROR: i16 = -1;
/// `NETIF_RSP_OKAY`.
pub const NETIF_RSP_OKAY: i16 = 0;
/// `NETIF_RSP_NULL`: a response to an extra-info slot.
pub const NETIF_RSP_NULL: i16 = 1;

/// `XEN_NETIF_EXTRA_TYPE_NONE`.
pub const XEN_NETIF_EXTRA_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_EXTRA_TYPE_GSO`.
pub const XEN_NETIF_EXTRA_TYPE_GSO: u8 = 1;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`.
pub const XEN_NETIF_EXTRA_TYPE_MCAST_ADD: u8 = 2;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_DEL`.
pub const XEN_NETIF_EXTRA_TYPE_MCAST_DEL: u8 = 3;
/// `XEN_NETIF_EXTRA_FLAG_MORE`: another extra-info slot follows.
pub const XEN_NETIF_EXTRA_FLAG_MORE: u8 = 1;

/// Largest packet the tx protocol can describe (`XEN_NETIF_MAX_TX_SIZE`).
pub const XEN_NETIF_MAX_TX_SIZE: u32 = 0xffff;
/// Fragments a back end must accept per packet (`XEN_NETIF_NR_SLOTS_MIN`).
pub const XEN_NETIF_NR_SLOTS_MIN: usize = 18;
/// The largest Ethernet frame without the FCS that this bridge carries.
pub const ETH_FRAME_MAX: usize = 1514;

/// Bytes of a tx request (and of a tx slot).
pub const NETIF_TX_REQUEST_BYTES: usize = 12;
/// Bytes of a tx response.
pub const NETIF_TX_RESPONSE_BYTES: usize = 4;
/// Bytes of an rx request.
pub const NETIF_RX_REQUEST_BYTES: usize = 8;
/// Bytes of an rx response.
pub const NETIF_RX_RESPONSE_BYTES: usize = 8;
/// Bytes of an extra-info slot.
pub const NETIF_EXTRA_INFO_BYTES: usize = 8;
/// Slots of the tx ring in one page.
pub const NET_TX_RING_SIZE: u32 = ring_size(NETIF_TX_REQUEST_BYTES / 4, PAGE_SLOT_WORDS);
/// Slots of the rx ring in one page.
pub const NET_RX_RING_SIZE: u32 = ring_size(NETIF_RX_REQUEST_BYTES / 4, PAGE_SLOT_WORDS);

/// Store key names of the network protocol.
pub mod keys {
    /// Front end: grant reference of the tx ring page.
    pub const TX_RING_REF: &str = "tx-ring-ref";
    /// Front end: grant reference of the rx ring page.
    pub const RX_RING_REF: &str = "rx-ring-ref";
    /// Front end: its event-channel port.
    pub const EVENT_CHANNEL: &str = "event-channel";
    /// Front end: `"1"`: the back end copies into rx pages (the only mode here).
    pub const REQUEST_RX_COPY: &str = "request-rx-copy";
    /// Back end (and toolstack): the interface's MAC, `aa:bb:cc:dd:ee:ff`.
    pub const MAC: &str = "mac";
    /// Back end: `"1"`: rx copy supported.
    pub const FEATURE_RX_COPY: &str = "feature-rx-copy";
}

/// `struct netif_tx_request`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifTxRequest {
    /// Grant reference of the page holding the fragment.
    pub gref: GrantRef,
    /// Offset of the fragment in the page.
    pub offset: u16,
    /// `NETTXF_*`.
    pub flags: u16,
    /// Echoed in the response.
    pub id: u16,
    /// Fragment size (the first fragment: the whole packet's size).
    pub size: u16,
}

impl NetifTxRequest {
    /// Writes the 12-byte wire form.
    pub fn encode(&self, b: &mut [u8]) -> Result<(), CodecError> {
        need(b.len(), NETIF_TX_REQUEST_BYTES)?;
        put_u32(b, 0, self.gref);
        put_u16(b, 4, self.offset);
        put_u16(b, 6, self.flags);
        put_u16(b, 8, self.id);
        put_u16(b, 10, self.size);
        Ok(())
    }
    /// Reads the wire form.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        need(b.len(), NETIF_TX_REQUEST_BYTES)?;
        Ok(NetifTxRequest {
            gref: get_u32(b, 0),
            offset: get_u16(b, 4),
            flags: get_u16(b, 6),
            id: get_u16(b, 8),
            size: get_u16(b, 10),
        })
    }
}

/// `struct netif_tx_response`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifTxResponse {
    /// The request's `id`.
    pub id: u16,
    /// `NETIF_RSP_*`.
    pub status: i16,
}

impl NetifTxResponse {
    /// Writes the 4-byte wire form.
    pub fn encode(&self, b: &mut [u8]) -> Result<(), CodecError> {
        need(b.len(), NETIF_TX_RESPONSE_BYTES)?;
        put_u16(b, 0, self.id);
        put_u16(b, 2, self.status as u16);
        Ok(())
    }
    /// Reads the wire form.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        need(b.len(), NETIF_TX_RESPONSE_BYTES)?;
        Ok(NetifTxResponse {
            id: get_u16(b, 0),
            status: get_u16(b, 2) as i16,
        })
    }
}

/// `struct netif_rx_request`: an empty page for the back end to fill.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifRxRequest {
    /// Echoed in the response.
    pub id: u16,
    /// Grant reference of the (writable) page.
    pub gref: GrantRef,
}

impl NetifRxRequest {
    /// Writes the 8-byte wire form.
    pub fn encode(&self, b: &mut [u8]) -> Result<(), CodecError> {
        need(b.len(), NETIF_RX_REQUEST_BYTES)?;
        put_u16(b, 0, self.id);
        put_u16(b, 2, 0);
        put_u32(b, 4, self.gref);
        Ok(())
    }
    /// Reads the wire form.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        need(b.len(), NETIF_RX_REQUEST_BYTES)?;
        Ok(NetifRxRequest {
            id: get_u16(b, 0),
            gref: get_u32(b, 4),
        })
    }
}

/// `struct netif_rx_response`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifRxResponse {
    /// The rx request's `id`.
    pub id: u16,
    /// Where the data starts in the page.
    pub offset: u16,
    /// `NETRXF_*`.
    pub flags: u16,
    /// Bytes received (> 0), or a negative `NETIF_RSP_*`.
    pub status: i16,
}

impl NetifRxResponse {
    /// Writes the 8-byte wire form.
    pub fn encode(&self, b: &mut [u8]) -> Result<(), CodecError> {
        need(b.len(), NETIF_RX_RESPONSE_BYTES)?;
        put_u16(b, 0, self.id);
        put_u16(b, 2, self.offset);
        put_u16(b, 4, self.flags);
        put_u16(b, 6, self.status as u16);
        Ok(())
    }
    /// Reads the wire form.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        need(b.len(), NETIF_RX_RESPONSE_BYTES)?;
        Ok(NetifRxResponse {
            id: get_u16(b, 0),
            offset: get_u16(b, 2),
            flags: get_u16(b, 4),
            status: get_u16(b, 6) as i16,
        })
    }
}

/// `struct netif_extra_info`: a tx slot following a request with
/// [`NETTXF_EXTRA_INFO`] (type, flags, 6 bytes of type-specific data).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifExtraInfo {
    /// `XEN_NETIF_EXTRA_TYPE_*`.
    pub kind: u8,
    /// `XEN_NETIF_EXTRA_FLAG_*`.
    pub flags: u8,
    /// Type-specific bytes (e.g. a multicast MAC).
    pub data: [u8; 6],
}

impl NetifExtraInfo {
    /// Writes the 8-byte wire form.
    pub fn encode(&self, b: &mut [u8]) -> Result<(), CodecError> {
        need(b.len(), NETIF_EXTRA_INFO_BYTES)?;
        b[0] = self.kind;
        b[1] = self.flags;
        b[2..8].copy_from_slice(&self.data);
        Ok(())
    }
    /// Reads the wire form.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        need(b.len(), NETIF_EXTRA_INFO_BYTES)?;
        let mut data = [0; 6];
        data.copy_from_slice(&b[2..8]);
        Ok(NetifExtraInfo {
            kind: b[0],
            flags: b[1],
            data,
        })
    }
}

ring_entry_by_bytes!(NetifTxRequest, NETIF_TX_REQUEST_BYTES);
ring_entry_by_bytes!(NetifTxResponse, NETIF_TX_RESPONSE_BYTES);
ring_entry_by_bytes!(NetifRxRequest, NETIF_RX_REQUEST_BYTES);
ring_entry_by_bytes!(NetifRxResponse, NETIF_RX_RESPONSE_BYTES);
