"""Network namespaces for the seed scenario, and a minimal pcap reader.

Topology (R is random per run, names carry a per-run tag):

    [cluster ns]                 [edge ns]                      [client ns]
    brokers on 10.213.R.2  ---   10.213.R.1 | 10.214.R.1  ---   client 10.214.R.2
         veth "cluster net"      (ip_forward = 0)     veth "client net"

No namespace has a default route: the client can reach only the client net
(i.e. the edge), the brokers only the cluster net.  All addresses belong to
namespaces this suite creates and deletes; nothing here touches the root
namespace's addresses or routes.

What the namespace tests (test_seed_netns.py, test_tls.py, test_compat.py)
share lives here: ``seed_network()`` (create, then delete the namespaces),
``SeedNetwork.start_mock_cluster`` / ``start_tansu`` (brokers on the internal
address, in the cluster ns), ``SeedNetwork.start_gateway`` (kafka-edge in the
edge ns, advertising its client-side address), ``SeedNetwork.connect_check``
(a TCP connect from inside a namespace), ``Capture`` (tcpdump in the client
ns; stopping it checks that tcpdump lost no packet) and ``leak_scan`` (what
the client's capture must and must not contain).  test_leader_change.py uses
``Capture`` and ``leak_scan`` in the root namespace, on loopback, with a
``LoopbackNet`` in place of the SeedNetwork.
"""

import contextlib
import os
import random
import re
import signal
import struct
import time

from realenv import (
    PYTHON,
    ManagedProc,
    MockClusterProc,
    TansuProc,
    compile_bindshim,
    require_tool,
    run,
    start_gateway,
    wait_for,
)


def _ip(*args, timeout=20):
    return run(["ip"] + [str(a) for a in args], timeout=timeout, check=True)


# Our namespace names: ke-<pid of the pytest process>-<tag>-<role>.
NS_NAME = re.compile(r"^ke-(\d+)-[0-9a-f]+-(cluster|edge|client)$")


def _kill_and_delete(ns):
    """Kill every process left in one of our namespaces, then delete it."""
    for pid in run(["ip", "netns", "pids", ns], timeout=10).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    time.sleep(0.2)
    return run(["ip", "netns", "del", ns], timeout=20)


def sweep_stale_namespaces():
    """Delete namespaces of earlier runs of this suite whose pytest is gone.

    Teardown normally deletes them; this only catches runs that were killed
    outright.  A namespace whose creating process still lives is left alone,
    so parallel runs do not disturb each other.
    """
    for line in run(["ip", "netns", "list"], timeout=10).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = NS_NAME.match(name)
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            _kill_and_delete(name)


class SeedNetwork:
    def __init__(self):
        tag = "%04x%02x" % (os.getpid() & 0xFFFF, random.randrange(256))
        self.tag = tag
        stem = "ke-%d-%s" % (os.getpid(), tag)
        self.ns_cluster = stem + "-cluster"
        self.ns_edge = stem + "-edge"
        self.ns_client = stem + "-client"
        # veth names must be < 16 bytes and unique while being created.
        self.if_cluster = "kc%s" % tag  # in cluster ns
        self.if_edge_cluster = "kec%s" % tag  # edge leg into the cluster net
        self.if_edge_client = "kek%s" % tag  # edge leg into the client net
        self.if_client = "kk%s" % tag  # in client ns
        r = random.randrange(1, 255)
        self.broker_ip = "10.213.%d.2" % r
        self.edge_cluster_ip = "10.213.%d.1" % r
        self.edge_client_ip = "10.214.%d.1" % r
        self.client_ip = "10.214.%d.2" % r
        self.cluster_net = "10.213.%d" % r
        self.extra_cluster_ips = []  # add_cluster_ip's, one per Kafka node
        self.created = []

    # ---------------------------------------------------------- lifecycle

    def setup(self):
        for ns in (self.ns_cluster, self.ns_edge, self.ns_client):
            _ip("netns", "add", ns)
            self.created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            # No IPv6 chatter (router solicitations etc.) in the captures.
            self.sh(ns, "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6")
        _ip(
            "link", "add", self.if_cluster, "netns", self.ns_cluster,
            "type", "veth", "peer", "name", self.if_edge_cluster, "netns", self.ns_edge,
        )  # fmt: skip
        _ip(
            "link", "add", self.if_client, "netns", self.ns_client,
            "type", "veth", "peer", "name", self.if_edge_client, "netns", self.ns_edge,
        )  # fmt: skip
        for ns, dev, addr in (
            (self.ns_cluster, self.if_cluster, self.broker_ip),
            (self.ns_edge, self.if_edge_cluster, self.edge_cluster_ip),
            (self.ns_edge, self.if_edge_client, self.edge_client_ip),
            (self.ns_client, self.if_client, self.client_ip),
        ):
            _ip("-n", ns, "addr", "add", addr + "/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
        # veths report UP a few milliseconds after both ends are set up.
        for ns, dev in (
            (self.ns_cluster, self.if_cluster),
            (self.ns_edge, self.if_edge_cluster),
            (self.ns_edge, self.if_edge_client),
            (self.ns_client, self.if_client),
        ):
            deadline = time.monotonic() + 10
            while "state UP" not in _ip("-n", ns, "link", "show", dev).stdout:
                assert time.monotonic() < deadline, "%s in %s never came up" % (dev, ns)
                time.sleep(0.05)
        # The edge must not route between its legs: the gateway is the only way.
        self.sh(self.ns_edge, "echo 0 > /proc/sys/net/ipv4/ip_forward")
        forward = self.sh(self.ns_edge, "cat /proc/sys/net/ipv4/ip_forward").stdout.strip()
        assert forward == "0", "ip_forward in edge ns is %r" % forward
        return self

    def teardown(self):
        """Kill whatever still runs in our namespaces, then delete them."""
        errors = []
        for ns in reversed(self.created):
            res = _kill_and_delete(ns)
            if res.returncode != 0:
                errors.append("%s: %s" % (ns, res.stderr.strip()))
        self.created = []
        return errors

    # ---------------------------------------------------------- helpers

    @staticmethod
    def prefix(ns):
        return ["ip", "netns", "exec", ns]

    def sh(self, ns, script, timeout=10):
        return run(self.prefix(ns) + ["sh", "-c", script], timeout=timeout, check=True)

    def internal_ips(self):
        """Addresses of the cluster net: the brokers' and the edge's cluster-side one."""
        return [self.broker_ip, self.edge_cluster_ip] + self.extra_cluster_ips

    def add_cluster_ip(self):
        """One more address (10.213.R.10, .11, ...) on the cluster ns's veth: a distinct internal host."""
        ip = "%s.%d" % (self.cluster_net, 10 + len(self.extra_cluster_ips))
        _ip("-n", self.ns_cluster, "addr", "add", ip + "/24", "dev", self.if_cluster)
        self.extra_cluster_ips.append(ip)
        return ip

    def connect_check(self, ns):
        """check(ip, port) -> bool: does a TCP connect from inside `ns` succeed?

        The connect_check of start_gateway / start_config_gateway / TansuProc,
        since a namespace's addresses cannot be reached from the root namespace.
        """
        prefix = self.prefix(ns)

        def check(ip, port, timeout=1):
            code = "import socket,sys; s=socket.socket(); s.settimeout(%r); sys.exit(s.connect_ex((%r,%d)))" % (
                timeout,
                ip,
                port,
            )
            return run(prefix + [PYTHON, "-c", code], timeout=10 + timeout).returncode == 0

        return check

    # ---------------------------------------------------------- processes

    def start_mock_cluster(self, workdir, name, brokers=3):
        """librdkafka's mock cluster in the cluster ns, listening on (and advertising) broker_ip.

        The mock binds 127.0.0.1 only; the LD_PRELOAD shim (bindshim.c) moves
        its listeners to broker_ip, which it then advertises.
        """
        shim = compile_bindshim(workdir)
        prefix = self.prefix(self.ns_cluster) + ["env", "LD_PRELOAD=" + shim, "BIND_IP=" + self.broker_ip]
        cluster = MockClusterProc(workdir, brokers=brokers, prefix=prefix, name=name)
        hosts = {h for h, _ in cluster.advertised.values()}
        if hosts != {self.broker_ip}:
            cluster.stop()
            raise AssertionError("bind shim not effective: the mock advertises %s" % cluster.bootstrap)
        return cluster

    def start_tansu(self, workdir, port, name="tansu"):
        """tansu (node 111) in the cluster ns on broker_ip:port.

        A fixed port: a free one cannot be picked from the root namespace, and
        the namespace is fresh.  Readiness and topic creation run in the
        cluster ns too.
        """
        return TansuProc(
            workdir,
            host=self.broker_ip,
            port=port,
            prefix=self.prefix(self.ns_cluster),
            connect_check=self.connect_check(self.ns_cluster),
            name=name,
        )

    def start_gateway(self, cluster, workdir, name, listen_port, port_base):
        """kafka-edge in the edge ns, listening on and advertising edge_client_ip.

        Ready once its ports accept connections from the client ns.  Stop it
        with realenv.stop_gateway.
        """
        return start_gateway(
            cluster,
            workdir,
            name,
            listen_ip=self.edge_client_ip,
            prefix=self.prefix(self.ns_edge),
            connect_check=self.connect_check(self.ns_client),
            port_base=port_base,
            listen_port=listen_port,
        )

    def capture(self, workdir, name, bpf="tcp"):
        """A running Capture of the client ns's only interface."""
        return Capture(self.prefix(self.ns_client), self.if_client, workdir, name, bpf)


@contextlib.contextmanager
def seed_network():
    """A fresh SeedNetwork, deleted (after killing what still runs in it) on exit.

    Sweeps namespaces of dead earlier runs first.  A namespace that cannot be
    deleted fails the caller, unless it is already failing.
    """
    require_tool("ip")
    sweep_stale_namespaces()
    net = SeedNetwork()
    try:
        net.setup()
        yield net
    finally:
        errors = net.teardown()
    assert not errors, "namespace cleanup failed: %s" % errors


# -------------------------------------------------------------------- capture

TCPDUMP_STATS = re.compile(
    r"(\d+) packets? captured\s+(\d+) packets? received by filter\s+(\d+) packets? dropped by kernel"
)


class Capture:
    """tcpdump on one interface (inside a namespace: `prefix`; () and "lo" for root's loopback), writing a pcap.

    Started and listening when the constructor returns.  stop() ends it and
    returns the packets (see read_pcap), and fails if tcpdump's own exit
    statistics show any packet lost: every packet the filter took must have
    been written, none dropped by the kernel.  --immediate-mode hands packets
    over as they arrive; without it, packets still in the kernel's buffer when
    tcpdump stops are counted as "received by filter" but never written.
    A 32 MiB kernel buffer (-B; default 2 MiB) rides out the moments when
    tcpdump gets no CPU: with the compatibility matrix loading both cores,
    the default one dropped packets ("dropped by kernel"). It also runs at a
    higher priority (nice -10) than the clients and brokers it watches: with
    every core busy, the buffer alone still overflowed now and then.
    On loopback the kernel's filter takes every packet twice, once going out
    and once coming in, and libpcap writes only the incoming copy; there,
    "received by filter" is twice "captured" when nothing is lost.
    """

    BUFFER_KIB = 32768
    # With --immediate-mode libpcap's ring holds one slot per packet, each as large as the
    # interface's largest frame: about 1,000 on a 1500-byte veth per MiB, but only 16 per
    # MiB on loopback (MTU 65536), where 32 MiB still dropped packets with both cores busy.
    LOOPBACK_BUFFER_KIB = 262144

    def __init__(self, prefix, interface, workdir, name, bpf="tcp"):
        tcpdump = require_tool("tcpdump")
        self.copies = 2 if interface == "lo" else 1  # filter hits a written packet makes
        self.pcap = os.path.join(workdir, "%s.pcap" % name)
        cmd = ["nice", "-n", "-10"] + list(prefix) + [tcpdump, "-Z", "root", "-i", interface, "-n", "-U", "--immediate-mode", "-s", "0"]
        cmd += ["-B", str(self.LOOPBACK_BUFFER_KIB if interface == "lo" else self.BUFFER_KIB)]
        self.proc = ManagedProc(name, cmd + ["-w", self.pcap, bpf], workdir)
        self.packets = None
        self.stats = None
        try:
            if not wait_for(lambda: "listening on" in self.proc.log_text() or not self.proc.alive(), 15):
                raise AssertionError("tcpdump did not start\n%s" % self.proc.excerpt())
            assert self.proc.alive(), self.proc.excerpt()
        except BaseException:
            self.proc.stop()
            raise

    def excerpt(self):
        return self.proc.excerpt()

    def stop(self, settle=0.5):
        """Stop tcpdump (after `settle` s for the last segments); [packets], or fail on lost packets."""
        if self.packets is None:
            time.sleep(settle)
            self.proc.stop()
            stats = TCPDUMP_STATS.search(self.proc.log_text())
            assert stats, "no tcpdump statistics\n%s" % self.proc.excerpt()
            self.stats = {
                "captured": int(stats.group(1)),
                "received_by_filter": int(stats.group(2)),
                "dropped_by_kernel": int(stats.group(3)),
            }
            written = self.stats["captured"] * self.copies
            lost = written != self.stats["received_by_filter"] or self.stats["dropped_by_kernel"]
            assert not lost, "tcpdump lost packets (%d filter hits a packet): %s\n%s" % (
                self.copies,
                self.stats,
                self.proc.excerpt(),
            )
            assert os.path.getsize(self.pcap) > 24, "empty capture\n%s" % self.proc.excerpt()
            self.packets = list(read_pcap(self.pcap))
        return self.packets

    def close(self):
        """Teardown: stop tcpdump if stop() did not (no checks)."""
        if self.proc.alive():
            self.proc.stop()


class LoopbackNet:
    """What leak_scan needs of a SeedNetwork, for a gateway on loopback in the root namespace.

    The clients' address is the kernel's source address towards `gateway_ip`
    (127.0.0.1 for any 127/8 destination); the internal addresses are
    `upstream_hosts`, the brokers' hosts.
    """

    def __init__(self, gateway_ip, upstream_hosts):
        route = run(["ip", "route", "get", gateway_ip], timeout=10, check=True).stdout
        src = re.search(r"\bsrc (\S+)", route)
        assert src, "no source address towards %s: %r" % (gateway_ip, route)
        self.client_ip = src.group(1)
        self.edge_client_ip = gateway_ip
        self.upstream_hosts = sorted(upstream_hosts)

    def internal_ips(self):
        return list(self.upstream_hosts)


class LeakScan:
    """What leak_scan found: the packets, the TCP streams and their sizes."""

    def __init__(self, packets, streams, client_ip, pcap):
        self.packets = packets
        self.streams = streams
        self.received = sum(len(v) for k, v in streams.items() if k[2] == client_ip)
        self.sent = sum(len(v) for k, v in streams.items() if k[0] == client_ip)
        self.summary = "%d packets, %d TCP directions, %d payload bytes received and %d sent by the client, in %s" % (
            len(packets),
            len(streams),
            self.received,
            self.sent,
            pcap,
        )


def leak_scan(capture, net, forbidden=(), must_receive=(), min_received=1000):
    """The leak scan of a client-ns Capture (stopped here if it still runs).

    `net`: the SeedNetwork, or a LoopbackNet for a capture on root's loopback.

    Positive control: the client received more than `min_received` payload
    bytes, and every string of `must_receive` (say, the gateway's advertised
    address) in them.  Then: every packet is between the client and the
    edge's client-side address, and no internal address of `net` and no
    string of `forbidden` appears in any payload byte, either direction.
    Payloads are searched per TCP direction, reassembled, so a string split
    across segments is still found.  Returns a LeakScan.
    """
    packets = capture.stop()
    streams = tcp_streams(packets)
    scan = LeakScan(packets, streams, net.client_ip, capture.pcap)
    assert scan.received > min_received, "too little traffic (want > %d bytes received): %s" % (
        min_received,
        scan.summary,
    )
    received = [v for k, v in streams.items() if k[2] == net.client_ip]
    for needle in must_receive:
        assert any(needle.encode() in v for v in received), "%r never reached the client: %s" % (needle, scan.summary)
    peers = {p[0] for p in packets} | {p[1] for p in packets}
    assert peers == {net.client_ip, net.edge_client_ip}, "unexpected peers %s: %s" % (sorted(peers), scan.summary)
    for needle in list(net.internal_ips()) + list(forbidden):
        hits = ["%s:%d->%s:%d" % k for k, v in streams.items() if needle.encode() in v]
        assert not hits, "%r in the client's traffic (%s): %s" % (needle, ", ".join(hits[:5]), scan.summary)
    return scan


# -------------------------------------------------------------------- pcap


def read_pcap(path):
    """Yield (src_ip, dst_ip, src_port, dst_port, payload) for IPv4/TCP packets.

    Handles classic pcap (micro- or nanosecond, either byte order) with
    Ethernet (1), raw IP (101) or Linux cooked (113) link types, which covers
    what tcpdump writes for a veth.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError("pcap %s too short (%d bytes)" % (path, len(data)))
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError("not a classic pcap file: magic %r" % magic)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    link_header = {1: 14, 101: 0, 113: 16}.get(linktype)
    if link_header is None:
        raise ValueError("unsupported pcap link type %d" % linktype)
    pos = 24
    while pos + 16 <= len(data):
        incl_len = struct.unpack(endian + "I", data[pos + 8 : pos + 12])[0]
        frame = data[pos + 16 : pos + 16 + incl_len]
        pos += 16 + incl_len
        if linktype == 1 and frame[12:14] != b"\x08\x00":
            continue  # not IPv4
        if linktype == 113 and frame[14:16] != b"\x08\x00":
            continue
        ip = frame[link_header:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue  # not IPv4/TCP
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        src = ".".join(str(b) for b in ip[12:16])
        dst = ".".join(str(b) for b in ip[16:20])
        tcp = ip[ihl:total]
        if len(tcp) < 20:
            continue
        sport, dport = struct.unpack(">HH", tcp[:4])
        offset = (tcp[12] >> 4) * 4
        yield src, dst, sport, dport, bytes(tcp[offset:])


def tcp_streams(packets):
    """{(src, sport, dst, dport): payload bytes in capture order} of read_pcap's packets (or a pcap path)."""
    if isinstance(packets, str):
        packets = read_pcap(packets)
    parts = {}
    for src, dst, sport, dport, payload in packets:
        if payload:
            parts.setdefault((src, sport, dst, dport), []).append(payload)
    return {key: b"".join(chunks) for key, chunks in parts.items()}
