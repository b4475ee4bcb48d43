//! Split-device protocols (Xen's `public/io/*.h`): the layouts and numbers
//! a front end (in a guest) and a back end (in the driver domain) exchange
//! through shared rings, granted pages and the device store.
//!
//! * [`blkif`]: block requests and responses (`io/blkif.h`).
//! * [`netif`]: network transmit and receive slots (`io/netif.h`).
//! * [`console`]: the console page, `xencons_interface` (`io/console.h`).
//! * [`xs_wire`]: the store protocol: message header, types, errors, and
//!   the store page `xenstore_domain_interface` (`io/xs_wire.h`).
//! * [`xenbus`]: `XenbusState`, the connection handshake (`io/xenbus.h`).
//! * [`byte_ring`]: the byte rings of the console and store pages, safe
//!   against a hostile peer.
//!
//! # How a guest and its driver domain find each other
//!
//! No toolstack passes ring references or ports yet, so a fixed convention
//! (Xen's reserved grant references where Xen has them) bootstraps the
//! store, and everything else goes through the store:
//!
//! | what | guest side | driver domain |
//! |---|---|---|
//! | console page (`xencons_interface`) | grant reference 0 (`GNTTAB_RESERVED_CONSOLE`) | maps it |
//! | store page (`xenstore_domain_interface`) | grant reference 1 (`GNTTAB_RESERVED_XENSTORE`) | maps it |
//! | store event channel | port 1: the guest's first `alloc_unbound(driver)` | retries `bind_interdomain(guest, 1)` |
//! | console event channel | port 2: the second | `bind_interdomain(guest, 2)` |
//! | driver domain's id | `backend=N` on the guest's command line | lists domains (`DOMCTL_GETDOMAININFO`) |
//!
//! The guest grants both pages *before* allocating the ports, so a bound
//! port means the pages are there. Then the store holds Xen's device
//! entries: `/local/domain/<guest>/device/vbd/51712/{backend,backend-id,
//! state,virtual-device,ring-ref,event-channel,protocol}` (the front end's,
//! owned by the guest) and `/local/domain/<driver>/backend/vbd/<guest>/51712/
//! {frontend,frontend-id,state,sectors,sector-size,info,feature-*}` (the back
//! end's, readable by the guest); `/local/domain/<guest>/console/{ring-ref,
//! port,backend-id}`. The handshake is [`xenbus`]'s.
//!
//! Every message type has `encode` (into a byte slice, refusing one that is
//! too short) and `decode` (from a byte slice; any bytes decode, so nothing
//! a peer writes can make the reader fail except a short buffer), with the
//! exact little-endian C layout of Xen on Arm (sizes asserted in tests).
//! Ring entries also implement [`RingEntry`](crate::ring::RingEntry) so they
//! go straight into the generic [`ring`](crate::ring).
//! Decoding does not validate: what a field *means* (a segment count above
//! 11, a sector past the disk) is the back end's business.
//!
//! # Example: a block request through a ring
//!
//! ```
//! use hypercall_abi::io::blkif::*;
//! use hypercall_abi::ring::{BackRing, FrontRing, SharedRing};
//! let page = Box::new(SharedRing::new());
//! let mut front = FrontRing::<BlkifRequest, BlkifResponse>::init(&page).unwrap();
//! assert_eq!(front.size(), BLKIF_RING_SIZE);
//! let mut req = BlkifRequest::new(BLKIF_OP_READ, 7, 2048);
//! req.push_segment(BlkifSegment { gref: 9, first_sect: 0, last_sect: 7 }).unwrap();
//! front.push_request(&req).unwrap();
//! front.push_requests();
//! let mut back = BackRing::<BlkifRequest, BlkifResponse>::attach(&page).unwrap();
//! let got = back.take_request().unwrap().unwrap();
//! assert_eq!(got, req);
//! back.push_response(&BlkifResponse { id: got.id, operation: got.operation, status: BLKIF_RSP_OKAY }).unwrap();
//! back.push_responses();
//! assert_eq!(front.take_response().unwrap().unwrap().status, BLKIF_RSP_OKAY);
//! ```

pub mod blkif;
pub mod byte_ring;
pub mod console;
pub mod netif;
pub mod xenbus;
pub mod xs_wire;

#[cfg(test)]
mod tests;

/// Why an `encode` or `decode` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// The buffer holds `have` bytes; the message needs `need`.
    Short {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A field does not fit (e.g. a 12th segment, an oversize payload).
    TooLarge,
}

pub(crate) fn need(buf_len: usize, need: usize) -> Result<(), CodecError> {
    if buf_len < need {
        Err(CodecError::Short {
            need,
            have: buf_len,
        })
    } else {
        Ok(())
    }
}

pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
pub(crate) fn get_u64(b: &[u8], at: usize) -> u64 {
    get_u32(b, at) as u64 | (get_u32(b, at + 4) as u64) << 32
}
pub(crate) fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
