//! The services: HTTP, ICMP echo, a checked TCP byte stream.

use crate::{FrameIo, Stack};
use alloc::vec;
use alloc::vec::Vec;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{icmp, tcp};
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, IpAddress, IpEndpoint, Ipv4Address};

fn tcp_socket(rx: usize, tx: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; rx]),
        tcp::SocketBuffer::new(vec![0; tx]),
    )
}

/// A tiny HTTP server: each connection's request (read up to the blank
/// line, at most 2 KiB) is answered with `200 OK` and the body (or `400`
/// for anything but a `GET`), then the connection is closed and its socket
/// listens again. [`HTTP_SOCKETS`] sockets listen at once, so a new
/// connection is accepted while an old one is still closing.
pub struct HttpServer {
    conns: Vec<Conn>,
    port: u16,
    body: Vec<u8>,
    /// Requests answered.
    pub served: u32,
    /// Requests refused (not a GET, or too long).
    pub refused: u32,
}

struct Conn {
    handle: SocketHandle,
    request: Vec<u8>,
    answered: bool,
}

/// Listening sockets of an [`HttpServer`].
pub const HTTP_SOCKETS: usize = 4;
/// Bytes of a request head kept at most.
const MAX_REQUEST: usize = 2048;

impl HttpServer {
    /// Listens on `port` of `stack`, answering with `body`.
    pub fn new<F: FrameIo>(stack: &mut Stack<F>, port: u16, body: &[u8]) -> Self {
        let conns = (0..HTTP_SOCKETS)
            .map(|_| {
                let mut s = tcp_socket(4096, 4096);
                let _ = s.listen(port);
                Conn {
                    handle: stack.sockets.add(s),
                    request: Vec::new(),
                    answered: false,
                }
            })
            .collect();
        HttpServer {
            conns,
            port,
            body: body.to_vec(),
            served: 0,
            refused: 0,
        }
    }

    /// Advances the connections (call after each [`Stack::poll`]).
    pub fn poll<F: FrameIo>(&mut self, stack: &mut Stack<F>) {
        for c in &mut self.conns {
            let s = stack.sockets.get_mut::<tcp::Socket>(c.handle);
            if let Some(ok) = Self::serve(c, s, self.port, &self.body) {
                if ok {
                    self.served += 1;
                } else {
                    self.refused += 1;
                }
            }
        }
    }

    fn serve(c: &mut Conn, s: &mut tcp::Socket, port: u16, body: &[u8]) -> Option<bool> {
        if !s.is_open() {
            // Closed (after a response, or reset by the peer): listen again.
            c.request.clear();
            c.answered = false;
            let _ = s.listen(port);
            return None;
        }
        if c.answered {
            return None;
        }
        while s.can_recv() && c.request.len() < MAX_REQUEST {
            let room = MAX_REQUEST - c.request.len();
            match s.recv(|b| {
                let n = b.len().min(room);
                (n, b[..n].to_vec())
            }) {
                Ok(d) => c.request.extend_from_slice(&d),
                Err(_) => break,
            }
        }
        let complete = c.request.windows(4).any(|w| w == b"\r\n\r\n");
        // Answer a complete (or oversized) request, or a peer that closed
        // its side without finishing one; wait otherwise.
        let peer_done = s.state() == tcp::State::CloseWait;
        if !s.may_send() || (!complete && c.request.len() < MAX_REQUEST && !peer_done) {
            return None;
        }
        let ok = complete && c.request.starts_with(b"GET ");
        let (status, body): (&[u8], &[u8]) = if ok {
            (b"200 OK", body)
        } else {
            (b"400 Bad Request", b"bad request\n")
        };
        let mut resp = Vec::new();
        resp.extend_from_slice(b"HTTP/1.0 ");
        resp.extend_from_slice(status);
        resp.extend_from_slice(
            b"\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ",
        );
        resp.extend_from_slice(alloc::format!("{}", body.len()).as_bytes());
        resp.extend_from_slice(b"\r\n\r\n");
        resp.extend_from_slice(body);
        if s.send_capacity() - s.send_queue() < resp.len() {
            return None; // sent in one piece (bodies are small)
        }
        let _ = s.send_slice(&resp);
        s.close();
        c.answered = true;
        Some(ok)
    }
}

/// ICMP echo requests to one peer: `count` requests with a checked
/// payload, one outstanding at a time.
pub struct Pinger {
    handle: SocketHandle,
    target: Ipv4Address,
    ident: u16,
    next_seq: u16,
    count: u16,
    sent_at: Option<i64>,
    /// Checked replies.
    pub replies: u16,
    /// Requests that got no reply in time.
    pub lost: u16,
}

fn payload(seq: u16) -> [u8; 32] {
    core::array::from_fn(|i| (i as u16).wrapping_mul(7).wrapping_add(seq) as u8)
}

impl Pinger {
    /// Prepares `count` pings of `target`.
    pub fn new<F: FrameIo>(stack: &mut Stack<F>, target: [u8; 4], count: u16) -> Self {
        let mut s = icmp::Socket::new(
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 4], vec![0; 1024]),
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 4], vec![0; 1024]),
        );
        let ident = 0x7076;
        let _ = s.bind(icmp::Endpoint::Ident(ident));
        let handle = stack.sockets.add(s);
        let [a, b, c, d] = target;
        Pinger {
            handle,
            target: Ipv4Address::new(a, b, c, d),
            ident,
            next_seq: 0,
            count,
            sent_at: None,
            replies: 0,
            lost: 0,
        }
    }

    /// Whether every ping has been answered or given up on.
    pub fn done(&self) -> bool {
        self.replies + self.lost >= self.count
    }

    /// Sends the next request when due, checks replies; a request is
    /// given up after `timeout_ms`.
    pub fn poll<F: FrameIo>(&mut self, stack: &mut Stack<F>, now_ms: i64, timeout_ms: i64) {
        let s = stack.sockets.get_mut::<icmp::Socket>(self.handle);
        while let Ok((data, _from)) = s.recv() {
            let Ok(pkt) = Icmpv4Packet::new_checked(data) else {
                continue;
            };
            let Ok(Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            }) = Icmpv4Repr::parse(&pkt, &Default::default())
            else {
                continue;
            };
            if ident == self.ident
                && self.sent_at.is_some()
                && seq_no == self.next_seq.wrapping_sub(1)
                && data == payload(seq_no)
            {
                self.replies += 1;
                self.sent_at = None;
            }
        }
        if let Some(t) = self.sent_at {
            if now_ms - t > timeout_ms {
                self.lost += 1;
                self.sent_at = None;
            }
        }
        if self.sent_at.is_none() && self.next_seq < self.count && !self.done() && s.can_send() {
            let data = payload(self.next_seq);
            let repr = Icmpv4Repr::EchoRequest {
                ident: self.ident,
                seq_no: self.next_seq,
                data: &data,
            };
            if let Ok(buf) = s.send(repr.buffer_len(), IpAddress::Ipv4(self.target)) {
                let mut pkt = Icmpv4Packet::new_unchecked(buf);
                repr.emit(&mut pkt, &Default::default());
                self.sent_at = Some(now_ms);
                self.next_seq += 1;
            }
        }
    }
}

/// The byte of the checked stream at `offset`.
pub fn pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(31) ^ (offset >> 8)) as u8
}

/// Sends `total` bytes of [`pattern`] over TCP to a [`Sink`], then closes.
pub struct Blaster {
    handle: SocketHandle,
    /// Bytes handed to TCP.
    pub sent: u64,
    total: u64,
}

impl Blaster {
    /// Connects to `to:port`.
    pub fn new<F: FrameIo>(stack: &mut Stack<F>, to: [u8; 4], port: u16, total: u64) -> Self {
        let mut s = tcp_socket(1024, 32 * 1024);
        let [a, b, c, d] = to;
        let remote = IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::new(a, b, c, d)), port);
        let _ = s.connect(stack.iface.context(), remote, 49152);
        let handle = stack.sockets.add(s);
        Blaster {
            handle,
            sent: 0,
            total,
        }
    }

    /// Queues more of the stream; true once all is sent and acknowledged.
    pub fn poll<F: FrameIo>(&mut self, stack: &mut Stack<F>) -> bool {
        let s = stack.sockets.get_mut::<tcp::Socket>(self.handle);
        if s.may_send() && self.sent < self.total {
            let start = self.sent;
            let left = self.total - self.sent;
            if let Ok(n) = s.send(|b| {
                let n = (b.len() as u64).min(left) as usize;
                b[..n]
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, x)| *x = pattern(start + i as u64));
                (n, n)
            }) {
                self.sent += n as u64;
            }
            if self.sent == self.total {
                s.close();
            }
        }
        self.sent == self.total && s.send_queue() == 0
    }
}

/// Receives a [`Blaster`]'s stream on `port`, checking every byte.
pub struct Sink {
    handle: SocketHandle,
    /// Bytes received in order and matching the pattern.
    pub received: u64,
    /// Whether a byte did not match.
    pub corrupt: bool,
    /// Whether the sender closed the stream.
    pub finished: bool,
}

impl Sink {
    /// Listens on `port`.
    pub fn new<F: FrameIo>(stack: &mut Stack<F>, port: u16) -> Self {
        let mut s = tcp_socket(32 * 1024, 1024);
        let _ = s.listen(port);
        Sink {
            handle: stack.sockets.add(s),
            received: 0,
            corrupt: false,
            finished: false,
        }
    }

    /// Consumes what arrived.
    pub fn poll<F: FrameIo>(&mut self, stack: &mut Stack<F>) {
        let s = stack.sockets.get_mut::<tcp::Socket>(self.handle);
        while s.can_recv() {
            let start = self.received;
            let Ok((n, ok)) = s.recv(|b| {
                let ok = b
                    .iter()
                    .enumerate()
                    .all(|(i, x)| *x == pattern(start + i as u64));
                (b.len(), (b.len(), ok))
            }) else {
                break;
            };
            self.received += n as u64;
            self.corrupt |= !ok;
        }
        if self.received > 0 && !s.may_recv() {
            self.finished = true;
            s.close();
        }
    }
}

/// A one-shot HTTP/1.0 `GET /` client: connects, sends the request, reads
/// until the server closes, then parses the status line and body.
pub struct HttpGet {
    handle: SocketHandle,
    sent: bool,
    response: Vec<u8>,
    /// Whether the exchange ended (closed by the server, or reset).
    pub done: bool,
}

/// Bytes of a response kept at most.
const MAX_RESPONSE: usize = 16 * 1024;

impl HttpGet {
    /// Connects to `to:port` from `local_port`.
    pub fn new<F: FrameIo>(stack: &mut Stack<F>, to: [u8; 4], port: u16, local_port: u16) -> Self {
        let mut s = tcp_socket(4096, 1024);
        let [a, b, c, d] = to;
        let remote = IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::new(a, b, c, d)), port);
        let _ = s.connect(stack.iface.context(), remote, local_port);
        HttpGet {
            handle: stack.sockets.add(s),
            sent: false,
            response: Vec::new(),
            done: false,
        }
    }

    /// Advances the exchange; true once it has ended.
    pub fn poll<F: FrameIo>(&mut self, stack: &mut Stack<F>) -> bool {
        let s = stack.sockets.get_mut::<tcp::Socket>(self.handle);
        if !self.sent && s.may_send() {
            let _ = s.send_slice(b"GET / HTTP/1.0\r\n\r\n");
            self.sent = true;
        }
        while s.can_recv() {
            let room = MAX_RESPONSE.saturating_sub(self.response.len());
            match s.recv(|b| (b.len(), b[..b.len().min(room)].to_vec())) {
                Ok(d) => self.response.extend_from_slice(&d),
                Err(_) => break,
            }
        }
        if self.sent && !s.may_recv() && !self.done {
            s.close();
            self.done = true;
        }
        if !s.is_open() && (self.sent || !self.response.is_empty()) {
            self.done = true;
        }
        self.done
    }

    /// The status code and body, once done (None: no valid response).
    pub fn result(&self) -> Option<(u16, &[u8])> {
        parse_response(&self.response)
    }
}

/// Splits an HTTP/1.x response into its status code and body.
pub fn parse_response(r: &[u8]) -> Option<(u16, &[u8])> {
    let head_end = r.windows(4).position(|w| w == b"\r\n\r\n")?;
    let line = r.split(|&b| b == b'\r').next()?;
    let line = core::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?.parse().ok()?;
    Some((code, &r[head_end + 4..]))
}
