"""Scenarios of the paravirtual network: guests' netfront -> the driver
domain's vifs -> bridge (-> virtio-net uplink on QEMU's user network).

The guest modes are in guest-kernel/src/net_test.rs; the back end in
guest-kernel/src/driver_net.rs. A guest that slirp must reach through a
forwarded port is 10.0.2.15 (slirp's first guest address); the others
take .16 and .17.
"""
import virtio_scenarios

BODY = b"hello from a pvh guest over netif\n"
STREAM = 1 << 20


def scenarios(out_dir, banner, clean_end, never, same_free_memory):
    out = []
    for b in ["virt", "raspi4b"]:
        drv = 'semihosting dom=drv,mem=64,priv,args="driver disk=1" '
        # (a) Two guests: ping, an HTTP GET and a checked 1 MiB TCP stream
        # through the bridge.
        out.append(dict(
            name=f"{b}/net-two-guests", board=b, smp=2, timeout=90,
            append=drv + f'dom=srv,args="net=serve backend=1 ip=10.0.2.15 requests=1 stream={STREAM}" '
                         f'dom=cli,args="net=ping backend=1 ip=10.0.2.16 peer=10.0.2.15 count=5 stream={STREAM}"',
            expect=banner + [
                ("any", r"^\[drv\] driver: net: bridge up, guests only \(no uplink\)"),
                ("any", r"^\[drv\] driver: dom2 \(srv\): vif 0 connected: mac 00:16:3e:00:00:02, tx-ring-ref \d+, rx-ring-ref \d+, event-channel \d+"),
                ("any", r"^\[drv\] driver: dom3 \(cli\): vif 0 connected: mac 00:16:3e:00:00:03, "),
                ("any", r"^\[drv\] \[srv\] guest: net: vif 0 connected, mac 00:16:3e:00:00:02, ip 10\.0\.2\.15"),
                ("any", r"^\[drv\] \[cli\] guest: net ping: 5/5 checked replies, 0 lost ok"),
                ("any", r"^\[drv\] \[cli\] guest: net http get: status Some\(200\) ok"),
                ("any", rf"^\[drv\] \[cli\] guest: net stream sent: {STREAM} of {STREAM} bytes acknowledged ok"),
                # A guest's last lines may come through console_io when its
                # console ring stays full to the end (the front end falls
                # back rather than wait for a back end that is done).
                ("any", r"^(?:\[drv\] )?\[cli\] guest: net checks passed 3/3"),
                ("any", r"^\[drv\] \[srv\] guest: net http served: 1 of 1, 0 refused ok"),
                ("any", rf"^\[drv\] \[srv\] guest: net stream received: {STREAM} of {STREAM} bytes, pattern checked ok"),
                ("any", r"^(?:\[drv\] )?\[srv\] guest: net checks passed 2/2"),
                ("any", r"^\[drv\] driver: dom2 \(srv\) gone: vif 0 tx \d+ packets, 0 refused; rx \d+ delivered, 0 errors"),
                ("any", r"^\[drv\] driver: every guest is gone; powering off"),
            ] + clean_end,
            post=same_free_memory,
            never=never, exit_code=0))
    # (d) Both guests survive the driver domain's death: a client and a
    # server talk through the bridge, the manager destroys the driver
    # domain and creates another, both reconnect (store, console, vif)
    # and talk again through the new one.
    out.append(dict(
        name="virt/net-reconnect", board="virt", smp=2, timeout=90,
        append='semihosting dom=drv,driver,mem=64,args="driver disk=1" '
               'dom=srv,args="net=serve ip=10.0.2.15 requests=2 reconnect=1" '
               'dom=cli,args="net=ping ip=10.0.2.16 peer=10.0.2.15 count=3 reconnect=1" '
               'dom=mgr,priv,args="kill=drv@12000 respawn=drv2@12500 drvargs=disk=1"',
        expect=banner + [
            ("any", r"^\[drv\] \[cli\] guest: net ping: 3/3 checked replies, 0 lost ok"),
            ("any", r"^\[drv\] \[cli\] guest: net http get: status Some\(200\) ok"),
            ("any", r"^\[drv\] \[srv\] guest: net: http: served request 1$"),
            r"^\[mgr\] guest: kill: destroyed dom1 \(drv\) at \d+ ms: Ok\(\(\)\)",
            ("any", r"^\[cli\] guest: net back end gone: at \d+ ms ok"),
            ("any", r"^\[cli\] guest: net: dom1 gone; waiting for a new driver domain"),
            ("any", r"^\[srv\] guest: net: dom1 gone; waiting for a new driver domain"),
            r"^\[mgr\] guest: kill: created driver domain dom5 \(drv2, \"driver disk=1\"\) at \d+ ms",
            ("any", r"^\[drv2\] driver: dom2 \(srv\): vif 0 connected: mac 00:16:3e:00:00:02, "),
            ("any", r"^\[drv2\] driver: dom3 \(cli\): vif 0 connected: mac 00:16:3e:00:00:03, "),
            ("any", r"^\[drv2\] \[cli\] guest: net store and console reconnected: to dom5 \(generation 2\) after \d+ ms: Ok\(5\) ok"),
            ("any", r"^\[drv2\] \[cli\] guest: net vif reconnected: Ok\(\(\)\) ok"),
            ("any", r"^\[drv2\] \[srv\] guest: net store and console reconnected: to dom5 \(generation 2\) after \d+ ms: Ok\(5\) ok"),
            ("any", r"^\[drv2\] \[srv\] guest: net vif reconnected: Ok\(\(\)\) ok"),
            ("any", r"^\[drv2\] \[cli\] guest: net ping after reconnecting: 3/3 checked replies, 0 lost ok"),
            ("any", r"^\[drv2\] \[cli\] guest: net http get after reconnecting: status Some\(200\) ok"),
            ("any", r"^(?:\[drv2\] )?\[cli\] guest: net checks passed 7/7$"),
            ("any", r"^\[drv2\] \[srv\] guest: net http served: 2 of 2, 0 refused ok"),
            ("any", r"^(?:\[drv2\] )?\[srv\] guest: net checks passed 3/3$"),
            ("any", r"^\[drv2\] driver: every guest is gone; powering off"),
        ] + clean_end,
        post=same_free_memory,
        never=never, exit_code=0))
    # (c) A malformed front end next to a good one: every bad tx request
    # answered NETIF_RSP_ERROR, then it pings and fetches from the good
    # guest, which serves it and the other client.
    bad = ["fragment crossing its page: 1 request\\(s\\), 1 error", "offset 4096: 1 request\\(s\\), 1 error",
           "larger than a frame: 1 request\\(s\\), 1 error", "shorter than a header: 1 request\\(s\\), 1 error",
           "fragments exceeding the total: 2 request\\(s\\), 2 error", "extra info: 1 request\\(s\\), 1 error",
           "grant never given: 1 request\\(s\\), 1 error", "grant past the table: 1 request\\(s\\), 1 error",
           "chain with a foreign grant: 2 request\\(s\\), 2 error", "chain past the slot limit: 19 request\\(s\\), 19 error",
           "ping after bad requests: 3/3 checked replies", "http get after bad requests: status Some\\(200\\)"]
    out.append(dict(
        name="virt/net-bad-guest", board="virt", smp=2, timeout=90,
        append='semihosting dom=drv,mem=64,priv,args="driver disk=1" '
               'dom=good,args="net=serve backend=1 ip=10.0.2.15 requests=2" '
               'dom=evil,args="net=bad backend=1 ip=10.0.2.17 peer=10.0.2.15" '
               'dom=cli,args="net=ping backend=1 ip=10.0.2.16 peer=10.0.2.15 count=3"',
        expect=banner + [("any", rf"^\[drv\] \[evil\] guest: net {p}.* ok$") for p in bad] + [
            ("any", r"^(?:\[drv\] )?\[evil\] guest: net checks passed 12/12$"),
            ("any", r"^(?:\[drv\] )?\[cli\] guest: net checks passed 2/2$"),
            ("any", r"^(?:\[drv\] )?\[good\] guest: net checks passed 1/1$"),
            ("any", r"^\[drv\] driver: dom3 \(evil\) gone: vif 0 tx \d+ packets, 10 refused; rx \d+ delivered, 0 errors"),
            ("any", r"^\[drv\] driver: every guest is gone; powering off"),
        ] + clean_end,
        post=same_free_memory,
        never=never, exit_code=0))
    # (b) From the host: an HTTP GET through QEMU's forwarded port reaches
    # a guest's service: slirp -> virtio-net -> the driver domain's
    # bridge -> netif -> the guest (10.0.2.15, slirp's guest address).
    port = virtio_scenarios.free_port()
    requests = 3
    out.append(dict(
        name="virt/net-host-http", board="virt", smp=2, timeout=60,
        qemu_extra=["-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-10.0.2.15:80",
                    "-device", "virtio-net-device,netdev=n0"],
        append='semihosting dom=drv,driver,mem=64,args="driver uplink disk=1" '
               f'dom=web,args="net=serve backend=1 ip=10.0.2.15 requests={requests}"',
        during=(r"\[drv\] \[web\] guest: net: http: listening on 10\.0\.2\.15:80",
                lambda: virtio_scenarios.fetch(port, requests, BODY)),
        expect=banner + [
            ("any", r"^\[drv\] driver: net: bridge up, uplink virtio-net 52:54:00:12:34:56"),
            ("any", r"^\[drv\] driver: dom2 \(web\): vif 0 connected: mac 00:16:3e:00:00:02"),
            ("any", rf"^\[drv\] \[web\] guest: net http served: {requests} of {requests}, 0 refused ok"),
            ("any", r"^(?:\[drv\] )?\[web\] guest: net checks passed 1/1"),
            ("any", r"^\[drv\] driver: dom2 \(web\) gone: vif 0 tx \d+ packets, 0 refused; rx \d+ delivered, 0 errors"),
            ("any", r"^\[drv\] driver: every guest is gone; powering off"),
            ("any", r"hyp: 1 device\(s\) of the driver domain reset"),
        ] + clean_end,
        never=never + [r"PHYSDEVOP_eoi\(\d+\) refused"], exit_code=0))
    # (c) To the host: a guest sends a checked 1 MiB stream through netif ->
    # bridge -> virtio-net -> slirp to a sink on the host (10.0.2.2:PORT),
    # which checks every byte.
    sink = virtio_scenarios.StreamSink()
    out.append(dict(
        name="virt/net-uplink-stream", board="virt", smp=2, timeout=90,
        setup=sink.start,
        qemu_extra=["-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0"],
        append='semihosting dom=drv,driver,mem=64,args="driver uplink disk=1" '
               f'dom=cli,args="net=ping backend=1 ip=10.0.2.15 peer=10.0.2.2 count=0 fetch=0 '
               f'stream={STREAM} port={sink.port} spin=1"',
        expect=banner + [
            ("any", r"^\[drv\] driver: net: bridge up, uplink virtio-net 52:54:00:12:34:56"),
            ("any", rf"^\[drv\] \[cli\] guest: net stream sent: {STREAM} of {STREAM} bytes acknowledged ok"),
            ("any", r"^(?:\[drv\] )?\[cli\] guest: net checks passed 1/1"),
            ("any", r"^\[drv\] driver: dom2 \(cli\) gone: vif 0 tx \d+ packets, 0 refused; rx \d+ delivered, 0 errors"),
            ("any", r"^\[drv\] driver: every guest is gone; powering off"),
        ] + clean_end,
        post=lambda text: sink.check(STREAM),
        never=never + [r"PHYSDEVOP_eoi\(\d+\) refused"], exit_code=0))
    return out
