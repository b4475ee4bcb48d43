//! One vif's data path in the back end, over a [`GrantAccess`]: tx
//! requests become frames (copied out of the front end's granted pages),
//! received frames are copied into the pages the front end posted, and
//! frames waiting for a vif sit in a bounded queue.
//!
//! Everything the front end wrote is checked first ([`TxChain`]); a grant
//! the front end never gave (or gave read-only where the back end must
//! write) fails the copy, and the request gets `NETIF_RSP_ERROR` like any
//! malformed one. Nothing here panics on what a front end sends.
//!
//! ```
//! use pvdev::blkback::MemGrants;
//! use pvdev::netback::vif::VifTx;
//! use hypercall_abi::io::netif::*;
//! let mut g = MemGrants::default();
//! let mut page = [0u8; 4096];
//! page[..6].copy_from_slice(&[0xff; 6]);
//! g.grant(9, page);
//! let mut tx = VifTx::new();
//! let out = tx.push(&NetifTxRequest { gref: 9, offset: 0, flags: 0, id: 1, size: 60 }, &mut g).unwrap();
//! assert_eq!(out.responses, [NetifTxResponse { id: 1, status: NETIF_RSP_OKAY }]);
//! assert_eq!(out.frame.unwrap().len(), 60);
//! // A reference it never granted: an error response, no frame.
//! let out = tx.push(&NetifTxRequest { gref: 77, offset: 0, flags: 0, id: 2, size: 60 }, &mut g).unwrap();
//! assert_eq!((out.responses[0].status, out.frame), (NETIF_RSP_ERROR, None));
//! ```

use super::{TxChain, TxError, ETH_HEADER};
use crate::blkback::{GrantAccess, GrantError};
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use hypercall_abi::io::netif::*;

/// Why a tx packet was answered with errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VifError {
    /// The requests were malformed.
    Request(TxError),
    /// A grant could not be read (never granted, revoked, wrong domain).
    Grant(GrantError),
}

/// What one completed tx packet gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxOutcome {
    /// One response per request of the packet, in order.
    pub responses: Vec<NetifTxResponse>,
    /// The frame, when every check and copy succeeded.
    pub frame: Option<Vec<u8>>,
    /// Why not, otherwise.
    pub error: Option<VifError>,
}

/// The tx side of a vif.
#[derive(Default)]
pub struct VifTx {
    chain: TxChain,
    /// Packets forwarded.
    pub packets: u64,
    /// Packets refused.
    pub errors: u64,
}

impl VifTx {
    /// No packet in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next tx request off the ring; when it ends a packet,
    /// copies the packet out of the granted pages and returns the
    /// responses (and the frame).
    pub fn push(
        &mut self,
        req: &NetifTxRequest,
        grants: &mut impl GrantAccess,
    ) -> Option<TxOutcome> {
        let packet = self.chain.push(req)?;
        let copied = match packet.result {
            Err(e) => Err(VifError::Request(e)),
            Ok(frags) => {
                let total: usize = frags.iter().map(|f| f.len as usize).sum();
                let mut frame = vec![0u8; total];
                let mut at = 0;
                let mut r = Ok(());
                for f in &frags {
                    let n = f.len as usize;
                    if let Err(e) = grants.read(f.gref, f.offset as usize, &mut frame[at..at + n]) {
                        r = Err(VifError::Grant(e));
                        break;
                    }
                    at += n;
                }
                r.map(|_| frame)
            }
        };
        let status = if copied.is_ok() {
            NETIF_RSP_OKAY
        } else {
            NETIF_RSP_ERROR
        };
        let responses = packet
            .ids
            .iter()
            .map(|&id| NetifTxResponse { id, status })
            .collect();
        match copied {
            Ok(frame) => {
                self.packets += 1;
                Some(TxOutcome {
                    responses,
                    frame: Some(frame),
                    error: None,
                })
            }
            Err(e) => {
                self.errors += 1;
                Some(TxOutcome {
                    responses,
                    frame: None,
                    error: Some(e),
                })
            }
        }
    }
}

/// Copies `frame` into the page the front end posted with `req` and
/// returns the response: the length, or `NETIF_RSP_ERROR` when the frame
/// cannot be delivered (bad length, or a grant the back end cannot write).
pub fn deliver(
    req: &NetifRxRequest,
    frame: &[u8],
    grants: &mut impl GrantAccess,
) -> NetifRxResponse {
    let len = frame.len();
    let ok =
        (ETH_HEADER..=ETH_FRAME_MAX).contains(&len) && grants.write(req.gref, 0, frame).is_ok();
    NetifRxResponse {
        id: req.id,
        offset: 0,
        flags: 0,
        status: if ok { len as i16 } else { NETIF_RSP_ERROR },
    }
}

/// Frames waiting for a vif to post receive pages; the oldest is dropped
/// (and counted) when the queue is full, so a front end that never posts
/// pages costs a bounded amount of the back end's memory.
pub struct RxQueue {
    frames: VecDeque<Vec<u8>>,
    capacity: usize,
    /// Frames dropped for lack of room.
    pub dropped: u64,
}

impl RxQueue {
    /// At most `capacity` (at least 1) frames.
    pub fn new(capacity: usize) -> Self {
        RxQueue {
            frames: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
        }
    }
    /// Queues a frame.
    pub fn push(&mut self, f: Vec<u8>) {
        if self.frames.len() == self.capacity {
            self.frames.pop_front();
            self.dropped += 1;
        }
        self.frames.push_back(f);
    }
    /// The oldest frame.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        self.frames.pop_front()
    }
    /// Frames queued.
    pub fn len(&self) -> usize {
        self.frames.len()
    }
    /// Whether none is queued.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blkback::MemGrants;
    use proptest::prelude::*;

    fn req(gref: u32, offset: u16, size: u16, id: u16, more: bool) -> NetifTxRequest {
        NetifTxRequest {
            gref,
            offset,
            flags: if more { NETTXF_MORE_DATA } else { 0 },
            id,
            size,
        }
    }

    fn grants() -> MemGrants {
        let mut g = MemGrants::default();
        for r in 1..4u32 {
            let mut p = [0u8; 4096];
            p.iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = (i as u32 * r) as u8);
            g.grant(r, p);
        }
        g.grant_readonly(5, [0; 4096]);
        g
    }

    #[test]
    fn multi_fragment_packet_is_assembled_in_order() {
        let mut g = grants();
        let mut tx = VifTx::new();
        assert_eq!(tx.push(&req(1, 100, 300, 7, true), &mut g), None);
        let out = tx.push(&req(2, 4000, 96, 8, false), &mut g).unwrap();
        let f = out.frame.unwrap();
        assert_eq!(f.len(), 300);
        assert_eq!(&f[..204], &g.page(1).unwrap()[100..304]);
        assert_eq!(&f[204..], &g.page(2).unwrap()[4000..4096]);
        assert!(out.responses.iter().all(|r| r.status == NETIF_RSP_OKAY));
        assert_eq!(
            out.responses.iter().map(|r| r.id).collect::<Vec<_>>(),
            [7, 8]
        );
    }

    #[test]
    fn bad_requests_get_errors_and_the_vif_keeps_working() {
        let mut g = grants();
        let mut tx = VifTx::new();
        let cases = [
            (
                req(1, 4090, 60, 1, false),
                VifError::Request(TxError::CrossesPage),
            ),
            (
                req(1, 0, 9000, 2, false),
                VifError::Request(TxError::BadSize),
            ),
            (req(1, 0, 4, 3, false), VifError::Request(TxError::BadSize)),
            (
                req(99, 0, 60, 4, false),
                VifError::Grant(GrantError { gref: 99 }),
            ),
        ];
        for (r, e) in cases {
            let out = tx.push(&r, &mut g).unwrap();
            assert_eq!((out.frame, out.error), (None, Some(e)));
            assert_eq!(
                out.responses,
                [NetifTxResponse {
                    id: r.id,
                    status: NETIF_RSP_ERROR
                }]
            );
        }
        // A chain whose second fragment uses a foreign grant: every slot errs.
        assert_eq!(tx.push(&req(1, 0, 100, 10, true), &mut g), None);
        let out = tx.push(&req(42, 0, 40, 11, false), &mut g).unwrap();
        assert_eq!(
            out.responses
                .iter()
                .map(|r| (r.id, r.status))
                .collect::<Vec<_>>(),
            [(10, NETIF_RSP_ERROR), (11, NETIF_RSP_ERROR)]
        );
        let ok = tx.push(&req(3, 0, 60, 12, false), &mut g).unwrap();
        assert!(ok.frame.is_some());
        assert_eq!((tx.packets, tx.errors), (1, 5));
    }

    #[test]
    fn rx_delivery() {
        let mut g = grants();
        let frame = [0xabu8; 100];
        assert_eq!(
            deliver(&NetifRxRequest { id: 3, gref: 2 }, &frame, &mut g).status,
            100
        );
        assert_eq!(&g.page(2).unwrap()[..100], &frame);
        assert_eq!(
            deliver(&NetifRxRequest { id: 4, gref: 5 }, &frame, &mut g).status,
            NETIF_RSP_ERROR,
            "read-only grant"
        );
        assert_eq!(
            deliver(&NetifRxRequest { id: 5, gref: 66 }, &frame, &mut g).status,
            NETIF_RSP_ERROR,
            "never granted"
        );
        assert_eq!(
            deliver(&NetifRxRequest { id: 6, gref: 2 }, &[0; 10], &mut g).status,
            NETIF_RSP_ERROR
        );
        let mut q = RxQueue::new(2);
        (0..5u8).for_each(|i| q.push(vec![i]));
        assert_eq!((q.len(), q.dropped, q.pop()), (2, 3, Some(vec![3])));
    }

    proptest! {
        /// Whatever a front end puts on its tx ring: every request gets
        /// exactly one response with its id, and a frame comes out only
        /// when all its responses are OKAY.
        #[test]
        fn every_request_answered_once(reqs in proptest::collection::vec((0u32..8, any::<u16>(), any::<u16>(), any::<u16>(), any::<bool>()), 1..80)) {
            let mut g = grants();
            let mut tx = VifTx::new();
            let mut ids = Vec::new();
            let mut answered = Vec::new();
            for (i, (gref, offset, flags, size, more)) in reqs.iter().enumerate() {
                let flags = (flags & NETTXF_EXTRA_INFO) | if *more { NETTXF_MORE_DATA } else { 0 };
                ids.push(i as u16);
                let r = NetifTxRequest { gref: *gref, offset: *offset, flags, id: i as u16, size: *size };
                if let Some(out) = tx.push(&r, &mut g) {
                    let ok = out.responses.iter().all(|r| r.status == NETIF_RSP_OKAY);
                    prop_assert_eq!(ok, out.frame.is_some());
                    if let Some(f) = &out.frame { prop_assert!((ETH_HEADER..=ETH_FRAME_MAX).contains(&f.len())); }
                    answered.extend(out.responses.iter().map(|r| r.id));
                }
            }
            prop_assert_eq!(&answered[..], &ids[..answered.len()]);
        }
    }
}
