//! `hvm_op` (hypercall [`nr::HVM_OP`], 34): parameters a domain reads
//! about itself, as Xen's `HVMOP_get_param`. Here it names the current
//! driver domain (the device store's and back ends' domain), so that a
//! front end can find a driver domain created after it booted, or after
//! the one it used died.
//!
//! | register | value |
//! |---|---|
//! | `x16` | [`nr::HVM_OP`] (34) |
//! | `x0`  | [`HVMOP_GET_PARAM`] (1) or [`HVMOP_SET_PARAM`] (0) |
//! | `x1`  | guest virtual address of an [`HvmParam`], read and (get) written back |
//!
//! The numbers and the 16-byte struct are Xen's (`xen/include/public/hvm/
//! hvm_op.h`, `params.h`). The only parameter this monitor knows is its
//! own [`HVM_PARAM_DRIVER_DOMAIN`], numbered above Xen's range (Xen's
//! `HVM_NR_PARAMS` is 41).
//!
//! | answer | when |
//! |---|---|
//! | 0, `value` written | get of [`HVM_PARAM_DRIVER_DOMAIN`] for [`DOMID_SELF`] or the caller's own id |
//! | `-EINVAL` | any other `index` |
//! | `-EPERM` | `domid` names another domain; any [`HVMOP_SET_PARAM`] (guests set nothing) |
//! | `-EFAULT` | the struct is not readable and writable guest memory |
//! | `-ENOSYS` | another sub-operation |
//!
//! # Finding the driver domain again
//!
//! [`HVM_PARAM_DRIVER_DOMAIN`]'s value is a [`DriverDomain`]: the driver
//! domain's id (bits 0..16, [`DOMID_INVALID`] while there is none) and
//! its *generation* (bits 32..64), the number of driver domains created
//! since boot, so that a new driver domain is told from the old one even
//! if it were given the same id. Whenever a driver domain is created or
//! ends, the monitor raises [`VIRQ_DOM_EXC`] (3, Xen's "a domain changed
//! state") for every domain that bound it (any domain may, here), so a
//! front end waiting for a new back end sleeps until then instead of
//! polling. A front end whose back end died (its ports turned unbound, see
//! [`crate::event_channel`]) waits for a value with a new generation and a
//! valid id, then connects to that domain from scratch (grants, ports,
//! store handshake: `crate::io`).
//!
//! Domain ids are given out in increasing order, wrapping (as Xen's), so a
//! new domain does not at once reuse the id of one just destroyed.
//!
//! ```
//! use hypercall_abi::hvm::*;
//! let d = DriverDomain { domid: Some(3), generation: 2 };
//! assert_eq!(d.encode(), 2 << 32 | 3);
//! assert_eq!(DriverDomain::decode(d.encode()), Some(d));
//! let none = DriverDomain { domid: None, generation: 2 };
//! assert_eq!(none.encode() & 0xffff, 0x7ff4);
//! // Reserved bits set: not a value this monitor writes.
//! assert_eq!(DriverDomain::decode(1 << 20 | 3), None);
//! ```
//!
//! [`VIRQ_DOM_EXC`]: crate::event_channel::VIRQ_DOM_EXC
//! [`DOMID_SELF`]: crate::event_channel::DOMID_SELF
//! [`DOMID_INVALID`]: crate::event_channel::DOMID_INVALID

use crate::event_channel::{DomId, DOMID_FIRST_RESERVED, DOMID_INVALID};
#[allow(unused_imports)] // used by intra-doc links
use crate::nr;
use core::mem::size_of;

/// `HVMOP_set_param`.
pub const HVMOP_SET_PARAM: u64 = 0;
/// `HVMOP_get_param`.
pub const HVMOP_GET_PARAM: u64 = 1;

/// Xen's `HVM_PARAM_STORE_PFN` (not provided here: the guest grants its
/// own store page, see `crate::io`).
pub const HVM_PARAM_STORE_PFN: u32 = 1;
/// Xen's `HVM_PARAM_STORE_EVTCHN` (not provided here).
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// This ABI's own: the current driver domain, a [`DriverDomain`].
pub const HVM_PARAM_DRIVER_DOMAIN: u32 = 0x100;

/// `struct xen_hvm_param` (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct HvmParam {
    /// In: `DOMID_SELF` or the caller's own id.
    pub domid: DomId,
    /// Padding (ignored).
    pub pad: u16,
    /// In: `HVM_PARAM_*`.
    pub index: u32,
    /// Out (get): the value.
    pub value: u64,
}

const _: () = assert!(size_of::<HvmParam>() == 16);

impl HvmParam {
    /// The struct as the monitor reads it (little-endian).
    pub fn from_bytes(b: &[u8; 16]) -> Self {
        HvmParam {
            domid: u16::from_le_bytes([b[0], b[1]]),
            pad: u16::from_le_bytes([b[2], b[3]]),
            index: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            value: u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
        }
    }

    /// The struct's bytes.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..2].copy_from_slice(&self.domid.to_le_bytes());
        b[2..4].copy_from_slice(&self.pad.to_le_bytes());
        b[4..8].copy_from_slice(&self.index.to_le_bytes());
        b[8..16].copy_from_slice(&self.value.to_le_bytes());
        b
    }
}

/// The value of [`HVM_PARAM_DRIVER_DOMAIN`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverDomain {
    /// The driver domain, if one lives.
    pub domid: Option<DomId>,
    /// Driver domains created since boot (the first is 1).
    pub generation: u32,
}

impl DriverDomain {
    /// Bits 0..16 the id ([`DOMID_INVALID`] for none), 32..64 the
    /// generation, the rest 0.
    pub fn encode(&self) -> u64 {
        u64::from(self.domid.unwrap_or(DOMID_INVALID)) | u64::from(self.generation) << 32
    }

    /// Decodes a value; `None` if reserved bits are set or the id is a
    /// reserved one other than [`DOMID_INVALID`].
    pub fn decode(v: u64) -> Option<Self> {
        if v & 0xffff_0000 != 0 {
            return None;
        }
        let id = v as u16;
        let domid = match id {
            DOMID_INVALID => None,
            id if id >= DOMID_FIRST_RESERVED => return None,
            id => Some(id),
        };
        Some(DriverDomain {
            domid,
            generation: (v >> 32) as u32,
        })
    }
}
