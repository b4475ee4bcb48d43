#!/usr/bin/env python3
"""Benchmarks under `qemu -icount shift=0,sleep=off`: virtual time advances
one nanosecond per guest instruction, so counter deltas count instructions
exactly and repeatably, whatever the host is doing.

Prints one line per figure, `BENCH <name> <value> <unit>`, and writes
out/bench.json. Not part of scripts/test: benchmarks measure, tests assert.
"""
import json
import os
import re
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(TOP, "out")
NS_PER_S = 1_000_000_000


def boot(append, extra=()):
    cmd = ["qemu-system-aarch64", "-M", "virt,virtualization=on,gic-version=3", "-cpu", "cortex-a72",
           "-m", "1G", "-nographic", "-no-reboot", "-semihosting", "-monitor", "none",
           "-icount", "shift=0,sleep=off", "-kernel", os.path.join(OUT, "hyp-virt.elf"), *extra, "-append", append]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    text = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        sys.exit(f"benchmark boot failed (status {p.returncode}):\n{text}")
    return text


def per_iteration(text):
    """Instructions per loop iteration from the guest's BENCH line: counter
    ticks scaled by CNTFRQ (with shift=0, 1 instruction = 1 ns)."""
    m = re.search(r"BENCH null_hypercall_ticks (\d+) (\d+) (\d+)", text)
    f = re.search(r"guest: cntfrq (\d+)", text)
    if not m or not f:
        sys.exit("no BENCH line in the transcript:\n" + text)
    hvc, nop, n = (int(x) for x in m.groups())
    ns_per_tick = NS_PER_S / int(f.group(1))
    # The loop with `hvc` minus the same loop with `nop`, plus the `hvc`.
    return (hvc - nop) * ns_per_tick / n + 1


def ticks_per(text, name, n_group=3):
    """Instructions per item from `BENCH <name>_ticks <ticks> <base> <n>`
    (or `<ticks> <n>`): (ticks - base) scaled by CNTFRQ, divided by n."""
    f = re.search(r"guest: cntfrq (\d+)", text)
    freq = int(f.group(1)) if f else 62_500_000
    m = re.search(rf"BENCH {name}_ticks (\d+) (\d+)(?: (\d+))?", text)
    if not m:
        sys.exit(f"no BENCH {name} line in the transcript:\n" + text)
    a, b, c = m.groups()
    ticks, base, n = (int(a), int(b), int(c)) if n_group == 3 else (int(a), 0, int(b))
    return (ticks - base) * NS_PER_S / freq / n


def pv_benchmarks(results):
    """Event channels, grants and rings (guest modes `bench=pv` and
    `ring=front|back`, see guest-kernel)."""
    text = boot('semihosting dom=bench,args="bench=pv"')
    # The send loop minus the nop loop, plus the hvc itself.
    results["evtchn_send"] = (round(ticks_per(text, "evtchn_send") + 1, 1), "instructions")
    results["grant_map_unmap"] = (round(ticks_per(text, "grant_map_unmap"), 1), "instructions per pair")
    ring = 'semihosting dom=front,args="ring=front peer=2 {}" dom=back,args="ring=back peer=1"'
    text = boot(ring.format(""))
    results["ring_roundtrip_batched"] = (round(ticks_per(text, "ring_roundtrip", 2), 1), "instructions per pair")
    text = boot(ring.format("batch=1"))
    results["ring_roundtrip"] = (round(ticks_per(text, "ring_roundtrip", 2), 1), "instructions per pair")
    results["evtchn_wakeup"] = (round(ticks_per(text, "evtchn_wakeup", 2), 1), "instructions")


def bytes_per_second(text, name):
    """Bytes per virtual second from `BENCH <name>_ticks <ticks> <bytes>`."""
    f = re.search(r"guest: cntfrq (\d+)", text)
    freq = int(f.group(1)) if f else 62_500_000
    m = re.search(rf"BENCH {name}_ticks (\d+) (\d+)", text)
    if not m:
        sys.exit(f"no BENCH {name} line in the transcript:\n" + text)
    ticks, nbytes = int(m.group(1)), int(m.group(2))
    return nbytes * freq / ticks


def blk_benchmarks(results):
    """Block I/O through the paravirtual path (guest `blk=bench` against
    the driver domain's RAM disk) and done by the driver domain directly
    on a RAM disk of the same size (`driver bench`): bytes per virtual
    second (1 instruction = 1 ns), and PV as a fraction of direct."""
    text = boot('semihosting dom=drv,mem=64,priv,args="driver bench disk=16" dom=g,args="blk=bench backend=1"')
    def rate(name):
        return bytes_per_second(text, name)
    for op in ("read", "write"):
        for kind in ("seq", "rand"):
            pv, direct = rate(f"blk_pv_{kind}_{op}"), rate(f"blk_direct_{kind}_{op}")
            label = "" if kind == "seq" else "_4k_random"
            results[f"blk_{op}_throughput{label}"] = (round(pv / 2**20, 1), "MiB per virtual second (PV)")
            results[f"blk_{op}_throughput{label}_direct"] = (round(direct / 2**20, 1), "MiB per virtual second (direct)")
            results[f"blk_{op}_throughput{label}_ratio"] = (round(pv / direct, 3), "PV / direct")


# Boots per virtio-blk figure: QEMU completes virtio requests in its own
# threads, outside icount's clock, so a host that is busy now and then
# stretches one run; the median of several is what is reported.
VIRTIO_RUNS = 5


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


# The virtio disk of the block benchmarks: large enough that the one-time
# costs (a paravirtual front end's data pages are mapped by the back end on
# first use) weigh little.
VIRTIO_DISK_BYTES = 32 << 20


def virtio_boots(append, image):
    """Boots `append` VIRTIO_RUNS times, each on a fresh disk image of
    VIRTIO_DISK_BYTES; the transcripts."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import virtio_scenarios
    disk = os.path.join(OUT, image)
    texts = []
    for _ in range(VIRTIO_RUNS):
        virtio_scenarios.make_image(disk, VIRTIO_DISK_BYTES)
        texts.append(boot(append, ["-drive", f"file={disk},if=none,format=raw,id=d0",
                                   "-device", "virtio-blk-device,drive=d0"]))
    return texts


def virtio_benchmarks(results):
    """The driver domain directly on virtio-blk (guest mode `virtio=direct
    blkbench=0`: the whole 32 MiB disk read, then written, in 512 KiB I/Os,
    each as 128 KiB virtio requests in flight): bytes per virtual second,
    median of VIRTIO_RUNS boots."""
    texts = virtio_boots('semihosting dom=drv,driver,mem=32,args="virtio=direct blkbench=0 requests=0"',
                         "virtio-bench.img")
    for name in ("read", "write"):
        rate = median(bytes_per_second(t, f"blk_{name}_throughput_direct") for t in texts)
        results[f"blk_{name}_throughput_virtio_direct"] = (round(rate / 2**20, 1), "MiB per virtual second (driver domain on virtio-blk)")


def net_benchmarks(results):
    """A checked TCP stream between two guests through the driver domain's
    bridge (netfront -> vif -> bridge -> vif -> netfront, one CPU):
    bytes per virtual second."""
    n = 4 << 20
    text = boot('semihosting dom=drv,mem=64,priv,args="driver disk=1" '
                f'dom=srv,args="net=serve backend=1 ip=10.0.2.15 requests=0 stream={n}" '
                f'dom=cli,args="net=ping backend=1 ip=10.0.2.16 peer=10.0.2.15 count=1 fetch=0 stream={n}"')
    rate = bytes_per_second(text, "net_stream")
    results["net_throughput"] = (round(rate / 2**20, 2), "MiB per virtual second (TCP, guest to guest through the bridge)")


def net_uplink_benchmarks(results):
    """The same checked TCP stream (4 MiB of netsvc's pattern, which the
    host's sink checks) to a sink on the host through QEMU's user network:
    sent by the driver domain itself on virtio-net (`virtio=direct
    stream=`), and by a guest through netfront -> vif -> bridge -> the same
    virtio-net (`net=ping peer=10.0.2.2 spin=1`), one CPU: bytes per
    virtual second, median of VIRTIO_RUNS boots each, and PV / direct."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import virtio_scenarios
    n = 4 << 20
    nic = ["-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0"]

    def rate(append, name):
        rates = []
        for _ in range(VIRTIO_RUNS):
            sink = virtio_scenarios.StreamSink()
            sink.start()
            text = boot(append(sink.port), nic)
            problems = sink.check(n)
            if problems:
                sys.exit("uplink stream: " + "; ".join(problems) + "\n" + text)
            rates.append(bytes_per_second(text, name))
        return median(rates)
    direct = rate(lambda p: f'semihosting dom=drv,driver,mem=32,args="virtio=direct requests=0 stream={n} port={p}"',
                  "net_uplink_direct")
    pv = rate(lambda p: 'semihosting dom=drv,driver,mem=64,args="driver uplink disk=1" '
                        f'dom=cli,args="net=ping backend=1 ip=10.0.2.15 peer=10.0.2.2 count=0 fetch=0 '
                        f'stream={n} port={p} spin=1"', "net_stream")
    results["net_throughput_uplink"] = (round(pv / 2**20, 2), "MiB per virtual second (TCP, guest to host through bridge and virtio-net)")
    results["net_throughput_uplink_direct"] = (round(direct / 2**20, 2), "MiB per virtual second (TCP, driver domain to host on virtio-net)")
    results["net_throughput_uplink_ratio"] = (round(pv / direct, 3), "PV / direct")


def blk_virtio_benchmarks(results):
    """The paravirtual path on the virtio disk (driver `disk=virtio`, guest
    `blk=bench rand=0`: the whole 32 MiB disk read, then written, in 512 KiB
    I/Os, the same data as virtio_benchmarks), median of VIRTIO_RUNS boots,
    against the driver domain directly on it (virtio_benchmarks, first)."""
    texts = virtio_boots('semihosting dom=drv,driver,mem=64,args="driver disk=virtio" '
                         'dom=g,args="blk=bench backend=1 rand=0"', "virtio-pv-bench.img")
    for op in ("read", "write"):
        pv = median(bytes_per_second(t, f"blk_pv_seq_{op}") for t in texts) / 2**20
        direct = results[f"blk_{op}_throughput_virtio_direct"][0]
        results[f"blk_{op}_throughput_virtio"] = (round(pv, 1), "MiB per virtual second (PV on virtio-blk)")
        results[f"blk_{op}_throughput_virtio_ratio"] = (round(pv / direct, 3), "PV / direct on virtio-blk")


def main():
    results = {}
    # The floor: an EL2 handler that only returns.
    floor = per_iteration(boot('semihosting bench-floor tick_ms=200 dom=bench,args="bench"'))
    results["hvc_floor"] = (round(floor, 1), "instructions")
    full = per_iteration(boot('semihosting dom=bench,args="bench"'))
    results["null_hypercall"] = (round(full, 1), "instructions")
    # Domain-to-domain switch: two domains yielding to each other.
    text = boot('semihosting dom=a,args="bench=switch" dom=b,args="bench=switch"')
    results["vcpu_switch"] = (round(ticks_per(text, "vcpu_switch", 2), 1), "instructions")
    # Timer expiry to the guest's handler, the vCPU running.
    text = boot('semihosting dom=t,args="bench=timer"')
    results["timer_virq_latency"] = (round(ticks_per(text, "timer_virq_latency", 2), 1), "instructions")
    # The PV MMU: instructions per descriptor, batched and trapped.
    text = boot('semihosting dom=bench,args="bench=mmu"')
    f = re.search(r"guest: cntfrq (\d+)", text)
    rows = re.findall(r"BENCH (pt_update_\w+)_ticks (\d+) (\d+) (\d+)", text)
    if not f or len(rows) != 4:
        sys.exit("no pt_update BENCH lines in the transcript:\n" + text)
    ns_per_tick = NS_PER_S / int(f.group(1))
    for name, t, n, overhead in rows:
        results[name] = (round((int(t) - int(overhead)) * ns_per_tick / int(n), 1), "instructions per entry")
    pv_benchmarks(results)
    blk_benchmarks(results)
    virtio_benchmarks(results)
    net_benchmarks(results)
    net_uplink_benchmarks(results)
    blk_virtio_benchmarks(results)
    for k, (v, unit) in results.items():
        print(f"BENCH {k} {v} {unit}")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "bench.json"), "w") as f:
        json.dump({k: {"value": v, "unit": u} for k, (v, u) in results.items()}, f, indent=2)
    print(f"wrote {os.path.join(OUT, 'bench.json')}")


if __name__ == "__main__":
    main()
