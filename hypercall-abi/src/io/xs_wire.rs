//! The device-store protocol (Xen's `io/xs_wire.h`): every message is a
//! 16-byte [`XsdSockmsg`] header (`type`, `req_id`, `tx_id`, `len`)
//! followed by `len` bytes of payload, usually NUL-terminated strings
//! (a path; a path and a value; a path and a token). Replies echo `type`,
//! `req_id` and `tx_id`; a failure is an [`XS_ERROR`] reply whose payload
//! is an error name such as `"ENOENT\0"` ([`XsError`]). Watch events are
//! unsolicited [`XS_WATCH_EVENT`] messages: `path\0token\0`.
//!
//! A domain talks to the store through one shared page,
//! [`XenstoreDomainInterface`]: two 1024-byte byte rings (`req`, `rsp`)
//! with free-running indices.
//!
//! ```
//! use hypercall_abi::io::xs_wire::*;
//! let h = XsdSockmsg { kind: XS_READ, req_id: 7, tx_id: 0, len: 13 };
//! let mut b = [0u8; XSD_SOCKMSG_BYTES];
//! h.encode(&mut b).unwrap();
//! assert_eq!(XsdSockmsg::decode(&b), Ok(h));
//! assert_eq!(XsError::from_name("ENOENT"), Some(XsError::ENOENT));
//! assert_eq!(XsError::EACCES.name(), "EACCES");
//! ```

use super::byte_ring::ByteRing;
use super::{get_u32, need, put_u32, CodecError};
use core::sync::atomic::{AtomicU32, AtomicU8};

/// `XS_CONTROL` (formerly `XS_DEBUG`).
pub const XS_CONTROL: u32 = 0;
/// `XS_DIRECTORY`: list a node's children.
pub const XS_DIRECTORY: u32 = 1;
/// `XS_READ`: a node's value.
pub const XS_READ: u32 = 2;
/// `XS_GET_PERMS`: a node's permissions.
pub const XS_GET_PERMS: u32 = 3;
/// `XS_WATCH`: `path\0token\0`.
pub const XS_WATCH: u32 = 4;
/// `XS_UNWATCH`: `path\0token\0`.
pub const XS_UNWATCH: u32 = 5;
/// `XS_TRANSACTION_START`: replies with the new transaction id as text.
pub const XS_TRANSACTION_START: u32 = 6;
/// `XS_TRANSACTION_END`: `"T\0"` commits, `"F\0"` aborts.
pub const XS_TRANSACTION_END: u32 = 7;
/// `XS_INTRODUCE`: the toolstack announces a domain.
pub const XS_INTRODUCE: u32 = 8;
/// `XS_RELEASE`: the toolstack forgets a domain.
pub const XS_RELEASE: u32 = 9;
/// `XS_GET_DOMAIN_PATH`: `/local/domain/<id>`.
pub const XS_GET_DOMAIN_PATH: u32 = 10;
/// `XS_WRITE`: `path\0value` (the value is not NUL-terminated).
pub const XS_WRITE: u32 = 11;
/// `XS_MKDIR`.
pub const XS_MKDIR: u32 = 12;
/// `XS_RM`: remove a node and its subtree.
pub const XS_RM: u32 = 13;
/// `XS_SET_PERMS`: `path\0perm\0perm\0...`.
pub const XS_SET_PERMS: u32 = 14;
/// `XS_WATCH_EVENT`: unsolicited, `path\0token\0`.
pub const XS_WATCH_EVENT: u32 = 15;
/// `XS_ERROR`: the payload is an error name.
pub const XS_ERROR: u32 = 16;
/// `XS_IS_DOMAIN_INTRODUCED`.
pub const XS_IS_DOMAIN_INTRODUCED: u32 = 17;
/// `XS_RESUME`.
pub const XS_RESUME: u32 = 18;
/// `XS_SET_TARGET`.
pub const XS_SET_TARGET: u32 = 19;
/// `XS_RESTRICT` (obsolete).
pub const XS_RESTRICT: u32 = 20;
/// `XS_RESET_WATCHES`: drop all of the caller's watches.
pub const XS_RESET_WATCHES: u32 = 21;
/// `XS_DIRECTORY_PART`.
pub const XS_DIRECTORY_PART: u32 = 22;
/// `XS_INVALID`: never a valid type.
pub const XS_INVALID: u32 = 0xffff;

/// Offset of the path in a watch event's payload (`XS_WATCH_PATH`).
pub const XS_WATCH_PATH: usize = 0;
/// Index of the token in a watch event's payload (`XS_WATCH_TOKEN`).
pub const XS_WATCH_TOKEN: usize = 1;

/// Largest payload of a message (`XENSTORE_PAYLOAD_MAX`).
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// Longest absolute path (`XENSTORE_ABS_PATH_MAX`).
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// Longest relative path (`XENSTORE_REL_PATH_MAX`).
pub const XENSTORE_REL_PATH_MAX: usize = 2048;
/// Bytes of each ring of the store page (`XENSTORE_RING_SIZE`).
pub const XENSTORE_RING_SIZE: usize = 1024;
/// `XENSTORE_SERVER_FEATURE_RECONNECTION`.
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
/// `XENSTORE_SERVER_FEATURE_ERROR`.
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;
/// `XENSTORE_CONNECTED`: the steady state of `connection`.
pub const XENSTORE_CONNECTED: u32 = 0;
/// `XENSTORE_RECONNECT`: the guest asks for a reconnect.
pub const XENSTORE_RECONNECT: u32 = 1;

/// Bytes of the message header.
pub const XSD_SOCKMSG_BYTES: usize = 16;

/// `struct xsd_sockmsg`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XsdSockmsg {
    /// `type`: an `XS_*` value.
    pub kind: u32,
    /// Echoed in the reply.
    pub req_id: u32,
    /// Transaction id, 0 for none.
    pub tx_id: u32,
    /// Payload bytes following the header.
    pub len: u32,
}

impl XsdSockmsg {
    /// Writes the 16-byte header.
    pub fn encode(&self, b: &mut [u8]) -> Result<(), CodecError> {
        need(b.len(), XSD_SOCKMSG_BYTES)?;
        put_u32(b, 0, self.kind);
        put_u32(b, 4, self.req_id);
        put_u32(b, 8, self.tx_id);
        put_u32(b, 12, self.len);
        Ok(())
    }
    /// Reads a header (any values; check `len` against
    /// [`XENSTORE_PAYLOAD_MAX`] before trusting it).
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        need(b.len(), XSD_SOCKMSG_BYTES)?;
        Ok(XsdSockmsg {
            kind: get_u32(b, 0),
            req_id: get_u32(b, 4),
            tx_id: get_u32(b, 8),
            len: get_u32(b, 12),
        })
    }
}

/// The store's error names (`xsd_errors`), sent as `XS_ERROR` payloads.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsError {
    EINVAL,
    EACCES,
    EEXIST,
    EISDIR,
    ENOENT,
    ENOMEM,
    ENOSPC,
    EIO,
    ENOTEMPTY,
    ENOSYS,
    EROFS,
    EBUSY,
    EAGAIN,
    EISCONN,
    E2BIG,
    EPERM,
    EQUOTA,
}

const XS_ERRORS: [(XsError, &str); 17] = [
    (XsError::EINVAL, "EINVAL"),
    (XsError::EACCES, "EACCES"),
    (XsError::EEXIST, "EEXIST"),
    (XsError::EISDIR, "EISDIR"),
    (XsError::ENOENT, "ENOENT"),
    (XsError::ENOMEM, "ENOMEM"),
    (XsError::ENOSPC, "ENOSPC"),
    (XsError::EIO, "EIO"),
    (XsError::ENOTEMPTY, "ENOTEMPTY"),
    (XsError::ENOSYS, "ENOSYS"),
    (XsError::EROFS, "EROFS"),
    (XsError::EBUSY, "EBUSY"),
    (XsError::EAGAIN, "EAGAIN"),
    (XsError::EISCONN, "EISCONN"),
    (XsError::E2BIG, "E2BIG"),
    (XsError::EPERM, "EPERM"),
    (XsError::EQUOTA, "EQUOTA"),
];

impl XsError {
    /// The name sent on the wire (without the NUL).
    pub fn name(self) -> &'static str {
        XS_ERRORS
            .iter()
            .find(|(e, _)| *e == self)
            .map_or("EINVAL", |(_, n)| n)
    }
    /// The error a name stands for.
    pub fn from_name(name: &str) -> Option<XsError> {
        XS_ERRORS.iter().find(|(_, n)| *n == name).map(|(e, _)| *e)
    }
}

/// `struct xenstore_domain_interface`: the store page.
///
/// | field | offset |
/// |---|---|
/// | `req[1024]` | 0 |
/// | `rsp[1024]` | 1024 |
/// | `req_cons`, `req_prod`, `rsp_cons`, `rsp_prod` | 2048..2064 |
/// | `server_features`, `connection`, `error` | 2064, 2068, 2072 |
///
/// The guest produces requests on `req` and consumes replies and watch
/// events on `rsp`; the store does the opposite.
#[repr(C)]
pub struct XenstoreDomainInterface {
    /// Requests to the store.
    pub req: [AtomicU8; XENSTORE_RING_SIZE],
    /// Replies and watch events.
    pub rsp: [AtomicU8; XENSTORE_RING_SIZE],
    /// `req_cons` (store).
    pub req_cons: AtomicU32,
    /// `req_prod` (guest).
    pub req_prod: AtomicU32,
    /// `rsp_cons` (guest).
    pub rsp_cons: AtomicU32,
    /// `rsp_prod` (store).
    pub rsp_prod: AtomicU32,
    /// `XENSTORE_SERVER_FEATURE_*` bits (store).
    pub server_features: AtomicU32,
    /// `XENSTORE_CONNECTED` or `XENSTORE_RECONNECT`.
    pub connection: AtomicU32,
    /// `XENSTORE_ERROR_*`: why the store stopped serving the ring.
    pub error: AtomicU32,
}

/// `XENSTORE_ERROR_NONE`.
pub const XENSTORE_ERROR_NONE: u32 = 0;
/// `XENSTORE_ERROR_COMM`: the ring indices were corrupt.
pub const XENSTORE_ERROR_COMM: u32 = 1;
/// `XENSTORE_ERROR_RINGIDX`: an index out of range.
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
/// `XENSTORE_ERROR_PROTO`: a protocol violation (e.g. payload too big).
pub const XENSTORE_ERROR_PROTO: u32 = 3;

impl XenstoreDomainInterface {
    /// A zeroed page (tests and simulators).
    pub fn new() -> Self {
        XenstoreDomainInterface {
            req: core::array::from_fn(|_| AtomicU8::new(0)),
            rsp: core::array::from_fn(|_| AtomicU8::new(0)),
            req_cons: AtomicU32::new(0),
            req_prod: AtomicU32::new(0),
            rsp_cons: AtomicU32::new(0),
            rsp_prod: AtomicU32::new(0),
            server_features: AtomicU32::new(0),
            connection: AtomicU32::new(0),
            error: AtomicU32::new(0),
        }
    }
    /// The request ring (guest produces, store consumes).
    pub fn req_ring(&self) -> ByteRing<'_> {
        ByteRing::new(&self.req, &self.req_cons, &self.req_prod)
    }
    /// The reply ring (store produces, guest consumes).
    pub fn rsp_ring(&self) -> ByteRing<'_> {
        ByteRing::new(&self.rsp, &self.rsp_cons, &self.rsp_prod)
    }
}

impl Default for XenstoreDomainInterface {
    fn default() -> Self {
        Self::new()
    }
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(XenstoreDomainInterface, req_cons) == 2048);
    assert!(offset_of!(XenstoreDomainInterface, server_features) == 2064);
    assert!(offset_of!(XenstoreDomainInterface, error) == 2072);
    assert!(size_of::<XenstoreDomainInterface>() == 2076);
};
