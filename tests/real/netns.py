"""Network namespaces for the seed scenario, and a minimal pcap reader.

Topology (R is random per run, names carry a per-run tag):

    [cluster ns]                 [edge ns]                      [client ns]
    brokers on 10.213.R.2  ---   10.213.R.1 | 10.214.R.1  ---   client 10.214.R.2
         veth "cluster net"      (ip_forward = 0)     veth "client net"

No namespace has a default route: the client can reach only the client net
(i.e. the edge), the brokers only the cluster net.  All addresses belong to
namespaces this suite creates and deletes; nothing here touches the root
namespace's addresses or routes.
"""

import os
import random
import re
import signal
import struct
import time

from realenv import run


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
        return [self.broker_ip, self.edge_cluster_ip]


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
