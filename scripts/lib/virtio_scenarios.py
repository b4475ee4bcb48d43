"""Scenarios with the driver domain's real devices (virtio-blk on a disk
image in out/, virtio-net on QEMU's user network with a forwarded port).

The disk layout is the guest's (guest-kernel/src/virtio_direct.rs): the host
writes a header in sector 0 and a pattern at sector 2048 before boot; the
guest checks them and writes its own pattern at sector 4096, which the host
checks byte for byte after QEMU exits. While QEMU runs, the host fetches the
guest's page through the forwarded port (the `during` hook of run()).
"""
import os
import re
import socket
import threading
import urllib.request

HOST_MAGIC = b"PVH-DISK-IMAGE-1"
HOST_SECTOR, HOST_BYTES = 2048, 64 * 1024
GUEST_SECTOR, GUEST_BYTES = 4096, 64 * 1024
DISK_BYTES = 8 << 20


def host_pattern(i):
    return ((i * 7) ^ (i >> 9)) & 0xff


def guest_pattern(i):
    return ((i * 13) ^ (i >> 7) ^ 0x5a) & 0xff


def make_image(path, size=DISK_BYTES):
    d = bytearray(size)
    d[:len(HOST_MAGIC)] = HOST_MAGIC
    d[HOST_SECTOR * 512:HOST_SECTOR * 512 + HOST_BYTES] = bytes(host_pattern(i) for i in range(HOST_BYTES))
    with open(path, "wb") as f:
        f.write(d)


def check_image(path, guest_bytes=GUEST_BYTES):
    """The guest's bytes are in the image, and the host's are untouched."""
    GUEST_BYTES = guest_bytes
    with open(path, "rb") as f:
        d = f.read()
    problems = []
    if len(d) != DISK_BYTES:
        problems.append(f"image is {len(d)} bytes, expected {DISK_BYTES}")
    got = d[GUEST_SECTOR * 512:GUEST_SECTOR * 512 + GUEST_BYTES]
    want = bytes(guest_pattern(i) for i in range(GUEST_BYTES))
    if got != want:
        bad = next((i for i in range(GUEST_BYTES) if i >= len(got) or got[i] != want[i]), 0)
        problems.append(f"guest data in the image differs from byte {bad} of sector {GUEST_SECTOR}")
    host = d[HOST_SECTOR * 512:HOST_SECTOR * 512 + HOST_BYTES]
    if host != bytes(host_pattern(i) for i in range(HOST_BYTES)) or not d.startswith(HOST_MAGIC):
        problems.append("the host's data in the image changed")
    print(f"        image check: {GUEST_BYTES} guest bytes at sector {GUEST_SECTOR}: "
          f"{'ok' if not problems else 'BAD'}")
    return problems


REC_SECTOR, REC_BYTES = 8192, 512 * 1024


def rec_pattern(k, i):
    """Byte i of what guest mode blk=reconnect writes in phase k."""
    return (((i * 13) ^ (i >> 7)) ^ (0x5a + 0x11 * k)) & 0xff


def check_reconnect_image(path):
    """blk=reconnect's data from before the driver domain's death (phase 1)
    and from after the reconnection (phase 2) are in the image; the host's
    data is untouched."""
    with open(path, "rb") as f:
        d = f.read()
    problems = []
    for k, sector in [(1, REC_SECTOR), (2, REC_SECTOR + REC_BYTES // 512)]:
        got = d[sector * 512:sector * 512 + REC_BYTES]
        want = bytes(rec_pattern(k, i) for i in range(REC_BYTES))
        if got != want:
            bad = next((i for i in range(REC_BYTES) if i >= len(got) or got[i] != want[i]), 0)
            problems.append(f"phase {k} data in the image differs from byte {bad} of sector {sector}")
        print(f"        image check: phase {k}, {REC_BYTES} bytes at sector {sector}: "
              f"{'ok' if got == want else 'BAD'}")
    host = d[HOST_SECTOR * 512:HOST_SECTOR * 512 + HOST_BYTES]
    if host != bytes(host_pattern(i) for i in range(HOST_BYTES)) or not d.startswith(HOST_MAGIC):
        problems.append("the host's data in the image changed")
    return problems


def free_memory_back(text):
    """Free memory at the end equals free memory before any domain."""
    a = re.search(r"hyp: \d+ MiB free for domains \((\d+) frames\)", text)
    b = re.search(r"hyp: \d+ MiB free \((\d+) frames\); powering off", text)
    if not (a and b):
        return ["free memory not reported"]
    return [] if a.group(1) == b.group(1) else [f"free memory {a.group(1)} frames at boot, {b.group(1)} at the end"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fetch(port, n, expect_body):
    """n GETs of the forwarded port; each must return 200 and the body."""
    problems = []
    for i in range(n):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as r:
                body = r.read()
                if r.status != 200 or body != expect_body:
                    problems.append(f"request {i + 1}: status {r.status}, body {body!r}")
                else:
                    print(f"        host GET {i + 1}/{n}: 200, {len(body)} bytes: ok")
        except OSError as e:
            problems.append(f"request {i + 1}: {e}")
    return problems


def stream_pattern(n):
    """The first n bytes of netsvc's stream pattern: byte i is
    (31 i) ^ (i >> 8) mod 256 (netsvc::services::pattern)."""
    blocks = [bytes(((i * 31) & 0xff) ^ b for i in range(256)) for b in range(256)]
    whole = b"".join(blocks[b & 0xff] for b in range(n // 256 + 1))
    return whole[:n]


class StreamSink:
    """A TCP sink on 127.0.0.1 (a free port): accepts one connection (a
    guest's netsvc Blaster, through QEMU's user network: the guest connects
    to 10.0.2.2:port) and reads until the sender closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.data = bytearray()
        self.error = None
        self.thread = None

    def start(self):
        self.data = bytearray()
        self.error = None
        self.sock.listen(1)
        self.sock.settimeout(120)

        def run():
            try:
                c, _ = self.sock.accept()
                c.settimeout(120)
                with c:
                    while True:
                        b = c.recv(1 << 20)
                        if not b:
                            break
                        self.data += b
            except OSError as e:
                self.error = e
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def check(self, n):
        """Problems, if the stream was not exactly n bytes of the pattern."""
        if self.thread:
            self.thread.join(10)
        problems = []
        if self.error:
            problems.append(f"host sink: {self.error}")
        if len(self.data) != n:
            problems.append(f"host sink got {len(self.data)} bytes, expected {n}")
        elif bytes(self.data) != stream_pattern(n):
            bad = next(i for i, (a, b) in enumerate(zip(self.data, stream_pattern(n))) if a != b)
            problems.append(f"host sink: stream differs from the pattern at byte {bad}")
        print(f"        host sink: {len(self.data)} of {n} bytes, pattern "
              f"{'checked' if not problems else 'BAD'}")
        return problems


def scenarios(out_dir, banner, clean_end, never):
    out = []
    disk = os.path.join(out_dir, "virtio-direct.img")
    port = free_port()
    requests = 3
    # Before serving HTTP, the driver domain sends a checked stream to a
    # sink on the host (10.0.2.2:PORT through slirp).
    sink, stream = StreamSink(), 1 << 20

    def setup():
        make_image(disk)
        sink.start()
    out.append(dict(
        name="virt/virtio-direct", board="virt", smp=2, timeout=60,
        setup=setup,
        qemu_extra=["-drive", f"file={disk},if=none,format=raw,id=d0", "-device", "virtio-blk-device,drive=d0",
                    "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-10.0.2.15:80",
                    "-device", "virtio-net-device,netdev=n0"],
        append=f'semihosting dom=drv,driver,mem=32,args="virtio=direct requests={requests} stream={stream} port={sink.port}"',
        during=(r"\[drv\] guest: http: listening on 10\.0\.2\.15:80",
                lambda: fetch(port, requests, b"hello from the pvh driver domain\n")),
        expect=banner + [
            ("any", r"^\[drv\] guest: virtio: 2 device\(s\), DMA window 0x[0-9a-f]+\+0x800000"),
            ("any", r"^\[drv\] guest: virtio-net at 0xa003c00, virq 16: mac 52:54:00:12:34:56"),
            ("any", r"^\[drv\] guest: virtio-blk at 0xa003e00, virq 17: 16384 sectors"),
            ("any", r"^\[drv\] guest: virtio-blk: host header and 65536 bytes at sector 2048 read back correctly"),
            ("any", r"^\[drv\] guest: virtio-blk: wrote 65536 bytes at sector 4096, flushed, read back"),
            ("any", rf"^\[drv\] guest: net: stream of {stream} bytes to 10\.0\.2\.2:{sink.port} sent and acknowledged"),
            ("any", rf"^\[drv\] guest: http: served request {requests}$"),
            ("any", rf"^\[drv\] guest: http: {requests} request\(s\) served, 0 refused"),
            ("any", r"^\[drv\] guest: virtio: done"),
            ("any", r"hyp: 2 device\(s\) of the driver domain reset"),
        ] + clean_end,
        post=lambda text: check_image(disk) + sink.check(stream),
        never=never + [r"PHYSDEVOP_eoi\(\d+\) refused"], exit_code=0))
    # The same image served to a guest as its vbd through the PV path
    # (driver domain `disk=virtio`): the guest reads the host's data and
    # writes 1 MiB, which the host checks after QEMU exits; a second guest
    # works on a RAM disk meanwhile.
    pvdisk = os.path.join(out_dir, "blk-virtio.img")
    pv_bytes = 1 << 20
    out.append(dict(
        name="virt/blk-virtio", board="virt", smp=2, timeout=90,
        setup=lambda: make_image(pvdisk),
        qemu_extra=["-drive", f"file={pvdisk},if=none,format=raw,id=d0", "-device", "virtio-blk-device,drive=d0"],
        append='semihosting dom=drv,driver,mem=64,args="driver disk=virtio" '
               'dom=img,args="blk=image backend=1" dom=ram,args="blk=rw backend=1 mb=2"',
        expect=banner + [
            ("any", r"^\[drv\] guest: virtio-blk at 0xa003e00, virq \d+: 16384 sectors"),
            ("any", r"^\[drv\] driver: dom2 \(img\): store connected \(port \d+\), console connected, vbd 51712: 16384 sectors on the virtio-blk"),
            ("any", r"^\[drv\] driver: dom3 \(ram\): store connected \(port \d+\), console connected, vbd 51712: 16384 sectors on the RAM disk"),
            ("any", r"^\[drv\] \[img\] guest: blk host header: sector 0 Ok\(\(\)\) ok"),
            ("any", r"^\[drv\] \[img\] guest: blk host data: 65536 bytes at sector 2048, 0 differ ok"),
            ("any", rf"^\[drv\] \[img\] guest: blk write: {pv_bytes} bytes at sector 4096, 0 errors ok"),
            ("any", r"^\[drv\] \[img\] guest: blk read back: 0 bytes differ, 0 errors ok"),
            ("any", r"^\[drv\] \[img\] guest: blk read past the end: Err\(Status\(-1\)\) ok"),
            ("any", r"^\[drv\] \[img\] guest: blk checks passed 7/7$"),
            ("any", r"^\[drv\] \[ram\] guest: blk checks passed 8/8$"),
            ("any", r"^\[drv\] driver: every guest is gone; powering off"),
        ] + clean_end,
        post=lambda text: check_image(pvdisk, pv_bytes),
        never=never + [r"PHYSDEVOP_eoi\(\d+\) refused"], exit_code=0))
    # Back-end death and restart on the virtio disk: the guest writes
    # before the driver domain is destroyed, gets errors (no hang) with its
    # console back on console_io, the manager creates a new driver domain
    # (DOMCTL_CDF_DRIVER, the virtio devices and a DMA window again), the
    # guest finds it (HVM_PARAM_DRIVER_DOMAIN), reconnects store, console
    # and vbd, reads what it wrote before and writes more; the host checks
    # both in the image.
    recdisk = os.path.join(out_dir, "blk-reconnect.img")
    rec = r"524288 bytes at sector"
    out.append(dict(
        name="virt/blk-reconnect", board="virt", smp=2, timeout=120,
        setup=lambda: make_image(recdisk),
        qemu_extra=["-drive", f"file={recdisk},if=none,format=raw,id=d0", "-device", "virtio-blk-device,drive=d0"],
        append='semihosting dom=drv,driver,mem=64,args="driver disk=virtio" '
               'dom=g1,args="blk=reconnect persist=1" '
               'dom=mgr,priv,args="kill=drv@10000 respawn=drv2@10500 drvargs=disk=virtio"',
        expect=banner + [
            r"hyp: dom1 \(drv\): driver domain: 1 device\(s\), DMA window",
            ("any", r"^\[drv\] driver: dom2 \(g1\): store connected \(port \d+\), console connected, vbd 51712: 16384 sectors on the virtio-blk"),
            ("any", rf"^\[drv\] \[g1\] guest: blk before: write, flush, read back: {rec} 8192 through dom1, 0 errors, 0 differ ok"),
            r"^\[mgr\] guest: kill: destroyed dom1 \(drv\) at \d+ ms: Ok\(\(\)\)",
            ("any", r"hyp: 1 device\(s\) of the driver domain reset"),
            ("any", r"^\[g1\] guest: blk I/O failed when the back end went away: Some\(BackendGone\) after [1-9]\d* good reads \(0 bytes differed\) at \d+ ms ok"),
            ("any", r"^\[g1\] guest: blk next read fails too: Err\(BackendGone\) ok"),
            ("any", r"^\[g1\] guest: blk: waiting for a new driver domain"),
            r"^\[mgr\] guest: kill: created driver domain dom4 \(drv2, \"driver disk=virtio\"\) at \d+ ms",
            ("any", r"hyp: dom4 \(drv2\): driver domain: 1 device\(s\), DMA window"),
            ("any", r"^\[drv2\] guest: virtio-blk at 0xa003e00, virq \d+: 16384 sectors"),
            ("any", r"^\[drv2\] driver: dom2 \(g1\): store connected \(port \d+\), console connected, vbd 51712: 16384 sectors on the virtio-blk"),
            ("any", r"^\[drv2\] \[g1\] guest: blk store and console reconnected: to dom4 \(generation 2\) after \d+ ms: Ok\(4\) ok"),
            ("any", r"^\[drv2\] \[g1\] guest: blk vbd reconnected: Ok\(\(\)\), 16384 sectors ok"),
            ("any", rf"^\[drv2\] \[g1\] guest: blk data written before the death: {rec} 8192, 0 errors, 0 differ ok"),
            ("any", rf"^\[drv2\] \[g1\] guest: blk after: write, flush, read back: {rec} 9216 through dom4, 0 errors, 0 differ ok"),
            ("any", r"^\[drv2\] \[g1\] guest: blk checks passed 7/7$"),
            ("any", r"^\[drv2\] driver: every guest is gone; powering off"),
        ] + clean_end,
        post=lambda text: check_reconnect_image(recdisk) + free_memory_back(text),
        never=never + [r"PHYSDEVOP_eoi\(\d+\) refused"], exit_code=0))
    return out
