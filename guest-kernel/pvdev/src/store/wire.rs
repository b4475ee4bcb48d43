//! The store protocol over a byte stream (the store ring): message
//! framing ([`MessageReader`], [`encode_message`]), the server's handling
//! of each request type ([`handle`]), a per-domain [`Connection`] that
//! turns request bytes into reply and watch-event bytes, and
//! [`serve_ring`], which pumps a domain's store page.
//!
//! Requests and their payloads (`\0` is a NUL; `tx` is the header's
//! `tx_id`):
//!
//! | type | payload | reply payload |
//! |---|---|---|
//! | `XS_READ` (tx) | `path\0` | the value |
//! | `XS_WRITE` (tx) | `path\0value` | `OK\0` |
//! | `XS_MKDIR`, `XS_RM` (tx) | `path\0` | `OK\0` |
//! | `XS_DIRECTORY` (tx) | `path\0` | `name\0name\0...` |
//! | `XS_GET_PERMS` (tx) | `path\0` | `b0\0r1\0...` |
//! | `XS_SET_PERMS` (tx) | `path\0perm\0perm\0...` | `OK\0` |
//! | `XS_WATCH`, `XS_UNWATCH` | `path\0token\0` | `OK\0` |
//! | `XS_RESET_WATCHES` | (empty) | `OK\0` |
//! | `XS_TRANSACTION_START` | `\0` | `id\0` (decimal) |
//! | `XS_TRANSACTION_END` (tx) | `T\0` commit, `F\0` abort | `OK\0`, or `EAGAIN` |
//! | `XS_GET_DOMAIN_PATH` | `domid\0` | `/local/domain/<domid>\0` |
//! | `XS_INTRODUCE` (privileged) | `domid\0mfn\0port\0` | `OK\0` |
//! | `XS_RELEASE` (privileged) | `domid\0` | `OK\0` |
//! | `XS_IS_DOMAIN_INTRODUCED` | `domid\0` | `T\0` or `F\0` |
//!
//! A failure is an `XS_ERROR` reply whose payload is the error name and a
//! NUL (`EINVAL\0`), echoing `req_id` and `tx_id`. Malformed payloads,
//! unknown types and messages a client may not send (`XS_WATCH_EVENT`,
//! `XS_ERROR`) get `EINVAL`; unsupported ones `ENOSYS`. A header whose
//! `len` exceeds `XENSTORE_PAYLOAD_MAX` cannot be framed: it gets `E2BIG`
//! and the connection's buffered input is dropped (the stream restarts at
//! the next byte the domain writes).
//!
//! ```
//! use pvdev::store::{Store, Limits, wire::*};
//! use hypercall_abi::io::xs_wire::*;
//! let mut store = Store::new(Limits::default());
//! store.introduce(1).unwrap();
//! let mut conn = Connection::new();
//! conn.feed(&encode_message(XS_WRITE, 5, 0, &[b"name\0", b"guest"]).unwrap());
//! conn.feed(&encode_message(XS_READ, 6, 0, &[b"name\0"]).unwrap());
//! let out = conn.process(&mut store, 1);
//! let mut r = MessageReader::new();
//! r.feed(&out);
//! let (h, p) = r.next_message().unwrap().unwrap();
//! assert_eq!((h.kind, h.req_id, p.as_slice()), (XS_WRITE, 5, &b"OK\0"[..]));
//! let (h, p) = r.next_message().unwrap().unwrap();
//! assert_eq!((h.req_id, p.as_slice()), (6, &b"guest"[..]));
//! ```

use super::{Perm, Store, XsError};
use crate::DomId;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use hypercall_abi::io::byte_ring::ByteRingError;
use hypercall_abi::io::xs_wire::*;

/// Builds one message: header and the concatenated `parts`. Refuses
/// (`E2BIG`) a payload over `XENSTORE_PAYLOAD_MAX`.
pub fn encode_message(
    kind: u32,
    req_id: u32,
    tx_id: u32,
    parts: &[&[u8]],
) -> Result<Vec<u8>, XsError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len > XENSTORE_PAYLOAD_MAX {
        return Err(XsError::E2BIG);
    }
    let mut out = alloc::vec![0u8; XSD_SOCKMSG_BYTES];
    XsdSockmsg {
        kind,
        req_id,
        tx_id,
        len: len as u32,
    }
    .encode(&mut out)
    .map_err(|_| XsError::EINVAL)?;
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(out)
}

/// A framing error: the header announces a payload over the maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Oversize {
    /// The offending header.
    pub header: XsdSockmsg,
}

/// Splits a byte stream into messages.
#[derive(Default)]
pub struct MessageReader {
    buf: Vec<u8>,
}

impl MessageReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends bytes from the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
    /// Bytes buffered.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
    /// Drops everything buffered.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
    /// The next complete message, `Ok(None)` if more bytes are needed, or
    /// the oversize header (the caller decides how to resynchronise).
    pub fn next_message(&mut self) -> Result<Option<(XsdSockmsg, Vec<u8>)>, Oversize> {
        let Ok(h) = XsdSockmsg::decode(&self.buf) else {
            return Ok(None);
        };
        if h.len as usize > XENSTORE_PAYLOAD_MAX {
            return Err(Oversize { header: h });
        }
        let total = XSD_SOCKMSG_BYTES + h.len as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        let payload = self.buf[XSD_SOCKMSG_BYTES..total].to_vec();
        self.buf.drain(..total);
        Ok(Some((h, payload)))
    }
}

/// Splits a payload into its NUL-terminated strings: exactly `n` of them,
/// the last terminator optional when `last_optional`; UTF-8 only.
fn strings(p: &[u8], n: usize) -> Result<Vec<&str>, XsError> {
    let body = p.strip_suffix(b"\0").unwrap_or(p);
    let parts: Vec<&[u8]> = body.split(|&b| b == 0).collect();
    if parts.len() != n {
        return Err(XsError::EINVAL);
    }
    parts
        .into_iter()
        .map(|s| core::str::from_utf8(s).map_err(|_| XsError::EINVAL))
        .collect()
}

fn one(p: &[u8]) -> Result<&str, XsError> {
    Ok(strings(p, 1)?[0])
}

fn domid(s: &str) -> Result<DomId, XsError> {
    s.parse().map_err(|_| XsError::EINVAL)
}

fn ok() -> Vec<u8> {
    b"OK\0".to_vec()
}

fn nul_list<I: IntoIterator<Item = String>>(items: I) -> Result<Vec<u8>, XsError> {
    let mut out = Vec::new();
    for s in items {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
        if out.len() > XENSTORE_PAYLOAD_MAX {
            return Err(XsError::E2BIG);
        }
    }
    Ok(out)
}

/// Handles one request of domain `dom`; returns the reply payload (the
/// reply's type is the request's) or the error to send as `XS_ERROR`.
pub fn handle(store: &mut Store, dom: DomId, h: &XsdSockmsg, p: &[u8]) -> Result<Vec<u8>, XsError> {
    let tx = h.tx_id;
    match h.kind {
        XS_READ => store.read(dom, tx, one(p)?),
        XS_WRITE => {
            let at = p.iter().position(|&b| b == 0).ok_or(XsError::EINVAL)?;
            let path = core::str::from_utf8(&p[..at]).map_err(|_| XsError::EINVAL)?;
            store.write(dom, tx, path, &p[at + 1..]).map(|_| ok())
        }
        XS_MKDIR => store.mkdir(dom, tx, one(p)?).map(|_| ok()),
        XS_RM => store.rm(dom, tx, one(p)?).map(|_| ok()),
        XS_DIRECTORY => nul_list(store.directory(dom, tx, one(p)?)?),
        XS_GET_PERMS => nul_list(
            store
                .get_perms(dom, tx, one(p)?)?
                .into_iter()
                .map(Perm::to_text),
        ),
        XS_SET_PERMS => {
            let body = p.strip_suffix(b"\0").unwrap_or(p);
            let mut it = body.split(|&b| b == 0);
            let path =
                core::str::from_utf8(it.next().unwrap_or(b"")).map_err(|_| XsError::EINVAL)?;
            let perms: Option<Vec<Perm>> = it
                .map(|s| core::str::from_utf8(s).ok().and_then(Perm::parse))
                .collect();
            store
                .set_perms(dom, tx, path, &perms.ok_or(XsError::EINVAL)?)
                .map(|_| ok())
        }
        XS_WATCH | XS_UNWATCH => {
            let s = strings(p, 2)?;
            if h.kind == XS_WATCH {
                store.watch(dom, s[0], s[1])
            } else {
                store.unwatch(dom, s[0], s[1])
            }
            .map(|_| ok())
        }
        XS_RESET_WATCHES => {
            store.reset_watches(dom);
            Ok(ok())
        }
        XS_TRANSACTION_START => {
            if !(p.is_empty() || p == b"\0") {
                return Err(XsError::EINVAL);
            }
            if tx != 0 {
                return Err(XsError::EBUSY);
            }
            let id = store.transaction_start(dom)?;
            Ok(alloc::format!("{id}\0").into_bytes())
        }
        XS_TRANSACTION_END => {
            let commit = match one(p)? {
                "T" => true,
                "F" => false,
                _ => return Err(XsError::EINVAL),
            };
            store.transaction_end(dom, tx, commit).map(|_| ok())
        }
        XS_GET_DOMAIN_PATH => {
            Ok(alloc::format!("{}\0", super::path::domain_path(domid(one(p)?)?)).into_bytes())
        }
        XS_IS_DOMAIN_INTRODUCED => {
            let d = domid(one(p)?)?;
            Ok(if store.is_introduced(d) {
                b"T\0".to_vec()
            } else {
                b"F\0".to_vec()
            })
        }
        XS_INTRODUCE | XS_RELEASE => {
            if !store.privileged.contains(&dom) {
                return Err(XsError::EACCES);
            }
            if h.kind == XS_INTRODUCE {
                let s = strings(p, 3)?;
                store.introduce(domid(s[0])?)?;
            } else {
                store.release(domid(one(p)?)?);
            }
            Ok(ok())
        }
        XS_CONTROL | XS_RESUME | XS_SET_TARGET | XS_RESTRICT | XS_DIRECTORY_PART => {
            Err(XsError::ENOSYS)
        }
        _ => Err(XsError::EINVAL),
    }
}

/// One domain's connection to the store: input framing and output queue.
#[derive(Default)]
pub struct Connection {
    reader: MessageReader,
    out: VecDeque<u8>,
    /// Oversize headers seen (input dropped each time).
    pub protocol_errors: u32,
}

/// Output bytes held back before the connection stops reading requests.
pub const OUTPUT_HIGH_WATER: usize = 2 * XENSTORE_PAYLOAD_MAX;

impl Connection {
    /// A fresh connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes the domain wrote to its request ring.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.reader.feed(bytes);
    }

    fn reply(&mut self, kind: u32, h: &XsdSockmsg, payload: &[u8]) {
        // Payloads are bounded by the handlers (E2BIG otherwise).
        if let Ok(m) = encode_message(kind, h.req_id, h.tx_id, &[payload]) {
            self.out.extend(m);
        }
    }

    /// Handles every complete request (while the output queue is below
    /// [`OUTPUT_HIGH_WATER`]) and queues replies, then the domain's watch
    /// events; returns everything queued so far and empties the queue.
    pub fn process(&mut self, store: &mut Store, dom: DomId) -> Vec<u8> {
        self.step(store, dom);
        self.out.drain(..).collect()
    }

    /// Like [`process`](Self::process) but keeps the output queued (for
    /// a ring with limited room: see [`pending_output`](Self::pending_output)).
    pub fn step(&mut self, store: &mut Store, dom: DomId) {
        while self.out.len() < OUTPUT_HIGH_WATER {
            match self.reader.next_message() {
                Ok(Some((h, p))) => match handle(store, dom, &h, &p) {
                    Ok(reply) => self.reply(h.kind, &h, &reply),
                    Err(e) => {
                        let mut name = Vec::from(e.name().as_bytes());
                        name.push(0);
                        self.reply(XS_ERROR, &h, &name);
                    }
                },
                Ok(None) => break,
                Err(Oversize { header }) => {
                    self.protocol_errors += 1;
                    self.reader.clear();
                    self.reply(XS_ERROR, &header, b"E2BIG\0");
                    break;
                }
            }
        }
        for e in store.take_events(dom) {
            let mut p = Vec::with_capacity(e.path.len() + e.token.len() + 2);
            p.extend_from_slice(e.path.as_bytes());
            p.push(0);
            p.extend_from_slice(e.token.as_bytes());
            p.push(0);
            if let Ok(m) = encode_message(XS_WATCH_EVENT, 0, 0, &[&p]) {
                self.out.extend(m);
            }
        }
    }

    /// Output waiting for room in the reply ring.
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// Moves queued output into `write`, which returns how many bytes it
    /// took; stops when it takes none.
    pub fn flush<E>(
        &mut self,
        mut write: impl FnMut(&[u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let mut total = 0;
        while !self.out.is_empty() {
            let (a, _) = self.out.as_slices();
            let n = write(a)?;
            if n == 0 {
                break;
            }
            self.out.drain(..n.min(a.len()));
            total += n;
        }
        Ok(total)
    }
}

/// Serves one domain's store page: reads its requests, handles them,
/// writes what fits of the replies and events. Returns whether anything
/// was written (then notify the domain), or the ring error if the
/// domain corrupted the indices (the caller should stop serving it and
/// set `error`).
pub fn serve_ring(
    conn: &mut Connection,
    store: &mut Store,
    dom: DomId,
    page: &XenstoreDomainInterface,
) -> Result<bool, ByteRingError> {
    let req = page.req_ring();
    let mut buf = [0u8; 256];
    loop {
        let n = req.read(&mut buf)?;
        if n == 0 {
            break;
        }
        conn.feed(&buf[..n]);
        if conn.reader.buffered() > XSD_SOCKMSG_BYTES + XENSTORE_PAYLOAD_MAX {
            break;
        }
    }
    conn.step(store, dom);
    let rsp = page.rsp_ring();
    Ok(conn.flush(|b| rsp.write(b))? > 0)
}
