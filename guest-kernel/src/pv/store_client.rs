//! A store client over the guest's store page: one request at a time,
//! replies matched by `req_id`, watch events queued for [`StoreClient::next_watch`].

use super::wait_event;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use hypercall_abi::evtchn_guest as ev;
use hypercall_abi::io::xenbus::XenbusState;
use hypercall_abi::io::xs_wire::*;
use pvdev::store::wire::{encode_message, MessageReader};

/// Why a store request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The store answered with this error.
    Store(XsError),
    /// The ring indices are corrupt, or the reply is malformed.
    Protocol,
    /// The store's end of the event channel is gone.
    Gone,
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StoreError::Store(e) => f.write_str(e.name()),
            StoreError::Protocol => f.write_str("store protocol error"),
            StoreError::Gone => f.write_str("store gone"),
        }
    }
}

/// The client.
pub struct StoreClient {
    page: &'static XenstoreDomainInterface,
    port: u32,
    next_id: u32,
    reader: MessageReader,
    watches: VecDeque<(String, String)>,
}

impl StoreClient {
    /// A client of the store page `page`, notified on `port`.
    pub fn new(page: &'static XenstoreDomainInterface, port: u32) -> Self {
        StoreClient {
            page,
            port,
            next_id: 1,
            reader: MessageReader::new(),
            watches: VecDeque::new(),
        }
    }

    fn pump(&mut self) -> Result<(), StoreError> {
        let mut buf = [0u8; 256];
        loop {
            let n = self
                .page
                .rsp_ring()
                .read(&mut buf)
                .map_err(|_| StoreError::Protocol)?;
            if n == 0 {
                return Ok(());
            }
            self.reader.feed(&buf[..n]);
        }
    }

    /// Sends a request and waits for its reply payload.
    pub fn request(&mut self, kind: u32, tx: u32, parts: &[&[u8]]) -> Result<Vec<u8>, StoreError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let msg = encode_message(kind, id, tx, parts).map_err(StoreError::Store)?;
        self.exchange(&msg, id)
    }

    /// The store page (for tests that write into it directly).
    pub fn page(&self) -> &'static XenstoreDomainInterface {
        self.page
    }

    /// Sends raw bytes (any, e.g. a malformed message) and waits for the
    /// reply with request id `id`.
    pub fn exchange(&mut self, msg: &[u8], id: u32) -> Result<Vec<u8>, StoreError> {
        let mut sent = 0;
        loop {
            let seen = crate::events::count(self.port);
            if sent < msg.len() {
                sent += self
                    .page
                    .req_ring()
                    .write(&msg[sent..])
                    .map_err(|_| StoreError::Protocol)?;
                let _ = ev::send(self.port);
            }
            self.pump()?;
            while let Some((h, p)) = self
                .reader
                .next_message()
                .map_err(|_| StoreError::Protocol)?
            {
                if h.kind == XS_WATCH_EVENT {
                    let mut it = p.split(|&b| b == 0);
                    let path = String::from_utf8_lossy(it.next().unwrap_or(b"")).into_owned();
                    let token = String::from_utf8_lossy(it.next().unwrap_or(b"")).into_owned();
                    self.watches.push_back((path, token));
                } else if h.req_id == id {
                    if h.kind == XS_ERROR {
                        let name =
                            core::str::from_utf8(p.strip_suffix(b"\0").unwrap_or(&p)).unwrap_or("");
                        return Err(StoreError::Store(
                            XsError::from_name(name).unwrap_or(XsError::EINVAL),
                        ));
                    }
                    return Ok(p);
                }
            }
            if !wait_event(self.port, seen) {
                return Err(StoreError::Gone);
            }
        }
    }

    /// `XS_READ` of `path` as text.
    pub fn read(&mut self, path: &str) -> Result<String, StoreError> {
        let p = self.request(XS_READ, 0, &[path.as_bytes(), b"\0"])?;
        String::from_utf8(p).map_err(|_| StoreError::Protocol)
    }

    /// `XS_WRITE`.
    pub fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError> {
        self.request(XS_WRITE, 0, &[path.as_bytes(), b"\0", value.as_bytes()])
            .map(|_| ())
    }

    /// `XS_WATCH`.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        self.request(
            XS_WATCH,
            0,
            &[path.as_bytes(), b"\0", token.as_bytes(), b"\0"],
        )
        .map(|_| ())
    }

    /// The next watch event `(path, token)`, waiting for one.
    pub fn next_watch(&mut self) -> Result<(String, String), StoreError> {
        loop {
            if let Some(w) = self.watches.pop_front() {
                return Ok(w);
            }
            let seen = crate::events::count(self.port);
            self.pump()?;
            while let Some((h, p)) = self
                .reader
                .next_message()
                .map_err(|_| StoreError::Protocol)?
            {
                if h.kind == XS_WATCH_EVENT {
                    let mut it = p.split(|&b| b == 0);
                    let path = String::from_utf8_lossy(it.next().unwrap_or(b"")).into_owned();
                    let token = String::from_utf8_lossy(it.next().unwrap_or(b"")).into_owned();
                    self.watches.push_back((path, token));
                }
            }
            if self.watches.is_empty() && !wait_event(self.port, seen) {
                return Err(StoreError::Gone);
            }
        }
    }

    /// The `XenbusState` in `dir/state` (`Unknown` if missing or bad).
    pub fn state(&mut self, dir: &str) -> XenbusState {
        let p = alloc::format!("{dir}/state");
        self.read(&p)
            .ok()
            .and_then(|s| XenbusState::parse(&s))
            .unwrap_or(XenbusState::Unknown)
    }

    /// Publishes `state` in `dir/state`.
    pub fn set_state(&mut self, dir: &str, state: XenbusState) -> Result<(), StoreError> {
        let p = alloc::format!("{dir}/state");
        self.write(&p, state.as_str())
    }

    /// Waits (through a watch on `dir/state`) until `ok(state)` holds;
    /// returns that state.
    pub fn wait_state(
        &mut self,
        dir: &str,
        ok: impl Fn(XenbusState) -> bool,
    ) -> Result<XenbusState, StoreError> {
        let p = alloc::format!("{dir}/state");
        let _ = self.watch(&p, "state");
        loop {
            let s = self.state(dir);
            if ok(s) {
                return Ok(s);
            }
            self.next_watch()?;
        }
    }
}
