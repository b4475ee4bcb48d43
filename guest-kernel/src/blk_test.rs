//! Guest modes on the paravirtual block device of driver domain
//! `backend=N` (found through the store, `device/vbd/51712`), the guest's
//! output going through its PV console once connected:
//!
//! * `blk=rw` (`mb=`, default 4): reads the disk's prefilled pattern and
//!   checks it, writes `mb` MiB of its own pattern (128 KiB I/Os: three
//!   requests of up to 11 segments in flight each), flushes, reads it back
//!   and compares checksums; a single-sector write and read; a read past
//!   the end refused.
//! * `blk=bad`: malformed requests (segment counts, sector ranges, grants
//!   it never gave, unknown operations) each answered with an error, then
//!   a good read; garbage in the store protocol answered with errors;
//!   writes outside its store permissions refused; finally corrupt store
//!   ring indices, after which the store must report the connection gone
//!   instead of hanging.
//! * `blk=bench` (`rand=N`, default 4096; 0: sequential only): sequential
//!   reads and writes of the whole disk in 512 KiB I/Os, then N 4 KiB
//!   random reads and N writes (`BENCH blk_pv_*` lines for `scripts/bench`).
//! * `blk=image` (a vbd on the driver domain's virtio disk, `disk=virtio`):
//!   checks the host's header and pattern (the layout of
//!   `crate::virtio_direct`), writes [`IMAGE_BYTES`] of `guest_pattern`
//!   at `GUEST_SECTOR`, flushes, reads them back; a read past the end
//!   refused. The host checks the image after QEMU exits.
//! * `blk=reconnect` (`persist=1` when the disk outlives its driver
//!   domain, i.e. `disk=virtio`; `limit=MS`): writes [`REC_BYTES`] of its
//!   own at [`REC_SECTOR`], flushes and reads them back; then reads and
//!   checks them over and over until an I/O fails (its driver domain was
//!   destroyed), reports the error and that the next read fails too;
//!   waits for the monitor to name a new driver domain, reconnects the
//!   store, the console and the vbd to it, and checks I/O on the new back
//!   end: the data written before the death (`persist=1`; else the new
//!   RAM disk's pattern), and [`REC_BYTES`] more at `REC_SECTOR + 1024`
//!   written, flushed and read back.
//! * `blk=until-gone`: reads and checks the prefilled pattern over and
//!   over until an I/O fails (its back end was destroyed): the error is
//!   reported, and the guest shuts down cleanly, its console falling back
//!   to `console_io`. A guest whose I/O never fails reports that after
//!   `limit=MS` (default 20000).

use crate::console::println;
use crate::dt::BootInfo;
use crate::pv::block_front::{BlockError, BlockFront};
use crate::ring_test::opt;
use crate::tally::Tally;
use crate::time::counter;
use hypercall_abi::guest;
use hypercall_abi::io::blkif::*;
use pvdev::blkback::disk_pattern;
use pvdev::devices::VBD_XVDA;

fn mix(sum: u64, b: &[u8]) -> u64 {
    b.chunks(8).fold(sum, |s, c| {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        (s ^ u64::from_le_bytes(w)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The guest's own data: byte `off` of what it writes, for `seed`.
fn mine(seed: u64, off: u64) -> u8 {
    ((off / 4096).wrapping_mul(seed | 1).wrapping_add(off) >> 3) as u8
        ^ (off as u8).wrapping_mul(13)
}

fn connect(info: &BootInfo) -> (crate::pv::Session, BlockFront) {
    let backend = opt(info, "backend").map(|b| b as u16);
    let mut s = match crate::pv::start(backend, 30_000_000_000) {
        Ok(s) => s,
        Err(e) => {
            println!("guest: blk: FAIL: {e}");
            guest::crash()
        }
    };
    println!(
        "guest: blk: store and console connected through dom{}",
        s.backend
    );
    match BlockFront::connect(&mut s.store, &mut s.grants, VBD_XVDA) {
        Ok(b) => (s, b),
        Err(e) => {
            println!("guest: blk: FAIL: connecting vbd {VBD_XVDA}: {e:?}");
            guest::crash()
        }
    }
}

/// `blk=rw`.
pub fn rw(info: &BootInfo) -> ! {
    let (_s, mut b) = connect(info);
    let mut t = Tally::new("blk");
    let mb = opt(info, "mb").unwrap_or(4).clamp(1, 64);
    let seed = opt(info, "seed").unwrap_or(7);
    t.check(
        "connected",
        b.sectors >= mb * 2048 * 2,
        format_args!("{} sectors", b.sectors),
    );
    let chunk = b.max_bytes() as u64;
    let nr = chunk / 512;
    // 1. The prefilled pattern, first 1 MiB.
    let (mut bad, mut at) = (0u64, 0u64);
    while at < (1 << 20) {
        if b.read_in_place(at / 512, nr).is_err() {
            bad += 1;
        }
        for i in 0..(chunk / 4096) as usize {
            let p = b.data(i);
            bad += p
                .iter()
                .enumerate()
                .filter(|(k, &v)| v != disk_pattern(at + i as u64 * 4096 + *k as u64))
                .count() as u64;
        }
        at += chunk;
    }
    t.check(
        "pattern read",
        bad == 0,
        format_args!("1 MiB, {bad} bytes differ"),
    );
    // 2. Write mb MiB of our own data in the second half, then flush.
    let base = b.sectors * 512 / 2;
    let (mut wsum, mut errs, mut at) = (0u64, 0u32, 0u64);
    while at < mb << 20 {
        for i in 0..(chunk / 4096) as usize {
            let p = b.data_mut(i);
            for (k, v) in p.iter_mut().enumerate() {
                *v = mine(seed, at + i as u64 * 4096 + k as u64);
            }
            wsum = mix(wsum, p);
        }
        if b.write_in_place((base + at) / 512, nr).is_err() {
            errs += 1;
        }
        at += chunk;
    }
    t.check(
        "write",
        errs == 0,
        format_args!(
            "{mb} MiB in {} I/Os of {} KiB, {errs} errors",
            (mb << 20) / chunk,
            chunk / 1024
        ),
    );
    t.check("flush", b.flush().is_ok(), format_args!("after the writes"));
    // 3. Read it back.
    let (mut rsum, mut errs, mut at) = (0u64, 0u32, 0u64);
    while at < mb << 20 {
        if b.read_in_place((base + at) / 512, nr).is_err() {
            errs += 1;
        }
        for i in 0..(chunk / 4096) as usize {
            rsum = mix(rsum, b.data(i));
        }
        at += chunk;
    }
    t.check(
        "read back",
        errs == 0 && rsum == wsum,
        format_args!("checksum {rsum:#018x}, written {wsum:#018x}"),
    );
    // 4. One sector, unaligned, through the copying interface.
    let one = [0x5au8; 512];
    let mut back = [0u8; 512];
    let r = b
        .write(base / 512 - 3, &one)
        .and_then(|_| b.read(base / 512 - 3, &mut back));
    t.check(
        "single sector",
        r.is_ok() && back == one,
        format_args!("sector {}", base / 512 - 3),
    );
    // 5. The pattern before our region is untouched.
    let mut buf = [0u8; 4096];
    let r = b.read(base / 512 - 16, &mut buf);
    let same = buf
        .iter()
        .enumerate()
        .all(|(k, &v)| v == disk_pattern(base - 8192 + k as u64));
    t.check(
        "pattern next to the writes",
        r.is_ok() && same,
        format_args!("4 KiB"),
    );
    // 6. Past the end: refused.
    let r = b.read(b.sectors - 4, &mut buf);
    t.check(
        "read past the end",
        r == Err(BlockError::Status(BLKIF_RSP_ERROR)),
        format_args!("{r:?}"),
    );
    println!("guest: blk checks passed {}/{}", t.ok, t.all);
    guest::poweroff()
}

/// How much `blk=image` writes through the paravirtual path.
pub const IMAGE_BYTES: u64 = 1 << 20;

/// `blk=image`.
pub fn image(info: &BootInfo) -> ! {
    use crate::virtio_direct::{
        guest_pattern, host_pattern, GUEST_SECTOR, HOST_BYTES, HOST_MAGIC, HOST_SECTOR,
    };
    let (_s, mut b) = connect(info);
    let mut t = Tally::new("blk");
    let need = GUEST_SECTOR + IMAGE_BYTES / 512;
    t.check(
        "connected",
        b.sectors >= need,
        format_args!("{} sectors", b.sectors),
    );
    let mut s0 = [0u8; 512];
    let r = b.read(0, &mut s0);
    t.check(
        "host header",
        r.is_ok() && s0.starts_with(HOST_MAGIC),
        format_args!("sector 0 {r:?}"),
    );
    let r = b.read_in_place(HOST_SECTOR, HOST_BYTES as u64 / 512);
    let bad = (0..HOST_BYTES)
        .filter(|&i| b.data(i / 4096)[i % 4096] != host_pattern(i))
        .count();
    t.check(
        "host data",
        r.is_ok() && bad == 0,
        format_args!("{HOST_BYTES} bytes at sector {HOST_SECTOR}, {bad} differ"),
    );
    let chunk = b.max_bytes() as u64;
    let (mut errs, mut at) = (0u32, 0u64);
    while at < IMAGE_BYTES {
        let n = chunk.min(IMAGE_BYTES - at);
        for i in 0..(n / 4096) as usize {
            for (k, v) in b.data_mut(i).iter_mut().enumerate() {
                *v = guest_pattern((at + i as u64 * 4096) as usize + k);
            }
        }
        if b.write_in_place(GUEST_SECTOR + at / 512, n / 512).is_err() {
            errs += 1;
        }
        at += n;
    }
    t.check(
        "write",
        errs == 0,
        format_args!("{IMAGE_BYTES} bytes at sector {GUEST_SECTOR}, {errs} errors"),
    );
    t.check("flush", b.flush().is_ok(), format_args!("after the writes"));
    let (mut bad, mut errs, mut at) = (0usize, 0u32, 0u64);
    while at < IMAGE_BYTES {
        let n = chunk.min(IMAGE_BYTES - at);
        if b.read_in_place(GUEST_SECTOR + at / 512, n / 512).is_err() {
            errs += 1;
        }
        for i in 0..(n / 4096) as usize {
            let base = (at + i as u64 * 4096) as usize;
            bad += b
                .data(i)
                .iter()
                .enumerate()
                .filter(|(k, &v)| v != guest_pattern(base + k))
                .count();
        }
        at += n;
    }
    t.check(
        "read back",
        errs == 0 && bad == 0,
        format_args!("{bad} bytes differ, {errs} errors"),
    );
    let mut buf = [0u8; 4096];
    let r = b.read(b.sectors - 4, &mut buf);
    t.check(
        "read past the end",
        r == Err(BlockError::Status(BLKIF_RSP_ERROR)),
        format_args!("{r:?}"),
    );
    println!("guest: blk checks passed {}/{}", t.ok, t.all);
    guest::poweroff()
}

/// Where `blk=reconnect` writes (4 MiB into the disk), and how much per
/// phase (one I/O); the second phase writes 512 KiB further on.
pub const REC_SECTOR: u64 = 8192;
/// Bytes per phase of `blk=reconnect`.
pub const REC_BYTES: u64 = 512 * 1024;

/// Byte `i` of what `blk=reconnect` writes in phase `k` (1: before the
/// driver domain dies, 2: after the reconnection).
pub fn rec_pattern(k: u8, i: usize) -> u8 {
    (i.wrapping_mul(13) ^ (i >> 7)) as u8 ^ 0x5au8.wrapping_add(0x11u8.wrapping_mul(k))
}

/// Writes phase `k`'s bytes at `sector`, flushes, reads them back;
/// `(errors, bytes that differ)`.
fn rec_write_check(b: &mut BlockFront, k: u8, sector: u64) -> (u32, usize) {
    let n = REC_BYTES as usize;
    for i in 0..n / 4096 {
        for (j, v) in b.data_mut(i).iter_mut().enumerate() {
            *v = rec_pattern(k, i * 4096 + j);
        }
    }
    let mut errs = 0;
    errs += b.write_in_place(sector, REC_BYTES / 512).is_err() as u32;
    errs += b.flush().is_err() as u32;
    for i in 0..n / 4096 {
        b.data_mut(i).fill(0);
    }
    let (e, bad) = rec_read_check(b, sector, |i| rec_pattern(k, i));
    (errs + e, bad)
}

/// Reads [`REC_BYTES`] at `sector` and compares them with `want`.
fn rec_read_check(b: &mut BlockFront, sector: u64, want: impl Fn(usize) -> u8) -> (u32, usize) {
    let errs = b.read_in_place(sector, REC_BYTES / 512).is_err() as u32;
    let bad = (0..REC_BYTES as usize)
        .filter(|&i| b.data(i / 4096)[i % 4096] != want(i))
        .count();
    (errs, bad)
}

/// `blk=reconnect`.
pub fn reconnect(info: &BootInfo) -> ! {
    let (mut s, mut b) = connect(info);
    let mut t = Tally::new("blk");
    let persist = opt(info, "persist") == Some(1);
    let limit = crate::time::now_ns() + opt(info, "limit").unwrap_or(30_000) * 1_000_000;
    let first = s.backend;
    println!(
        "guest: blk: vbd connected through dom{first} at {} ms",
        crate::time::now_ns() / 1_000_000
    );
    let (errs, bad) = rec_write_check(&mut b, 1, REC_SECTOR);
    t.check(
        "before: write, flush, read back",
        errs == 0 && bad == 0,
        format_args!("{REC_BYTES} bytes at sector {REC_SECTOR} through dom{first}, {errs} errors, {bad} differ"),
    );
    println!(
        "guest: blk: reading until the back end goes away (from {} ms)",
        crate::time::now_ns() / 1_000_000
    );
    let (mut ios, mut differ) = (0u64, 0usize);
    let err = loop {
        if crate::time::now_ns() > limit {
            break None;
        }
        match b.read_in_place(REC_SECTOR, REC_BYTES / 512) {
            Ok(()) => {
                differ += (0..REC_BYTES as usize)
                    .filter(|&i| b.data(i / 4096)[i % 4096] != rec_pattern(1, i))
                    .count();
                ios += 1;
            }
            Err(e) => break Some(e),
        }
    };
    t.check(
        "I/O failed when the back end went away",
        err == Some(BlockError::BackendGone) && ios > 0 && differ == 0,
        format_args!(
            "{err:?} after {ios} good reads ({differ} bytes differed) at {} ms",
            crate::time::now_ns() / 1_000_000
        ),
    );
    let r = b.read(0, &mut [0u8; 512]);
    t.check(
        "next read fails too",
        r == Err(BlockError::BackendGone) && b.is_gone(),
        format_args!("{r:?}"),
    );
    println!("guest: blk: waiting for a new driver domain");
    let t0 = crate::time::now_ns();
    let r = s.reconnect(30_000_000_000);
    let waited = (crate::time::now_ns() - t0) / 1_000_000;
    // From here on, through the new driver domain's console.
    t.check(
        "store and console reconnected",
        r.is_ok_and(|d| d != first),
        format_args!(
            "to dom{} (generation {}) after {waited} ms: {r:?}",
            s.backend,
            s.tracker.generation()
        ),
    );
    if r.is_err() {
        println!("guest: blk checks passed {}/{}", t.ok, t.all);
        guest::poweroff()
    }
    let r = b.reconnect(&mut s.store, &mut s.grants);
    t.check(
        "vbd reconnected",
        r.is_ok() && b.sectors >= REC_SECTOR + 2 * REC_BYTES / 512,
        format_args!("{r:?}, {} sectors", b.sectors),
    );
    if persist {
        let (errs, bad) = rec_read_check(&mut b, REC_SECTOR, |i| rec_pattern(1, i));
        t.check(
            "data written before the death",
            errs == 0 && bad == 0,
            format_args!("{REC_BYTES} bytes at sector {REC_SECTOR}, {errs} errors, {bad} differ"),
        );
    } else {
        let base = REC_SECTOR as usize * 512;
        let (errs, bad) = rec_read_check(&mut b, REC_SECTOR, |i| disk_pattern((base + i) as u64));
        t.check(
            "the new RAM disk's pattern",
            errs == 0 && bad == 0,
            format_args!("{REC_BYTES} bytes at sector {REC_SECTOR}, {errs} errors, {bad} differ"),
        );
    }
    let at = REC_SECTOR + REC_BYTES / 512;
    let (errs, bad) = rec_write_check(&mut b, 2, at);
    t.check(
        "after: write, flush, read back",
        errs == 0 && bad == 0,
        format_args!(
            "{REC_BYTES} bytes at sector {at} through dom{}, {errs} errors, {bad} differ",
            s.backend
        ),
    );
    println!("guest: blk checks passed {}/{}", t.ok, t.all);
    guest::poweroff()
}

/// `blk=until-gone`.
pub fn until_gone(info: &BootInfo) -> ! {
    let (_s, mut b) = connect(info);
    let limit = crate::time::now_ns() + opt(info, "limit").unwrap_or(20_000) * 1_000_000;
    let chunk = b.max_bytes() as u64;
    let span = (b.sectors * 512 / chunk).max(1);
    let (mut ios, mut bad) = (0u64, 0u64);
    println!("guest: blk: reading until the back end goes away");
    let err = loop {
        if crate::time::now_ns() > limit {
            break None;
        }
        let at = ios % span * chunk;
        match b.read_in_place(at / 512, chunk / 512) {
            Ok(()) => {
                for i in 0..(chunk / 4096) as usize {
                    let p = b.data(i);
                    bad += p
                        .iter()
                        .enumerate()
                        .filter(|(k, &v)| v != disk_pattern(at + i as u64 * 4096 + *k as u64))
                        .count() as u64;
                }
                ios += 1;
            }
            Err(e) => break Some(e),
        }
    };
    match err {
        Some(e) => println!(
            "guest: blk: I/O failed after {ios} good I/Os ({bad} bytes differed): {e:?} at {} ms",
            crate::time::now_ns() / 1_000_000
        ),
        None => println!("guest: blk: FAIL: {ios} I/Os and the back end never went away"),
    }
    let r = b.read(0, &mut [0u8; 512]);
    println!("guest: blk: next read: {r:?}; shutting down");
    guest::poweroff()
}

/// `blk=bad`.
pub fn bad(info: &BootInfo) -> ! {
    let (mut s, mut b) = connect(info);
    let mut t = Tally::new("blk");
    let g = b.page_ref(0);
    let end = b.sectors;
    let mk = |id: u64, op: u8, sector: u64, segs: &[(u32, u8, u8)], nr: Option<u8>| {
        let mut r = BlkifRequest::new(op, id | 1 << 63, sector);
        for &(gref, first_sect, last_sect) in segs {
            let _ = r.push_segment(BlkifSegment {
                gref,
                first_sect,
                last_sect,
            });
        }
        if let Some(n) = nr {
            r.nr_segments = n;
        }
        r
    };
    let cases: [(&str, BlkifRequest, i16); 10] = [
        (
            "zero segments",
            mk(1, BLKIF_OP_READ, 0, &[], None),
            BLKIF_RSP_ERROR,
        ),
        (
            "12 segments",
            mk(2, BLKIF_OP_READ, 0, &[(g, 0, 0)], Some(12)),
            BLKIF_RSP_ERROR,
        ),
        (
            "255 segments",
            mk(3, BLKIF_OP_WRITE, 0, &[(g, 0, 0)], Some(255)),
            BLKIF_RSP_ERROR,
        ),
        (
            "first_sect after last_sect",
            mk(4, BLKIF_OP_READ, 0, &[(g, 5, 2)], None),
            BLKIF_RSP_ERROR,
        ),
        (
            "last_sect 8",
            mk(5, BLKIF_OP_READ, 0, &[(g, 0, 8)], None),
            BLKIF_RSP_ERROR,
        ),
        (
            "past the end",
            mk(6, BLKIF_OP_READ, end - 4, &[(g, 0, 7)], None),
            BLKIF_RSP_ERROR,
        ),
        (
            "sector overflow",
            mk(7, BLKIF_OP_WRITE, u64::MAX - 2, &[(g, 0, 7)], None),
            BLKIF_RSP_ERROR,
        ),
        (
            "grant never given",
            mk(8, BLKIF_OP_READ, 0, &[(g, 0, 7), (500, 0, 7)], None),
            BLKIF_RSP_ERROR,
        ),
        (
            "unknown operation",
            mk(9, 200, 0, &[(g, 0, 7)], None),
            BLKIF_RSP_ERROR,
        ),
        (
            "discard unsupported",
            mk(10, BLKIF_OP_DISCARD, 0, &[], None),
            BLKIF_RSP_EOPNOTSUPP,
        ),
    ];
    for (what, req, want) in cases.iter() {
        let r = b.raw(req);
        t.check(
            what,
            r.map(|r| r.status) == Ok(*want) && r.map(|r| r.id) == Ok(req.id),
            format_args!("{:?}", r.map(|r| r.status)),
        );
    }
    // A write with one bad grant leaves the disk unchanged.
    let w = mk(11, BLKIF_OP_WRITE, 64, &[(g, 0, 7), (501, 0, 7)], None);
    b.data_mut(0).fill(0xee);
    let r = b.raw(&w).map(|r| r.status);
    let mut buf = [0u8; 4096];
    let read = b.read(64, &mut buf);
    let intact = buf
        .iter()
        .enumerate()
        .all(|(k, &v)| v == disk_pattern(64 * 512 + k as u64));
    t.check(
        "write with a bad grant",
        r == Ok(BLKIF_RSP_ERROR) && read.is_ok() && intact,
        format_args!("{r:?}, disk unchanged {intact}"),
    );
    // The device still works.
    let r = b.read(8, &mut buf);
    let good = buf
        .iter()
        .enumerate()
        .all(|(k, &v)| v == disk_pattern(8 * 512 + k as u64));
    t.check(
        "good read after bad requests",
        r.is_ok() && good,
        format_args!("{r:?}"),
    );
    // The store protocol.
    use crate::pv::store_client::StoreError;
    use hypercall_abi::io::xs_wire::*;
    let r = s.store.request(9999, 0, &[b"x\0"]);
    t.check(
        "store: unknown message type",
        r == Err(StoreError::Store(XsError::EINVAL)),
        format_args!("{r:?}"),
    );
    let r = s.store.request(XS_READ, 0, &[b"no-nul"]);
    t.check("store: path without NUL", r.is_err(), format_args!("{r:?}"));
    let mut hdr = [0u8; XSD_SOCKMSG_BYTES];
    let _ = XsdSockmsg {
        kind: XS_WRITE,
        req_id: 4242,
        tx_id: 0,
        len: 100_000,
    }
    .encode(&mut hdr);
    let r = s.store.exchange(&hdr, 4242);
    t.check(
        "store: oversize header",
        r == Err(StoreError::Store(XsError::E2BIG)),
        format_args!("{r:?}"),
    );
    let be = s
        .store
        .read(&alloc::format!("device/vbd/{VBD_XVDA}/backend"))
        .unwrap_or_default();
    let r = s.store.write(&alloc::format!("{be}/sectors"), "999999999");
    t.check(
        "store: writing the back end's sectors",
        r == Err(StoreError::Store(XsError::EACCES)),
        format_args!("{r:?}"),
    );
    let r = s.store.read("/local/domain/1/name");
    t.check(
        "store: another domain's home",
        matches!(r, Err(StoreError::Store(XsError::EACCES | XsError::ENOENT))),
        format_args!("{r:?}"),
    );
    let r = s
        .store
        .read(&alloc::format!("device/vbd/{VBD_XVDA}/backend-id"));
    t.check("store: still answering", r.is_ok(), format_args!("{r:?}"));
    // Corrupt indices: the driver domain stops serving the store and
    // closes its port; the client reports it instead of hanging.
    let page = s.store.page();
    page.req_prod.store(
        page.req_cons
            .load(core::sync::atomic::Ordering::Acquire)
            .wrapping_add(5000),
        core::sync::atomic::Ordering::Release,
    );
    let _ = hypercall_abi::evtchn_guest::send(crate::pv::STORE_PORT);
    let r = s.store.read("device");
    t.check(
        "store: corrupt ring indices",
        matches!(r, Err(StoreError::Gone | StoreError::Protocol)),
        format_args!("{r:?}"),
    );
    // The driver domain closes the store's port (within 5 s).
    let until = crate::time::now_ns() + 5_000_000_000;
    let unbound = loop {
        let st = hypercall_abi::evtchn_guest::status(
            hypercall_abi::event_channel::DOMID_SELF,
            crate::pv::STORE_PORT,
        );
        if st.map(|s| s.status) == Ok(hypercall_abi::event_channel::EVTCHNSTAT_UNBOUND) {
            break true;
        }
        if crate::time::now_ns() > until {
            break false;
        }
        crate::events::sleep(5_000_000);
    };
    t.check(
        "store: port closed by the driver domain",
        unbound,
        format_args!("unbound {unbound}"),
    );
    let err = page.error.load(core::sync::atomic::Ordering::Acquire);
    t.check(
        "store: error reported in the page",
        err == XENSTORE_ERROR_RINGIDX,
        format_args!("error {err}"),
    );
    let r = b.read(16, &mut buf);
    t.check(
        "block device after the store is gone",
        r.is_ok(),
        format_args!("{r:?}"),
    );
    println!("guest: blk checks passed {}/{}", t.ok, t.all);
    guest::poweroff()
}

/// `blk=bench`.
pub fn bench(info: &BootInfo) -> ! {
    let (_s, mut b) = connect(info);
    let chunk = b.max_bytes() as u64;
    let bytes = b.sectors * 512;
    let t = counter();
    let mut at = 0;
    while at + chunk <= bytes {
        let _ = b.read_in_place(at / 512, chunk / 512);
        at += chunk;
    }
    println!("BENCH blk_pv_seq_read_ticks {} {at}", counter() - t);
    let t = counter();
    let mut at = 0;
    while at + chunk <= bytes {
        b.data_mut(0)[0] = at as u8;
        let _ = b.write_in_place(at / 512, chunk / 512);
        at += chunk;
    }
    println!("BENCH blk_pv_seq_write_ticks {} {at}", counter() - t);
    let n = opt(info, "rand").unwrap_or(4096);
    if n == 0 {
        println!("guest: blk bench done");
        guest::poweroff()
    }
    let pages = bytes / 4096;
    let mut x = 1u64;
    let t = counter();
    for _ in 0..n {
        let _ = b.read_in_place(random_page(&mut x, pages), 8);
    }
    println!(
        "BENCH blk_pv_rand_read_ticks {} {}",
        counter() - t,
        n * 4096
    );
    let t = counter();
    for _ in 0..n {
        let _ = b.write_in_place(random_page(&mut x, pages), 8);
    }
    println!(
        "BENCH blk_pv_rand_write_ticks {} {}",
        counter() - t,
        n * 4096
    );
    println!("guest: blk bench done");
    guest::poweroff()
}

/// The next sector of the 4 KiB random I/O sequence (a page of a disk of
/// `pages` pages, from generator state `x`, which starts at 1). The
/// paravirtual benchmark here and the driver domain's direct one
/// (`driver::bench_direct`) use the same sequence.
pub fn random_page(x: &mut u64, pages: u64) -> u64 {
    *x = x
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*x >> 33) % pages * 8
}
