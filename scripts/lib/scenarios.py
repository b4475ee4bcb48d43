#!/usr/bin/env python3
"""QEMU scenarios: boot a configuration, read the console transcript, check it.

Each scenario boots QEMU once and waits for it to exit by itself (the monitor
powers the machine off when its domains have ended; a monitor panic exits
through semihosting with a non-zero status). The timeout is only a safety
net. Transcripts are kept in out/transcripts/ for inspection.

Usage: scenarios.py [--only SUBSTRING] [--list]
"""
import argparse
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import virtio_scenarios  # noqa: E402
import net_scenarios  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(TOP, "out")
TIMEOUT = 120


def rpi4_dtb():
    for f in (os.path.join(TOP, "platform/dtb/bcm2711-rpi-4-b.dtb"),
              os.path.join(os.environ.get("RPI4_DTB_CACHE", "/var/cache/pvh"), "bcm2711-rpi-4-b.dtb")):
        if os.path.exists(f) and os.path.getsize(f) > 0:
            return f
    sys.exit("no bcm2711-rpi-4-b.dtb: run scripts/setup")


def qemu(board, smp=1, icount=False):
    base = ["qemu-system-aarch64", "-nographic", "-no-reboot", "-semihosting",
            "-monitor", "none", "-serial", "stdio"]
    if icount:
        # Deterministic: every CPU runs at the same virtual speed.
        base += ["-icount", "shift=0,sleep=off"]
    if board == "virt":
        return base + ["-M", "virt,virtualization=on,gic-version=3", "-cpu", "cortex-a72",
                       "-m", "1G", "-smp", str(smp), "-kernel", os.path.join(OUT, "hyp-virt.elf")]
    if board == "virt-gicv2":
        return base + ["-M", "virt,virtualization=on,gic-version=2", "-cpu", "cortex-a72",
                       "-m", "1G", "-smp", str(smp), "-kernel", os.path.join(OUT, "hyp-virt.elf")]
    if board == "raspi4b":
        return base + ["-M", "raspi4b", "-kernel", os.path.join(OUT, "hyp-rpi4.elf"), "-dtb", rpi4_dtb()]
    if board == "raspi4b-kernel8":
        # The flat kernel8.img, entered at EL2 with the tree in x0 as the
        # Raspberry Pi firmware does.
        return base + ["-M", "raspi4b", "-kernel", os.path.join(OUT, "kernel8.img"), "-dtb", rpi4_dtb()]
    raise ValueError(board)


BOARDS = ["virt", "virt-gicv2", "raspi4b"]

# Lines every boot prints, per board.
BANNER = [r"pvh: a paravirtual microhypervisor for AArch64"]
FOUND = {
    "virt": [r"hyp: entered at EL2, running at EL2",
             r"hyp: memory: 0x40000000\.\.0x80000000 \(1024 MiB\)",
             r"hyp: console: PL011 at 0x9000000",
             r"hyp: interrupt controller: GICv3, distributor 0x8000000, redistributors 0x80a0000",
             r"hyp: timer: 62500000 Hz, hypervisor timer INTID 26",
             r"hyp: power-off: PSCI SYSTEM_OFF via smc"],
    "virt-gicv2": [r"hyp: entered at EL2, running at EL2",
                   r"hyp: memory: 0x40000000\.\.0x80000000 \(1024 MiB\)",
                   r"hyp: console: PL011 at 0x9000000",
                   r"hyp: interrupt controller: GICv2, distributor 0x8000000, CPU interface 0x8010000",
                   r"hyp: power-off: PSCI SYSTEM_OFF via smc"],
    "raspi4b": [r"hyp: entered at EL3, running at EL2",
                r"hyp: board: Raspberry Pi 4 Model B",
                r"hyp: memory: 0x0\.\.0x3c000000 \(960 MiB\)",
                r"hyp: console: PL011 at 0xfe201000",
                r"hyp: interrupt controller: GICv2, distributor 0xff841000, CPU interface 0xff842000",
                r"hyp: power-off: Broadcom PM block at 0xfe100000",
                r"hyp: cpus: 4"],
}
CLEAN_END = [r"hyp: all domains have ended", r"powering off"]
NEVER = [r"MONITOR PANIC", r"MONITOR FAULT", r"FAIL"]


def check(name, text, rc, expect, never, exit_code):
    problems = []
    if rc != exit_code:
        problems.append(f"QEMU exit status {rc}, expected {exit_code}")
    pos = 0
    for pat in expect:
        if isinstance(pat, tuple):  # ("anywhere", regex): order not checked
            if not re.search(pat[1], text, re.M):
                problems.append(f"missing: {pat[1]}")
            continue
        m = re.compile(pat, re.M).search(text, pos)
        if not m:
            where = "after the previous match" if re.search(pat, text, re.M) else "anywhere"
            problems.append(f"missing ({where}): {pat}")
        else:
            pos = m.end()
    for pat in never:
        m = re.search(pat, text, re.M)
        if m:
            problems.append(f"unexpected: {m.group(0)!r}")
    return problems


def scenarios():
    out = []
    for b in BOARDS:
        # The default configuration: two domains, one loaded as ELF and one
        # as an arm64 Image, interleaving their output through yields.
        out.append(dict(
            name=f"{b}/default", board=b, append="semihosting",
            expect=BANNER + FOUND[b] + [
                r"hyp: dom1 \(hello\): 16 MiB, 1 vcpu\(s\), weight 256, Elf kernel, entry 0x40080000",
                r"hyp: dom2 \(world\): 16 MiB, 1 vcpu\(s\), weight 256, Image kernel, entry 0x40080000",
                ("any", r"^\[hello\] guest: booted at EL1, device tree at 0x40e00000"),
                ("any", r"^\[world\] guest: booted at EL1, device tree at 0x40e00000"),
                ("any", r"^\[hello\] guest: memory 0x40000000\.\.0x41000000 \(16 MiB\)"),
                ("any", r'^\[hello\] guest: command line "hello"'),
                ("any", r"^\[hello\] guest: hypervisor xen,xen-1\.\d+ abi 1\.\d+"),
                ("any", r"^\[hello\] guest: hello, world"),
                ("any", r"^\[world\] guest: hello, world"),
                ("any", r"^\[hello\] guest: working 3"),
                ("any", r"^\[world\] guest: working 3"),
            ] + ([
                # On one CPU, yields interleave the two domains (on the Pi's
                # four they run side by side).
                ("any", r"\[world\] guest: working 1(.|\n)*\[hello\] guest: working 3"),
            ] if b != "raspi4b" else []) + [
                ("any", r"hyp: dom1 \(hello\): shut down \(poweroff\)"),
                ("any", r"hyp: dom2 \(world\): shut down \(poweroff\)"),
            ] + CLEAN_END,
            never=NEVER, exit_code=0))
        # Bad input: each domain tries one thing; the monitor answers or ends
        # that domain, and the next domain still runs.
        bad = " ".join([
            'dom=enosys,args="test=enosys"',
            'dom=efault,args="test=efault"',
            'dom=einval,args="test=einval"',
            'dom=s2fault,args="test=s2fault"',
            'dom=undef,args="test=undef"',
            'dom=smc,args="test=smc"',
            'dom=panic,args="test=panic"',
            'dom=last,args="hello"',
        ])
        out.append(dict(
            name=f"{b}/bad-input", board=b, append="semihosting " + bad,
            expect=BANNER + [
                ("any", r"^\[enosys\] guest: check .*99.*: got -38 \(ENOSYS\) ok"),
                ("any", r"^\[enosys\] guest: checks passed (\d+)/\1"),
                ("any", r"hyp: dom1 \(enosys\): shut down \(poweroff\)"),
                ("any", r"^\[efault\] guest: check .*: got -14 \(EFAULT\) ok"),
                ("any", r"^\[efault\] guest: checks passed (\d+)/\1"),
                ("any", r"hyp: dom2 \(efault\): shut down \(poweroff\)"),
                ("any", r"^\[einval\] guest: check .*: got -22 \(EINVAL\) ok"),
                ("any", r"^\[einval\] guest: checks passed (\d+)/\1"),
                ("any", r"hyp: dom3 \(einval\): shut down \(poweroff\)"),
                ("any", r"^\[s2fault\] guest: touching memory outside my own"),
                ("any", r"hyp: dom4 \(s2fault\): vcpu 0: unhandled synchronous exception: Data abort from a lower EL \(EC 0x24\)"),
                ("any", r"hyp:   translation fault \(level \d\) on a read at guest-physical 0x80000000, outside the domain's memory map"),
                ("any", r"hyp:   ESR 0x[0-9a-f]{8}  FAR 0x80000000  ELR 0x40[0-9a-f]{6}"),
                ("any", r"hyp: dom4 \(s2fault\): ended after a fault; the other domains go on"),
                ("any", r"hyp: dom4 \(s2fault\): \d+ frames scrubbed and freed"),
                ("any", r"^\[undef\] guest: executing an undefined instruction"),
                ("any", r"hyp: dom5 \(undef\): shut down \(crash\)"),
                ("any", r"^\[smc\] guest: powering off through PSCI SYSTEM_OFF via smc"),
                ("any", r"hyp: dom6 \(smc\): shut down \(poweroff\)"),
                ("any", r"^\[panic\] .*deliberate panic"),
                ("any", r"hyp: dom7 \(panic\): shut down \(crash\)"),
                ("any", r"^\[last\] guest: hello, world"),
                ("any", r"hyp: dom8 \(last\): shut down \(poweroff\)"),
                ("any", r"hyp:   dom4 \(s2fault\): fault"),
            ] + CLEAN_END,
            never=[r"MONITOR PANIC", r"MONITOR FAULT", r"BUG: still running", r"\bFAIL\b"], exit_code=0))
    for b in BOARDS:
        # Two domains that never yield, with interrupts masked: only the
        # monitor's timer tick (EL2 physical timer through the GIC) moves the
        # CPU between them, so their progress lines interleave.
        out.append(dict(
            name=f"{b}/preemption", board=b, append='semihosting tick_ms=1 dom=spin1,args="spin" dom=spin2,args="spin"',
            expect=BANNER + [
                ("any", r"\[spin2\] guest: spin 1/4(.|\n)*\[spin1\] guest: spin done"),
                ("any", r"\[spin1\] guest: spin 1/4(.|\n)*\[spin2\] guest: spin done"),
                ("any", r"^\[spin1\] guest: spin done, checksum 0x[0-9a-f]+"),
                ("any", r"^\[spin2\] guest: spin done, checksum 0x[0-9a-f]+"),
                ("any", r"hyp: all domains have ended \(([2-9]|\d\d+) timer interrupts\)"),
            ] + CLEAN_END,
            never=NEVER, exit_code=0))
    for b in ["virt", "raspi4b"]:
        # The PV MMU: a kernel that builds its address spaces only through
        # batched, validated hypercalls, next to one that tries every
        # forbidden operation, and an ordinary domain.
        out.append(dict(
            name=f"{b}/pv-mmu", board=b,
            append='semihosting dom=mmu,args="mmu" dom=bad,args="test=mmu" dom=plain,args="hello"',
            expect=BANNER + [
                ("any", r"^\[mmu\] guest: mmu: kernel address space: \d+ updates in \d+ mmu_update calls, \d+ tables"),
                ("any", r"^\[mmu\] guest: mmu: MMU on, running from the kernel's own tables: ok"),
                ("any", r"^\[mmu\] guest: mmu: TTBR1 alias of the heap: ok"),
                ("any", r"^\[mmu\] guest: mmu: task 2: address space at 0x[0-9a-f]+, 6 updates in one batch"),
                ("any", r"^\[mmu\] guest: mmu: task 0 round 1: back by svc with x0 = 400: ok"),
                ("any", r"^\[mmu\] guest: mmu: task 2 round 1: back by svc with x0 = 404: ok"),
                ("any", r"^\[mmu\] guest: mmu: task address spaces destroyed, their tables free again: ok"),
                ("any", r"^\[mmu\] guest: mmu: done"),
                ("any", r"hyp: dom1 \(mmu\): pv mmu: \d+ updates, 0 trapped stores, 0 refused, \d+ tables validated"),
                ("any", r"hyp: dom1 \(mmu\): shut down \(poweroff\)"),
                ("any", r"^\[bad\] guest: check map_table_writable: got EPERM, done 1/3 ok"),
                ("any", r"^\[bad\] guest: check map_foreign_frame: got EPERM, done 0/1 ok"),
                ("any", r"^\[bad\] guest: check reserved_bit: got EINVAL, done 0/1 ok"),
                ("any", r"^\[bad\] guest: check unpin_live_base: got EBUSY ok"),
                ("any", r"^\[bad\] guest: check ttbr_unvalidated_table: got EINVAL ok"),
                ("any", r"^\[bad\] guest: check msr_ttbr_unvalidated_table: got ESR 0x2000000 ok"),
                ("any", r"^\[bad\] guest: check request_count_overflow: got -22, pdone 0xa5a5 ok"),
                ("any", r"^\[bad\] guest: check request_vector_leaves_memory: got -14, done 2/3 ok"),
                ("any", r"^\[bad\] guest: check direct_store_valid: got 0x[0-9a-f]+ ok"),
                ("any", r"hyp: dom2: refused a direct store into the table at 0x[0-9a-f]+ \(EPERM"),
                ("any", r"^\[bad\] guest: check direct_store_bad_descriptor: got ESR 0x9600004f, entry 0x0 ok"),
                ("any", r"^\[bad\] guest: check state_unchanged_by_refusals: .* ok"),
                ("any", r"^\[bad\] guest: checks passed (\d+)/\1"),
                ("any", r"^\[bad\] guest: check direct_store_pair: got 0x[0-9a-f]+ 0x[0-9a-f]+ ok"),
                ("any", r"^\[bad\] guest: check direct_store_pair_refused: got ESR 0x9600004f, entries 0x0 0x0 ok"),
                ("any", r"^\[bad\] guest: check direct_store_post_index: got 0x[0-9a-f]+, base \+8 ok"),
                ("any", r"^\[bad\] guest: check device_memory_executable: got EINVAL, done 0/1 ok"),
                ("any", r"^\[bad\] guest: check msr_mair_class_change_with_tables: got ESR 0x2000000 ok"),
                ("any", r"^\[bad\] guest: check long_batch_continued: got 0, done 1024/1024, entries true ok"),
                ("any", r"hyp: dom2 \(bad\): pv mmu: \d+ updates, 4 trapped stores, 16 refused, \d+ tables validated, 1 continued"),
                ("any", r"hyp: dom2 \(bad\): shut down \(poweroff\)"),
                ("any", r"^\[plain\] guest: hello, world"),
                ("any", r"hyp: dom3 \(plain\): shut down \(poweroff\)"),
            ] + CLEAN_END,
            never=NEVER, exit_code=0))
    for b in BOARDS:
        # Event channels, grants and a shared ring between two domains:
        # 100,000 request/response pairs with checksums on both sides.
        pair = 'semihosting dom=front,args="ring=front peer=2{}" dom=back,args="ring=back peer=1"'
        out.append(dict(
            name=f"{b}/ring", board=b, append=pair.format(""),
            expect=BANNER + [
                ("any", r"^\[back\] guest: ring back: bound port \d+ to dom1 port 1 after \d+ retries; ring mapped"),
                ("any", r"^\[front\] guest: ring front: 100000 pairs ok, checksum (0x[0-9a-f]{16})"),
                ("any", r"(?s)ring (?:front|back): 100000 (?:pairs ok|requests served), checksum (0x[0-9a-f]{16}).*"
                        r"ring (?:front|back): 100000 (?:pairs ok|requests served), checksum \1"),
                ("any", r"^\[front\] guest: ring front: revoke while mapped refused: ok"),
                ("any", r"^\[back\] guest: ring back: ring unmapped"),
                ("any", r"^\[front\] guest: ring front: revoked after the back end unmapped: ok"),
                ("any", r"hyp: dom1 \(front\): shut down \(poweroff\)"),
                ("any", r"hyp: dom2 \(back\): shut down \(poweroff\)"),
            ] + CLEAN_END,
            never=NEVER + [r"kept until"], exit_code=0))
        if b == "virt":
            # The same on two CPUs, the two domains on different ones.
            out.append(dict(
                name=f"{b}/ring-smp2", board=b, smp=2,
                append='semihosting dom=front,pin=0,args="ring=front peer=2" dom=back,pin=1,args="ring=back peer=1"',
                expect=BANNER + [
                    ("any", r"^\[front\] guest: ring front: 100000 pairs ok, checksum (0x[0-9a-f]{16})"),
                    ("any", r"(?s)ring (?:front|back): 100000 (?:pairs ok|requests served), checksum (0x[0-9a-f]{16}).*"
                            r"ring (?:front|back): 100000 (?:pairs ok|requests served), checksum \1"),
                    ("any", r"^\[front\] guest: ring front: revoked after the back end unmapped: ok"),
                ] + CLEAN_END,
                post=lambda text: same_free_memory(text) + different_cpus(text, ["front", "back"]),
                never=NEVER + [r"kept until"], exit_code=0))
        # The front end dies mid-stream: the back end sees its port unbound
        # and ENOTCONN, unmaps (the monitor frees the dead domain's last
        # frames only then) and shuts down cleanly.
        out.append(dict(
            name=f"{b}/ring-destroy", board=b, append=pair.format(" die=5000"),
            expect=BANNER + [
                ("any", r"^\[front\] guest: ring front: dying on purpose after 5000 pairs"),
                ("any", r"hyp: dom1: \d+ frames kept until other domains unmap its grants"),
                ("any", r"hyp: dom1 \(front\): shut down \(crash\)"),
                ("any", r"^\[back\] guest: ring back: the front end is gone after \d+ requests: "
                        r"port status unbound ok, send ENOTCONN ok"),
                ("any", r"hyp: \d+ frames of a destroyed domain freed after their last grant mapping went"
                        r"(.|\n)*\[back\] guest: ring back: done, shutting down cleanly"),
                ("any", r"hyp: dom2 \(back\): shut down \(poweroff\)"),
            ] + CLEAN_END,
            never=NEVER, exit_code=0))
        # Bad input to event channels, grants, physmap and the ring.
        out.append(dict(
            name=f"{b}/pvio-bad-input", board=b,
            append='semihosting dom=checks,args="test=pvio peer=2" dom=peer,args="work=1500"',
            expect=BANNER + [
                ("any", r"^\[checks\] guest: check bind_virq_twice: got Err\(EEXIST\) ok"),
                ("any", r"^\[checks\] guest: check loopback_upcall_delivered: got 1 ok"),
                ("any", r"^\[checks\] guest: check map_ro_grant_writable: got Err\(Status\(-8\)\) ok"),
                ("any", r"^\[checks\] guest: check ring_request_index_ahead: got Err\(ProducerOverflow"),
                ("any", r"^\[checks\] guest: checks passed (\d+)/\1"),
                ("any", r"hyp: dom1 \(checks\): shut down \(poweroff\)"),
            ] + CLEAN_END,
            never=NEVER, exit_code=0))
    for b in ["virt", "raspi4b"]:
        # The driver domain: device store, console back end, a block back
        # end per guest on a RAM disk prefilled with a known pattern.
        drv = 'semihosting dom=drv,mem=64,priv,args="driver disk=16" '
        rw = [r"guest: blk connected: 32768 sectors ok",
              r"guest: blk pattern read: 1 MiB, 0 bytes differ ok",
              r"guest: blk write: 4 MiB in \d+ I/Os of \d+ KiB, 0 errors ok",
              r"guest: blk flush: after the writes ok",
              r"guest: blk read back: checksum (0x[0-9a-f]{16}), written \1 ok",
              r"guest: blk single sector: sector \d+ ok",
              r"guest: blk pattern next to the writes: 4 KiB ok",
              r"guest: blk read past the end: Err\(Status\(-1\)\) ok",
              r"guest: blk checks passed 8/8$"]
        out.append(dict(
            name=f"{b}/blk-two-guests", board=b, smp=2,
            append=drv + 'dom=g1,args="blk=rw backend=1" dom=g2,args="blk=rw backend=1 seed=9"',
            expect=BANNER + [
                ("any", r"^\[drv\] driver: dom1: device store up; RAM disks of 16 MiB per guest"),
                ("any", r"^\[drv\] driver: dom2 \(g1\): store connected \(port \d+\), console connected, vbd 51712: 32768 sectors"),
                ("any", r"^\[drv\] driver: dom3 \(g2\): store connected \(port \d+\), console connected, vbd 51712: 32768 sectors"),
                ("any", r"^\[drv\] driver: dom2 \(g1\): vbd 51712 connected: ring-ref \d+, event-channel \d+, persistent grants yes"),
                # Early lines through console_io, the rest through the PV
                # console, labelled by the driver domain.
                ("any", r'^\[g1\] guest: command line "blk=rw backend=1"'),
                ("any", r"^\[drv\] \[g1\] guest: blk: store and console connected through dom1"),
                ("any", r"^\[drv\] \[g2\] guest: blk: store and console connected through dom1"),
            ] + [("any", rf"^\[drv\] \[{g}\] {p}") for g in ("g1", "g2") for p in rw] + [
                ("any", r"^\[drv\] driver: dom2 \(g1\) gone: vbd \d+ ok, 1 refused, 0 failed; 5124 KiB read, 4096 KiB written"),
                ("any", r"^\[drv\] driver: dom3 \(g2\) gone: vbd \d+ ok, 1 refused, 0 failed; 5124 KiB read, 4096 KiB written"),
                ("any", r"^\[drv\] driver: every guest is gone; powering off"),
                ("any", r"hyp: dom1 \(drv\): shut down \(poweroff\)"),
            ] + CLEAN_END,
            post=same_free_memory,
            never=NEVER, exit_code=0))
        bad = ["zero segments: Ok\(-1\)", "12 segments: Ok\(-1\)", "255 segments: Ok\(-1\)",
               "first_sect after last_sect: Ok\(-1\)", "last_sect 8: Ok\(-1\)", "past the end: Ok\(-1\)",
               "sector overflow: Ok\(-1\)", "grant never given: Ok\(-1\)", "unknown operation: Ok\(-1\)",
               "discard unsupported: Ok\(-2\)", "write with a bad grant: Ok\(-1\), disk unchanged true",
               "good read after bad requests: Ok\(\(\)\)",
               "store: unknown message type: Err\(Store\(EINVAL\)\)", "store: path without NUL: Err\(Store\(E\w+\)\)",
               "store: oversize header: Err\(Store\(E2BIG\)\)",
               "store: writing the back end's sectors: Err\(Store\(EACCES\)\)",
               "store: another domain's home: Err\(Store\(E(ACCES|NOENT)\)\)", "store: still answering: Ok\(\"1\"\)",
               "store: corrupt ring indices: Err\((Gone|Protocol)\)", "store: port closed by the driver domain: unbound true",
               "store: error reported in the page: error 2", "block device after the store is gone: Ok\(\(\)\)"]
        out.append(dict(
            name=f"{b}/blk-bad-guest", board=b, smp=2,
            append=drv + 'dom=good,args="blk=rw backend=1" dom=evil,args="blk=bad backend=1"',
            expect=BANNER + [("any", rf"^\[drv\] \[evil\] guest: blk {p} ok") for p in bad] + [
                ("any", r"^\[drv\] \[evil\] guest: blk checks passed 22/22$"),
                ("any", r"^\[drv\] driver: dom3 \(evil\): store ring indices corrupt: stopped serving it, port closed"),
                ("any", r"^\[drv\] driver: dom3 \(evil\) gone: vbd \d+ ok, 9 refused, 2 failed"),
            ] + [("any", rf"^\[drv\] \[good\] {p}") for p in rw] + [
                ("any", r"^\[drv\] driver: every guest is gone; powering off"),
            ] + CLEAN_END,
            post=same_free_memory,
            never=NEVER, exit_code=0))
    # Console input: the serial line's input goes to the driver domain
    # (VIRQ_CONSOLE, CONSOLEIO_read), whose console mux sends it to one
    # guest at a time (Ctrl-] then a domain id switches); the guests echo
    # the lines they read from their console's `in` ring. On virt the
    # driver domain is configured `driver`, on raspi4b `priv` (input goes
    # to the driver domain if there is one, else the privileged domain).
    for b, intid, role in [("virt", 33, "driver"), ("virt-gicv2", 33, "driver"), ("raspi4b", 153, "priv")]:
        out.append(dict(
            name=f"{b}/console-input", board=b, smp=2,
            append=f'semihosting dom=drv,{role},mem=64,args="driver" '
                   'dom=g1,args="echo backend=1" dom=g2,args="echo backend=1"',
            interact=console_input_script,
            expect=BANNER + [
                rf"hyp: console input: UART INTID {intid} -> dom1 \(drv\), VIRQ_CONSOLE and CONSOLEIO_read",
                ("any", r"^\[drv\] driver: console input: Ctrl-\] then a domain id"),
                r"^\[drv\] \[console\] input to g1 \(dom2\)$",
                r"^\[drv\] \[g1\] echo: hello from one$",
                r"^\[drv\] \[console\] input to g2 \(dom3\)$",
                r"^\[drv\] \[g2\] echo: hello from two$",
                r"^\[drv\] \[console\] \*dom3 g2$",
                r"^\[drv\] \[console\] no console for dom7$",
                r"^\[drv\] \[console\] input to g1 \(dom2\)$",
                r"^\[drv\] \[g1\] echo: back to one$",
                r"^\[drv\] \[g1\] echo: quit$",
                r"^\[drv\] \[g1\] guest: echo: bye after 3 line\(s\)$",
                r"^\[drv\] \[console\] input to nobody \(g1 is gone\)$",
                r"^\[drv\] \[console\] input to g2 \(dom3\)$",
                r"^\[drv\] \[g2\] echo: quit$",
                r"^\[drv\] \[g2\] guest: echo: bye after 2 line\(s\)$",
                ("any", r"^\[drv\] driver: every guest is gone; powering off"),
            ] + CLEAN_END,
            # Each line reaches the guest that had the input, and only it.
            never=NEVER + [r"\[g2\] echo: hello from one", r"\[g1\] echo: hello from two",
                           r"\[g2\] echo: back to one", r"echo: .*\^\]"],
            exit_code=0))
    # Without a driver domain the privileged domain owns the serial input
    # (as Xen's dom0): `echo` without a back end reads it with
    # CONSOLEIO_read on VIRQ_CONSOLE; another domain gets EPERM.
    out.append(dict(
        name="virt/console-input-privileged", board="virt",
        append='semihosting dom=p,args="echo" dom=q,args="echo"',
        interact=console_input_privileged_script,
        expect=BANNER + [
            r"hyp: console input: UART INTID 33 -> dom1 \(p\), VIRQ_CONSOLE and CONSOLEIO_read",
            ("any", r"^\[q\] guest: echo: the serial line's input is not mine \(EPERM\)$"),
            ("any", r"hyp: dom2 \(q\): shut down \(poweroff\)"),
            r"^\[p\] guest: echo: ready, reading lines from the serial line",
            r"^\[p\] echo: typed to the privileged domain$",
            r"^\[p\] echo: quit$",
            r"^\[p\] guest: echo: bye after 2 line\(s\)$",
        ] + CLEAN_END,
        never=NEVER, exit_code=0))
    # Input nobody reads (the default configuration's case: the privileged
    # domain has no console reader): the monitor keeps 1024 bytes, then
    # drops and counts, and says so once; the domains are not disturbed.
    out.append(dict(
        name="virt/console-input-unread", board="virt",
        append='semihosting dom=mgr,priv,args="kill=w@5000" dom=w,args="idle"',
        interact=console_input_unread_script,
        expect=BANNER + [
            r"hyp: console input: UART INTID 33 -> dom1 \(mgr\), VIRQ_CONSOLE and CONSOLEIO_read",
            r"hyp: console input: buffer full \(1024 bytes\), dropping input until dom1 reads it \(\d+ dropped so far\)",
            ("any", r"^\[mgr\] guest: kill: destroyed dom2 \(w\) at \d+ ms: Ok\(\(\)\)"),
        ] + CLEAN_END,
        never=NEVER + [r"(?s)buffer full.*buffer full"], exit_code=0))
    # Back-end death: an unprivileged driver domain destroyed by the
    # manager while a guest reads; the guest gets an error, not a hang,
    # and shuts down cleanly, its console back on console_io.
    out.append(dict(
        name="virt/blk-backend-death", board="virt", smp=2,
        append='semihosting dom=drv,driver,mem=64,args="driver disk=16" '
               'dom=g1,args="blk=until-gone backend=1" dom=mgr,priv,args="kill=drv@4000"',
        expect=BANNER + [
            ("any", r"^\[drv\] driver: dom2 \(g1\): vbd 51712 connected: ring-ref \d+, event-channel \d+, persistent grants yes"),
            ("any", r"^\[drv\] \[g1\] guest: blk: reading until the back end goes away"),
            ("any", r"^\[mgr\] guest: kill: destroyed dom1 \(drv\) at \d+ ms: Ok\(\(\)\)"),
            ("any", r"^\[g1\] guest: blk: I/O failed after [1-9]\d* good I/Os \(0 bytes differed\): BackendGone"),
            ("any", r"^\[g1\] guest: blk: next read: Err\(BackendGone\); shutting down"),
            ("any", r"hyp: dom2 \(g1\): shut down \(poweroff\)"),
        ] + CLEAN_END,
        post=same_free_memory,
        never=NEVER, exit_code=0))
    # Back-end death and restart with RAM disks (the virtio-disk version
    # is virt/blk-reconnect): the guest's I/O fails, the manager creates
    # a new driver domain, the guest finds it, reconnects store, console
    # and vbd, and checks I/O on the new (freshly filled) RAM disk.
    rec = r"524288 bytes at sector"
    out.append(dict(
        name="raspi4b/blk-reconnect", board="raspi4b",
        append='semihosting dom=drv,driver,mem=64,args="driver" '
               'dom=g1,args="blk=reconnect" '
               'dom=mgr,priv,args="kill=drv@15000 respawn=drv2@15500"',
        expect=BANNER + [
            ("any", r"^\[drv\] driver: dom2 \(g1\): store connected \(port \d+\), console connected, vbd 51712: 16384 sectors on the RAM disk"),
            ("any", rf"^\[drv\] \[g1\] guest: blk before: write, flush, read back: {rec} 8192 through dom1, 0 errors, 0 differ ok"),
            r"^\[mgr\] guest: kill: destroyed dom1 \(drv\) at \d+ ms: Ok\(\(\)\)",
            ("any", r"^\[g1\] guest: blk I/O failed when the back end went away: Some\(BackendGone\) after [1-9]\d* good reads \(0 bytes differed\) at \d+ ms ok"),
            ("any", r"^\[g1\] guest: blk next read fails too: Err\(BackendGone\) ok"),
            ("any", r"^\[g1\] guest: blk: waiting for a new driver domain"),
            r"^\[mgr\] guest: kill: created driver domain dom4 \(drv2, \"driver\"\) at \d+ ms",
            ("any", r"^\[drv2\] driver: dom2 \(g1\): store connected \(port \d+\), console connected, vbd 51712: 16384 sectors on the RAM disk"),
            ("any", r"^\[drv2\] \[g1\] guest: blk store and console reconnected: to dom4 \(generation 2\) after \d+ ms: Ok\(4\) ok"),
            ("any", r"^\[drv2\] \[g1\] guest: blk vbd reconnected: Ok\(\(\)\), 16384 sectors ok"),
            ("any", rf"^\[drv2\] \[g1\] guest: blk the new RAM disk's pattern: {rec} 8192, 0 errors, 0 differ ok"),
            ("any", rf"^\[drv2\] \[g1\] guest: blk after: write, flush, read back: {rec} 9216 through dom4, 0 errors, 0 differ ok"),
            ("any", r"^\[drv2\] \[g1\] guest: blk checks passed 7/7$"),
            ("any", r"^\[drv2\] driver: every guest is gone; powering off"),
        ] + CLEAN_END,
        post=same_free_memory,
        never=NEVER, exit_code=0))
    # The Pi firmware's way in: a flat image at 0x80000, entered at EL2.
    out.append(dict(
        name="raspi4b-kernel8/firmware-entry", board="raspi4b-kernel8", append='semihosting dom=a,args="hello"',
        expect=BANNER + [r"hyp: entered at EL2, running at EL2, device tree at 0x8000000",
                         r"hyp: board: Raspberry Pi 4 Model B",
                         ("any", r"^\[a\] guest: hello, world")] + CLEAN_END,
        never=NEVER, exit_code=0))
    # A configuration the monitor refuses: a clear message and a clean end.
    out.append(dict(
        name="virt/bad-config", board="virt", append="semihosting dom=a,mem=999999",
        expect=BANNER + [r"hyp: bad command line .*: bad value '999999' for mem",
                         r"hyp: cannot start: bad command line"],
        never=NEVER, exit_code=0))
    # More memory than the machine has: refused with the numbers, others run.
    out.append(dict(
        name="virt/too-big", board="virt", append='semihosting dom=huge,mem=1024 dom=small,args="hello"',
        expect=BANNER + [r"hyp: dom1 \(huge\): cannot build: not enough memory: \d+ KiB needed, \d+ KiB free",
                         ("any", r"^\[small\] guest: hello, world")] + CLEAN_END,
        never=NEVER, exit_code=0))
    # Weighted shares: three CPU-bound domains, weights 1:2:4, each reports
    # the work units it got done by the same system time. Under icount every
    # CPU runs at the same speed, so units measure CPU time. On four CPUs
    # the CPU time the monitor charged is compared instead (see cpu_shares)
    # over 4 s: the domains' vCPUs come up one after another, and while
    # only some exist they get the idle CPUs (work conserving); over 2 s
    # that start-up alone put w1 at 0.157 against 0.143.
    for name, board, smp, opts, vcpus, ms in [("virt/weights-1cpu", "virt", 1, "", 1, 600),
                                              ("virt/weights-smp4", "virt", 4, "", 4, 4000),
                                              ("raspi4b/weights-1cpu", "raspi4b", 4, "maxcpus=1", 1, 600),
                                              ("raspi4b/weights-smp4", "raspi4b", 4, "", 4, 4000)]:
        doms = " ".join(f'dom=w{w},weight={w},vcpus={vcpus},args="work={ms}"' for w in (1, 2, 4))
        out.append(dict(
            name=name, board=board, smp=smp, icount=True, timeout=240,
            append=f"semihosting {opts} {doms}",
            expect=BANNER + [("any", rf"^\[w{w}\] guest: work fp registers intact on {vcpus} vcpu\(s\)")
                             for w in (1, 2, 4)] + CLEAN_END,
            post=(lambda text: shares(text, {"w1": 1, "w2": 2, "w4": 4}, 0.10)) if smp == 1 or opts else
                 (lambda text: cpu_shares(text, {"w1": 1, "w2": 2, "w4": 4}, 0.10)),
            never=NEVER, exit_code=0))
    for b in ["virt", "raspi4b"]:
        # set_timer_op deadlines waited for with wfi (the vCPU blocks).
        out.append(dict(
            name=f"{b}/timer", board=b, smp=2, append='semihosting dom=t,args="timer" dom=u,vcpus=2,args="timer"',
            expect=BANNER + [("any", r"^\[t\] guest: timer checks passed 8/8"),
                             ("any", r"^\[u\] guest: timer checks passed 8/8")] + CLEAN_END,
            never=NEVER, exit_code=0))
        # A vCPU taken down while it runs on another CPU and started again
        # at once begins at its new entry (its registers are off that CPU
        # first).
        out.append(dict(
            name=f"{b}/vcpu-restart", board=b, smp=2,
            append='semihosting dom=r,vcpus=2,args="test=vcpu-restart rounds=200"',
            expect=BANNER + [("any", r"^\[r\] guest: vcpu-restart restarts: 200/200 began at the entry with their round ok"),
                             ("any", r"^\[r\] guest: vcpu-restart checks passed 3/3")] + CLEAN_END,
            never=NEVER, exit_code=0))
        # Domain management from the privileged (first) domain: create and
        # destroy in a loop gives back every frame; refusals for bad input
        # and for an unprivileged caller.
        out.append(dict(
            name=f"{b}/domctl", board=b, smp=4, append='semihosting dom=mgr,args="mgr=5" dom=other,args="mgr=1"',
            expect=BANNER + [("any", r"^\[other\] guest: mgr: not privileged: 3/3 refusals as expected"),
                             ("any", r"^\[mgr\] guest: mgr round 5: created, paused, unpaused, reweighted and destroyed dom\d+"),
                             ("any", r"^\[mgr\] guest: mgr checks passed (\d+)/\1$")] + CLEAN_END,
            post=same_free_memory,
            never=NEVER, exit_code=0))
    for b in ["virt", "virt-gicv2"]:
        # Four CPUs, domains with several vCPUs; one crashes on purpose and
        # another faults: both are reported, the others finish.
        out.append(dict(
            name=f"{b}/smp-crash", board=b, smp=4,
            append='semihosting dom=busy,vcpus=4,args="work=400" dom=crash,vcpus=2,args="test=panic" '
                   'dom=fault,args="test=s2fault" dom=t,vcpus=2,args="timer"',
            expect=BANNER + [r"hyp: cpu 3 \(MPIDR 0x3\) online",
                             ("any", r"hyp: dom2 \(crash\): shut down \(crash\)"),
                             ("any", r"hyp: dom3 \(fault\): vcpu 0: unhandled synchronous exception"),
                             ("any", r"hyp: dom3 \(fault\): ended after a fault; the other domains go on"),
                             ("any", r"^\[busy\] guest: work fp registers intact on 4 vcpu\(s\)"),
                             ("any", r"^\[t\] guest: timer checks passed 8/8"),
                             ("any", r"hyp:   dom1 \(busy\): poweroff")] + CLEAN_END,
            post=same_free_memory,
            never=NEVER, exit_code=0))
    # Device passthrough: the driver domain gets QEMU's virtio-mmio block
    # and network devices (registers mapped, VIRQs, a DMA window); another
    # domain sees none of it and faults on the device's page.
    disk = os.path.join(OUT, "devices-test.img")
    out.append(dict(
        name="virt/devices", board="virt", smp=2,
        setup=lambda: open(disk, "wb").truncate(4 << 20),
        qemu_extra=["-drive", f"file={disk},if=none,format=raw,id=d0", "-device", "virtio-blk-device,drive=d0",
                    "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0"],
        append='semihosting dom=drv,driver,args="test=devices" dom=g,args="test=devices touch=0xa003e00"',
        expect=BANNER + [
            r"hyp: device: virtio-mmio network \(id 1\) at 0xa003c00, INTID 78 -> VIRQ 16 of the driver domain",
            r"hyp: device: virtio-mmio block \(id 2\) at 0xa003e00, INTID 79 -> VIRQ 17 of the driver domain",
            r"hyp: dom1 \(drv\): driver domain: 2 device\(s\), DMA window 0x[0-9a-f]+\.\.0x[0-9a-f]+",
            ("any", r"^\[drv\] guest: check virtio_transport: 0xa003c00: magic 0x74726976, version \d, device 1, virq 16 ok"),
            ("any", r"^\[drv\] guest: check virtio_transport: 0xa003e00: magic 0x74726976, version \d, device 2, virq 17 ok"),
            ("any", r"^\[drv\] guest: check dma_window: .* ok"),
            ("any", r"^\[drv\] guest: devices checks passed 6/6"),
            ("any", r"^\[g\] guest: devices checks passed 2/2"),
            ("any", r"hyp:   translation fault \(level \d\) on a read at guest-physical 0xa003e00"),
            ("any", r"hyp: dom2 \(g\): ended after a fault"),
            ("any", r"hyp: 2 device\(s\) of the driver domain reset"),
        ] + CLEAN_END,
        post=same_free_memory,
        never=NEVER, exit_code=0))
    out += virtio_scenarios.scenarios(OUT, BANNER, CLEAN_END, NEVER)
    out += net_scenarios.scenarios(OUT, BANNER, CLEAN_END, NEVER, same_free_memory)
    return out


def console_input_script(con):
    """Types to the console-input scenario's guests (see there)."""
    for g in ("g1", "g2"):
        con.wait(rf"^\[drv\] \[{g}\] guest: echo: ready")
    # The input starts with the first console the driver domain connected:
    # pick g1 explicitly.
    con.send(b"\x1d2")
    con.wait(r"input to g1 \(dom2\)")
    con.send(b"hello from one\r")
    con.wait(r"^\[drv\] \[g1\] echo: hello from one")
    con.send(b"\x1d3")
    con.wait(r"input to g2 \(dom3\)")
    # Not seen by g1 (the input is g2's now).
    con.send(b"hello from two\r")
    con.wait(r"^\[drv\] \[g2\] echo: hello from two")
    con.send(b"\x1d?")
    con.wait(r"\[console\] \*dom3 g2")
    con.send(b"\x1d7")
    con.wait(r"no console for dom7")
    con.send(b"\x1d2")
    con.wait(r"input to g1 \(dom2\)")
    con.send(b"back to one\r")
    con.wait(r"^\[drv\] \[g1\] echo: back to one")
    con.send(b"quit\r")
    con.wait(r"input to nobody \(g1 is gone\)")
    con.send(b"\x1d3quit\r")
    return con.problems


def console_input_privileged_script(con):
    """Types to the privileged domain's `echo` (see its scenario)."""
    con.wait(r"^\[p\] guest: echo: ready")
    con.send(b"typed to the privileged domain\r")
    con.wait(r"^\[p\] echo: typed")
    con.send(b"quit\r")
    return con.problems


def console_input_unread_script(con):
    """Types more than the monitor keeps while nobody reads."""
    con.wait(r"^\[mgr\] guest: command line")
    con.send(b"x" * 1500)
    con.wait(r"hyp: console input: buffer full")
    return con.problems


class Console:
    """QEMU's serial line for a scenario's `interact` script: `wait(regex)`
    waits (up to the scenario's timeout) for a console line to match, from
    where the previous wait matched on; `send(bytes)` types."""

    def __init__(self, p, lines, cond, timeout):
        self.p, self.lines, self.cond, self.timeout = p, lines, cond, timeout
        self.at, self.problems = 0, []

    def wait(self, pattern):
        if self.problems:
            return False
        deadline = time.time() + self.timeout
        with self.cond:
            while True:
                for i in range(self.at, len(self.lines)):
                    if re.search(pattern, self.lines[i]):
                        self.at = i + 1
                        return True
                self.at = len(self.lines)
                left = deadline - time.time()
                if left <= 0 or self.p.poll() is not None:
                    self.problems.append(f"never saw {pattern!r} while typing")
                    return False
                self.cond.wait(min(left, 1.0))

    def send(self, data):
        if self.problems:
            return
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
        except OSError as e:
            self.problems.append(f"cannot type {data!r}: {e}")


def run_interactive(cmd, timeout, script):
    """Runs QEMU with its serial input on a pipe; `script(Console)` types
    and returns a list of problems; then waits for QEMU to exit by itself."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks, lines, cond = [], [], threading.Condition()

    def reader():
        for line in iter(p.stdout.readline, b""):
            chunks.append(line)
            with cond:
                lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
                cond.notify_all()
        with cond:
            cond.notify_all()
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    problems = script(Console(p, lines, cond, timeout))
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "timeout"
    t.join(5)
    try:
        p.stdin.close()
    except OSError:
        pass
    return b"".join(chunks).decode("utf-8", "replace"), rc, problems


def cpu_shares(text, weights, tol):
    """Each domain's CPU time (the monitor's final report) as a share of the
    total, against its weight. Used with several CPUs: QEMU does not run
    its emulated CPUs at equal speeds (a CPU that traps more often gets
    fewer instructions per virtual nanosecond, even under -icount), so work
    units measure the emulator there, not the scheduler."""
    got = {}
    for d in weights:
        m = re.search(rf"hyp:   dom\d+ \({d}\): poweroff, (\d+) ms of CPU time", text)
        if not m:
            return [f"no CPU time for {d}"]
        got[d] = int(m.group(1))
    total, wsum = sum(got.values()), sum(weights.values())
    problems = []
    for d, w in weights.items():
        share, want = got[d] / total, w / wsum
        verdict = "ok" if abs(share - want) <= tol * want else "OUT OF RANGE"
        line = f"CPU share of {d}: {share:.3f}, weight share {want:.3f} ({verdict})"
        print(f"        {line}")
        if verdict != "ok":
            problems.append(line)
    return problems


def shares(text, weights, tol):
    """Each domain's work units as a share of the total, against its weight."""
    units = {}
    for d in weights:
        m = re.search(rf"^\[{d}\] guest: work total (\d+) units", text, re.M)
        if not m:
            return [f"no work total from {d}"]
        units[d] = int(m.group(1))
    total, wsum = sum(units.values()), sum(weights.values())
    problems = []
    for d, w in weights.items():
        got, want = units[d] / total, w / wsum
        verdict = "ok" if abs(got - want) <= tol * want else "OUT OF RANGE"
        line = f"share of {d}: {got:.3f}, weight share {want:.3f} ({verdict})"
        print(f"        {line}")
        if verdict != "ok":
            problems.append(line)
    return problems


def different_cpus(text, names):
    """The named domains' first vCPUs started on different CPUs."""
    cpus = {}
    for n in names:
        m = re.search(rf"hyp: dom\d+ \({n}\): vcpu 0 starts on cpu (\d+)", text)
        if not m:
            return [f"no start reported for {n}"]
        cpus[n] = m.group(1)
    return [] if len(set(cpus.values())) == len(names) else [f"same CPU: {cpus}"]


def same_free_memory(text):
    """Free memory at the end equals free memory before any domain."""
    a = re.search(r"hyp: \d+ MiB free for domains \((\d+) frames\)", text)
    b = re.search(r"hyp: \d+ MiB free \((\d+) frames\); powering off", text)
    if not (a and b):
        return ["free memory not reported"]
    return [] if a.group(1) == b.group(1) else [f"free memory {a.group(1)} frames at boot, {b.group(1)} at the end"]


def run(s):
    if "setup" in s:
        s["setup"]()
    cmd = qemu(s["board"], s.get("smp", 1), s.get("icount", False)) + s.get("qemu_extra", []) + ["-append", s["append"]]
    t0 = time.time()
    during = []
    if "during" in s:
        text, rc, during = run_with_hook(cmd, s["timeout"] if "timeout" in s else TIMEOUT, *s["during"])
    elif "interact" in s:
        text, rc, during = run_interactive(cmd, s.get("timeout", TIMEOUT), s["interact"])
    else:
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=s.get("timeout", TIMEOUT))
            text, rc = p.stdout.decode("utf-8", "replace"), p.returncode
        except subprocess.TimeoutExpired as e:
            text, rc = (e.stdout or b"").decode("utf-8", "replace"), "timeout"
    text = text.replace("\r\n", "\n")
    os.makedirs(os.path.join(OUT, "transcripts"), exist_ok=True)
    with open(os.path.join(OUT, "transcripts", s["name"].replace("/", "_") + ".log"), "w") as f:
        f.write(" ".join(cmd) + "\n\n" + text)
    problems = check(s["name"], text, rc, s["expect"], s["never"], s["exit_code"]) + during
    if "post" in s:
        problems += s["post"](text)
    return problems, time.time() - t0


def run_with_hook(cmd, timeout, pattern, hook):
    """Runs QEMU; once its console matches `pattern`, calls `hook()` (which
    talks to the guest from the host and returns a list of problems) while
    QEMU keeps running; then waits for QEMU to exit by itself."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks, seen = [], threading.Event()

    def reader():
        for line in iter(p.stdout.readline, b""):
            chunks.append(line)
            if not seen.is_set() and re.search(pattern, line.decode("utf-8", "replace")):
                seen.set()
        seen.set()  # EOF: stop waiting
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    problems = []
    if not seen.wait(timeout) or p.poll() is not None:
        problems.append(f"never saw {pattern!r} while QEMU ran")
    else:
        problems += hook()
    try:
        rc = p.wait(timeout=max(1, timeout - 0))
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "timeout"
    t.join(5)
    return b"".join(chunks).decode("utf-8", "replace"), rc, problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    chosen = [s for s in scenarios() if a.only in s["name"]]
    if a.list:
        for s in chosen:
            print(s["name"])
        return 0
    passed = failed = 0
    for s in chosen:
        problems, dt = run(s)
        if problems:
            failed += 1
            print(f"FAILED  {s['name']} ({dt:.1f}s); transcript in out/transcripts/")
            for p in problems:
                print(f"        {p}")
        else:
            passed += 1
            print(f"ok      {s['name']} ({dt:.1f}s)")
    print(f"scenarios: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
