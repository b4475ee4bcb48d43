//! `virtio=direct`: the driver domain uses its passed-through devices
//! itself (no front ends): it checks the disk image the host prepared,
//! writes its own pattern for the host to check after QEMU exits, with
//! `stream=BYTES port=P` sends BYTES of `netsvc`'s checked stream to a
//! sink on the host (10.0.2.2:P through QEMU's user network; `BENCH
//! net_uplink_direct_ticks`), and serves HTTP with smoltcp on virtio-net
//! until it has answered `requests=N` (default 3) requests, then powers
//! the machine off.
//!
//! Disk layout shared with the scenario (`scripts/lib/scenarios.py`):
//! sector 0 starts with [`HOST_MAGIC`]; sectors [`HOST_SECTOR`].. hold
//! [`HOST_BYTES`] of `host_pattern`; the guest writes [`GUEST_BYTES`] of
//! `guest_pattern` at [`GUEST_SECTOR`].

use crate::console::println;
use crate::dt::BootInfo;
use crate::virtio::{self, blk::VirtioDisk, hal, net::VirtioNic, Irq};
use alloc::vec;
use core::ptr::NonNull;
use hypercall_abi::guest;
use netsvc::{Blaster, HttpServer, Ipv4Config, Stack};
use pvdev::blkback::Disk;
use pvdev::dma::MmioDevice;
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::device::net::VirtIONet;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};

/// First bytes of sector 0 of the host's image.
pub const HOST_MAGIC: &[u8] = b"PVH-DISK-IMAGE-1";
/// Where the host's pattern starts.
pub const HOST_SECTOR: u64 = 2048;
/// Its length.
pub const HOST_BYTES: usize = 64 * 1024;
/// Where the guest writes.
pub const GUEST_SECTOR: u64 = 4096;
/// How much.
pub const GUEST_BYTES: usize = 64 * 1024;

/// Byte `i` of the host's pattern.
pub fn host_pattern(i: usize) -> u8 {
    (i.wrapping_mul(7) ^ (i >> 9)) as u8
}

/// Byte `i` of the guest's pattern.
pub fn guest_pattern(i: usize) -> u8 {
    (i.wrapping_mul(13) ^ (i >> 7) ^ 0x5a) as u8
}

fn fail(what: &str) -> ! {
    println!("guest: virtio: FAIL: {what}");
    guest::crash()
}

fn transport(d: &MmioDevice) -> MmioTransport<'static> {
    let Some(h) = NonNull::new(d.addr as *mut VirtIOHeader) else {
        fail("null device address")
    };
    // SAFETY: `discover` validated that `d` is a device page the monitor
    // mapped for this domain (outside RAM and the DMA window, not
    // overlapping another device); only this transport accesses it.
    unsafe { MmioTransport::new(h, d.size as usize) }
        .unwrap_or_else(|_| fail("bad virtio-mmio header"))
}

/// What the passed-through devices are.
pub struct Devices {
    /// The first virtio-blk device.
    pub disk: Option<VirtioDisk>,
    /// The first virtio-net device.
    pub nic: Option<VirtioNic>,
}

/// Finds, checks and initialises the passed-through devices.
pub fn probe(info: &BootInfo) -> Devices {
    let pt = virtio::discover(&info.fdt, (info.ram_base as u64, info.ram_size as u64))
        .unwrap_or_else(|e| fail(e));
    println!(
        "guest: virtio: {} device(s), DMA window {:#x}+{:#x}",
        pt.devices.len(),
        pt.window.0,
        pt.window.1
    );
    if !hal::init(pt.window.0, pt.window.1) {
        fail("DMA window");
    }
    let mut devs = Devices {
        disk: None,
        nic: None,
    };
    for d in &pt.devices {
        let id = virtio::device_id(d);
        let Some(irq) = Irq::bind(d.virq) else {
            fail("bind_virq")
        };
        match id {
            virtio::DEVICE_BLOCK if devs.disk.is_none() => {
                let b = VirtIOBlk::<hal::WindowHal, _>::new(transport(d))
                    .unwrap_or_else(|_| fail("virtio-blk init"));
                let disk = VirtioDisk::new(b, irq);
                println!(
                    "guest: virtio-blk at {:#x}, virq {}: {} sectors",
                    d.addr,
                    d.virq,
                    disk.sectors()
                );
                devs.disk = Some(disk);
            }
            virtio::DEVICE_NET if devs.nic.is_none() => {
                let n = VirtIONet::<hal::WindowHal, _, { virtio::net::QUEUE }>::new(
                    transport(d),
                    virtio::net::BUF_LEN,
                )
                .unwrap_or_else(|_| fail("virtio-net init"));
                let nic = VirtioNic::new(n, irq);
                let m = nic.mac();
                println!(
                    "guest: virtio-net at {:#x}, virq {}: mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    d.addr, d.virq, m[0], m[1], m[2], m[3], m[4], m[5]
                );
                devs.nic = Some(nic);
            }
            _ => println!("guest: virtio: device id {id} at {:#x} not used", d.addr),
        }
    }
    devs
}

/// Checks the host's data and writes the guest's.
pub fn disk_check(disk: &mut VirtioDisk) {
    let mut s0 = [0u8; 512];
    disk.read(0, &mut s0)
        .unwrap_or_else(|_| fail("read sector 0"));
    if &s0[..HOST_MAGIC.len()] != HOST_MAGIC {
        fail("sector 0 does not hold the host's header");
    }
    let mut buf = vec![0u8; HOST_BYTES];
    disk.read(HOST_SECTOR, &mut buf)
        .unwrap_or_else(|_| fail("read the host's data"));
    if let Some(i) = (0..HOST_BYTES).find(|&i| buf[i] != host_pattern(i)) {
        println!(
            "guest: virtio-blk: byte {i} is {:#x}, expected {:#x}",
            buf[i],
            host_pattern(i)
        );
        fail("host data differs");
    }
    println!("guest: virtio-blk: host header and {HOST_BYTES} bytes at sector {HOST_SECTOR} read back correctly");
    let data: alloc::vec::Vec<u8> = (0..GUEST_BYTES).map(guest_pattern).collect();
    disk.write(GUEST_SECTOR, &data)
        .unwrap_or_else(|_| fail("write"));
    disk.flush().unwrap_or_else(|_| fail("flush"));
    let mut back = vec![0u8; GUEST_BYTES];
    disk.read(GUEST_SECTOR, &mut back)
        .unwrap_or_else(|_| fail("read back"));
    if back != data {
        fail("read-back differs");
    }
    // Past the end and unaligned: refused, not attempted.
    let past = disk.sectors();
    if disk.read(past, &mut [0u8; 512]).is_ok() || disk.read(0, &mut [0u8; 100]).is_ok() {
        fail("bad request accepted");
    }
    println!(
        "guest: virtio-blk: wrote {GUEST_BYTES} bytes at sector {GUEST_SECTOR}, flushed, read back; {} interrupt(s)",
        disk.irqs
    );
}

fn now_ms() -> i64 {
    (crate::time::now_ns() / 1_000_000) as i64
}

/// The host as QEMU's user network shows it (its gateway).
pub const HOST: [u8; 4] = [10, 0, 2, 2];

/// Sends `bytes` of the checked stream to the host's sink on `port` and
/// waits until all is acknowledged: `BENCH net_uplink_direct_ticks <counter
/// ticks> <bytes>` (the host checks the bytes).
fn stream_to_host(stack: &mut Stack<VirtioNic>, port: u16, bytes: u64) {
    println!("guest: cntfrq {}", crate::time::frequency());
    let mut b = Blaster::new(stack, HOST, port, bytes);
    let end = now_ms() + 60_000;
    let t0 = crate::time::counter();
    loop {
        let seen = stack.dev.io.irq.seen();
        let mut busy = stack.poll(now_ms());
        let done = b.poll(stack);
        busy |= stack.poll(now_ms());
        stack.dev.io.ack();
        if done {
            break;
        }
        if now_ms() > end {
            fail("stream to the host not acknowledged within 60 s");
        }
        if !busy {
            stack.dev.io.irq.wait(seen);
        }
    }
    let dt = crate::time::counter() - t0;
    println!("BENCH net_uplink_direct_ticks {dt} {bytes}");
    println!(
        "guest: net: stream of {bytes} bytes to {}.{}.{}.{}:{port} sent and acknowledged",
        HOST[0], HOST[1], HOST[2], HOST[3]
    );
}

/// Serves HTTP on the stack until `requests` have been answered.
pub fn serve_http(stack: &mut Stack<VirtioNic>, requests: u32) {
    let mut http = HttpServer::new(stack, 80, b"hello from the pvh driver domain\n");
    println!("guest: http: listening on 10.0.2.15:80, {requests} request(s) to serve");
    let mut served = 0;
    let mut done_at = None;
    loop {
        let seen = stack.dev.io.irq.seen();
        let busy = stack.poll(now_ms());
        http.poll(stack);
        stack.dev.io.ack();
        if http.served != served {
            served = http.served;
            println!("guest: http: served request {served}");
        }
        if served >= requests && done_at.is_none() {
            done_at = Some(now_ms());
        }
        if done_at.is_some_and(|t| now_ms() - t > 300) {
            break;
        }
        if !busy {
            stack.dev.io.irq.wait(seen);
        }
    }
    println!(
        "guest: http: {served} request(s) served, {} refused; frames sent/received {:?}",
        http.refused, stack.dev.frames
    );
}

/// Sequential reads, then writes, of `mib` MiB (0: the whole disk) from
/// sector 0 in 512 KiB I/Os, the size of a guest's `blk=bench` I/Os (each
/// split by [`VirtioDisk`] into requests in flight, copied between the DMA
/// buffers and this kernel's buffer): `BENCH
/// blk_{read,write}_throughput_direct_ticks <counter ticks> <bytes>`
/// (benchmarks, not checks). The writes are flushed after the clock stops
/// (as `blk=bench`, which does not flush).
fn blk_bench(disk: &mut VirtioDisk, mib: u64) {
    const IO: usize = 512 * 1024;
    let all = disk.sectors() * 512;
    let total = if mib == 0 { all } else { (mib << 20).min(all) };
    let mut buf = vec![0u8; IO];
    println!("guest: cntfrq {}", crate::time::frequency());
    for write in [false, true] {
        let t0 = crate::time::counter();
        let mut done = 0u64;
        while done + IO as u64 <= total {
            let sector = done / 512;
            let r = if write {
                disk.write(sector, &buf)
            } else {
                disk.read(sector, &mut buf)
            };
            r.unwrap_or_else(|_| fail("benchmark I/O"));
            done += IO as u64;
        }
        let dt = crate::time::counter() - t0;
        if write {
            disk.flush().unwrap_or_else(|_| fail("flush"));
        }
        let name = if write { "write" } else { "read" };
        println!("BENCH blk_{name}_throughput_direct_ticks {dt} {done}");
        buf.iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = guest_pattern(i));
    }
}

fn arg(info: &BootInfo, key: &str) -> Option<&'static str> {
    info.bootargs
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// The mode.
pub fn run(info: &BootInfo) -> ! {
    if crate::events::init().is_err() {
        fail("map shared info");
    }
    let devs = probe(info);
    if let Some(mut d) = devs.disk {
        disk_check(&mut d);
        if let Some(mib) = arg(info, "blkbench").and_then(|m| m.parse::<u64>().ok()) {
            blk_bench(&mut d, mib);
        }
    }
    if let Some(n) = devs.nic {
        let mac = n.mac();
        let mut stack = Stack::new(n, mac, Ipv4Config::SLIRP, now_ms());
        let stream = arg(info, "stream").and_then(|b| b.parse::<u64>().ok());
        let port = arg(info, "port").and_then(|p| p.parse::<u16>().ok());
        if let (Some(bytes @ 1..), Some(port)) = (stream, port) {
            stream_to_host(&mut stack, port, bytes);
        }
        let requests = arg(info, "requests")
            .and_then(|r| r.parse().ok())
            .unwrap_or(3);
        serve_http(&mut stack, requests);
    }
    println!(
        "guest: virtio: done ({} DMA pages free), powering off",
        hal::free_pages()
    );
    guest::poweroff()
}
