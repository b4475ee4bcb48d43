//! Two stacks joined by an in-memory wire (with a switch's worth of
//! delay: frames move only when the test polls).

use super::*;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use core::cell::RefCell;
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpEndpoint};

type Wire = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// One end: sends into `out`, receives from `inp`; drops every `drop_every`-th frame sent (0: none).
struct End {
    out: Wire,
    inp: Wire,
    drop_every: u32,
    n: u32,
}

impl FrameIo for End {
    fn send(&mut self, f: &[u8]) -> bool {
        self.n += 1;
        if self.drop_every != 0 && self.n % self.drop_every == 0 {
            return true;
        }
        self.out.borrow_mut().push_back(f.to_vec());
        true
    }
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        let f = self.inp.borrow_mut().pop_front()?;
        buf[..f.len()].copy_from_slice(&f);
        Some(f.len())
    }
}

fn pair(drop_every: u32) -> (Stack<End>, Stack<End>) {
    let (a, b): (Wire, Wire) = Default::default();
    let ea = End {
        out: a.clone(),
        inp: b.clone(),
        drop_every,
        n: 0,
    };
    let eb = End {
        out: b,
        inp: a,
        drop_every,
        n: 0,
    };
    let x = Stack::new(
        ea,
        [2, 0, 0, 0, 0, 1],
        Ipv4Config::parse("10.0.2.15/24").unwrap(),
        0,
    );
    let y = Stack::new(
        eb,
        [2, 0, 0, 0, 0, 2],
        Ipv4Config::parse("10.0.2.16/24").unwrap(),
        0,
    );
    (x, y)
}

fn http_get(
    client: &mut Stack<End>,
    server: &mut Stack<End>,
    http: &mut HttpServer,
    req: &[u8],
    t: &mut i64,
) -> Vec<u8> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 4096]),
        tcp::SocketBuffer::new(vec![0; 4096]),
    );
    let remote = IpEndpoint::new(IpAddress::v4(10, 0, 2, 15), 80);
    s.connect(client.iface.context(), remote, 40000 + *t as u16)
        .unwrap();
    let h = client.sockets.add(s);
    let mut got = Vec::new();
    let mut sent = false;
    for _ in 0..2000 {
        *t += 5;
        client.poll(*t);
        server.poll(*t);
        http.poll(server);
        let s = client.sockets.get_mut::<tcp::Socket>(h);
        if s.may_send() && !sent {
            s.send_slice(req).unwrap();
            sent = true;
        }
        while s.can_recv() {
            s.recv(|b| {
                got.extend_from_slice(b);
                (b.len(), ())
            })
            .unwrap();
        }
        if sent && !s.may_recv() && !got.is_empty() {
            s.close();
            break;
        }
    }
    client.sockets.remove(h);
    got
}

#[test]
fn http_served_over_the_wire() {
    let (mut server, mut client) = pair(0);
    let mut http = HttpServer::new(&mut server, 80, b"hello from the guest\n");
    let mut t = 0;
    for i in 0..3 {
        let got = http_get(
            &mut client,
            &mut server,
            &mut http,
            b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
            &mut t,
        );
        let text = core::str::from_utf8(&got).unwrap();
        assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nhello from the guest\n"), "{text}");
        assert!(text.contains("Content-Length: 21\r\n"));
        assert_eq!(http.served, i + 1);
    }
    let got = http_get(
        &mut client,
        &mut server,
        &mut http,
        b"POST / HTTP/1.0\r\n\r\n",
        &mut t,
    );
    assert!(got.starts_with(b"HTTP/1.0 400 Bad Request"));
    assert_eq!((http.served, http.refused), (3, 1));
}

#[test]
fn ping_replies_are_checked() {
    let (mut a, mut b) = pair(0);
    let mut p = Pinger::new(&mut a, [10, 0, 2, 16], 5);
    let mut t = 0;
    while !p.done() && t < 100_000 {
        t += 10;
        p.poll(&mut a, t, 1000);
        a.poll(t);
        b.poll(t);
    }
    assert_eq!((p.replies, p.lost), (5, 0));
    // Nobody at .99: every ping is lost, none counted as a reply.
    let mut q = Pinger::new(&mut a, [10, 0, 2, 99], 2);
    while !q.done() && t < 200_000 {
        t += 10;
        q.poll(&mut a, t, 500);
        a.poll(t);
        b.poll(t);
    }
    assert_eq!((q.replies, q.lost), (0, 2));
}

#[test]
fn stream_survives_loss_and_is_checked() {
    let (mut a, mut b) = pair(7);
    let mut sink = Sink::new(&mut b, 5001);
    let mut blast = Blaster::new(&mut a, [10, 0, 2, 16], 5001, 200_000);
    let mut t = 0;
    let mut done = false;
    while t < 5_000_000 && !(done && sink.finished) {
        t += 2;
        a.poll(t);
        b.poll(t);
        done = blast.poll(&mut a);
        sink.poll(&mut b);
    }
    assert!(
        done && sink.finished,
        "sent {} received {}",
        blast.sent,
        sink.received
    );
    assert_eq!((sink.received, sink.corrupt), (200_000, false));
}

#[test]
fn config_parsing() {
    assert_eq!(
        Ipv4Config::parse("10.0.2.16/24"),
        Some(Ipv4Config {
            addr: [10, 0, 2, 16],
            prefix: 24,
            gateway: None
        })
    );
    for bad in [
        "10.0.2/24",
        "10.0.2.16",
        "10.0.2.16/33",
        "10.0.2.300/24",
        "10.0.2.16.1/24",
    ] {
        assert_eq!(Ipv4Config::parse(bad), None, "{bad}");
    }
}

#[test]
fn http_client_fetches_through_lossy_wire() {
    let (mut server, mut client) = pair(5);
    let mut http = HttpServer::new(&mut server, 80, b"hello from the guest\n");
    let mut t = 0;
    for i in 0..3u16 {
        let mut get = HttpGet::new(&mut client, [10, 0, 2, 15], 80, 41000 + i);
        while !get.poll(&mut client) && t < 5_000_000 {
            t += 5;
            client.poll(t);
            server.poll(t);
            http.poll(&mut server);
        }
        assert_eq!(get.result(), Some((200, &b"hello from the guest\n"[..])));
    }
    assert_eq!(http.served, 3);
}

#[test]
fn responses_are_parsed() {
    assert_eq!(
        parse_response(b"HTTP/1.0 404 Not Found\r\nX: y\r\n\r\nno"),
        Some((404, &b"no"[..]))
    );
    assert_eq!(
        parse_response(b"HTTP/1.1 200 OK\r\n\r\n"),
        Some((200, &b""[..]))
    );
    for bad in [
        &b"HTTP/1.0 200 OK\r\n"[..],
        b"SMTP 200 OK\r\n\r\n",
        b"HTTP/1.0 2x0 OK\r\n\r\n",
        b"",
        b"\r\n\r\n",
    ] {
        assert_eq!(parse_response(bad), None, "{bad:?}");
    }
}

proptest::proptest! {
    /// Any bytes: parsing never panics, and a parsed body is a suffix.
    #[test]
    fn parse_response_any_bytes(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        if let Some((_, body)) = parse_response(&b) {
            proptest::prop_assert!(b.ends_with(body));
        }
    }
}
