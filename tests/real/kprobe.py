#!/usr/bin/env python3
"""Raw Kafka-protocol probe: every version of the APIs that carry broker addresses.

Real clients each speak one version of Metadata / FindCoordinator /
DescribeCluster.  A gateway that rewrites broker addresses has to get every
version right (non-flexible and flexible encodings, batched FindCoordinator
v4+), so this probe sends each version the endpoint advertises in ApiVersions
and decodes the addresses from the answers.  It is a small, independent codec
written for these three APIs only.

    kprobe.py --bootstrap HOST:PORT [--group G] [--timeout S]

Prints one JSON object: {"api_versions": {key: [min, max]},
"metadata": {version: {...}}, "find_coordinator": {version: {...}},
"describe_cluster": {version: {...}}}; a version whose request failed (no
answer, undecodable answer) has {"error": "..."}; Kafka error codes in an
answer are reported as "error_code".
"""

import argparse
import json
import socket
import struct

API_METADATA = 3
API_FIND_COORDINATOR = 10
API_API_VERSIONS = 18
API_DESCRIBE_CLUSTER = 60

# Highest versions this codec knows how to encode/decode.
KNOWN_MAX = {API_METADATA: 13, API_FIND_COORDINATOR: 6, API_DESCRIBE_CLUSTER: 1}
# First flexible (compact encoding + tagged fields) version of each API.
FIRST_FLEXIBLE = {API_METADATA: 9, API_FIND_COORDINATOR: 3, API_DESCRIBE_CLUSTER: 0, API_API_VERSIONS: 3}


# ------------------------------------------------------------------ encoding


def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def string(s):
    b = s.encode()
    return i16(len(b)) + b


def compact_string(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


EMPTY_TAGS = uvarint(0)


class Reader:
    """Cursor over a response body with the Kafka primitive decoders."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated response at %d (+%d of %d)" % (self.pos, n, len(self.data)))
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def uvarint(self):
        shift = result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def string(self, nullable=False):
        n = self.i16()
        if n < 0:
            if nullable:
                return None
            raise ValueError("null non-nullable string")
        return self.take(n).decode()

    def compact_string(self, nullable=False):
        n = self.uvarint()
        if n == 0:
            if nullable:
                return None
            raise ValueError("null non-nullable compact string")
        return self.take(n - 1).decode()

    def array_len(self, flexible):
        if flexible:
            n = self.uvarint()
            return -1 if n == 0 else n - 1
        return self.i32()

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self.take(self.uvarint())


# ------------------------------------------------------------------ transport


class Conn:
    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.corr = 0

    def close(self):
        self.sock.close()

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed by peer after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def request(self, api_key, version, body):
        """Send one request, return a Reader positioned after the response header."""
        self.corr += 1
        flexible_req = version >= FIRST_FLEXIBLE.get(api_key, 99)
        header = i16(api_key) + i16(version) + i32(self.corr) + string("kprobe")
        if flexible_req:
            header += EMPTY_TAGS
        payload = header + body
        self.sock.sendall(i32(len(payload)) + payload)
        size = struct.unpack(">i", self._recv_exact(4))[0]
        r = Reader(self._recv_exact(size))
        corr = r.i32()
        if corr != self.corr:
            raise ValueError("correlation id %d, expected %d" % (corr, self.corr))
        # ApiVersions responses always use header v0 (no tagged fields).
        if flexible_req and api_key != API_API_VERSIONS:
            r.tags()
        return r


# ------------------------------------------------------------------ APIs


def api_versions(conn):
    r = conn.request(API_API_VERSIONS, 0, b"")
    err = r.i16()
    if err:
        raise ValueError("ApiVersions v0 error %d" % err)
    out = {}
    for _ in range(r.i32()):
        key, lo, hi = r.i16(), r.i16(), r.i16()
        out[key] = (lo, hi)
    return out


def metadata(conn, v):
    flexible = v >= 9
    if v == 0:
        body = i32(0)  # v0: empty list means all topics; fine, we read brokers only
    elif not flexible:
        body = i32(0)  # v1+: empty list = no topics (null would be all)
        if v >= 4:
            body += i8(0)  # allow_auto_topic_creation
        if v >= 8:
            body += i8(0) + i8(0)  # include cluster / topic authorized operations
    else:
        body = uvarint(1)  # empty compact array of topics
        body += i8(0)  # allow_auto_topic_creation
        if v <= 10:
            body += i8(0)  # include_cluster_authorized_operations (removed in v11)
        body += i8(0)  # include_topic_authorized_operations
        body += EMPTY_TAGS
    r = conn.request(API_METADATA, v, body)
    if v >= 3:
        r.i32()  # throttle_time_ms
    brokers = []
    for _ in range(r.array_len(flexible)):
        node_id = r.i32()
        host = r.compact_string() if flexible else r.string()
        port = r.i32()
        if v >= 1:
            (r.compact_string(True) if flexible else r.string(True))  # rack
        if flexible:
            r.tags()
        brokers.append({"id": node_id, "host": host, "port": port})
    out = {"brokers": sorted(brokers, key=lambda b: b["id"])}
    if v >= 2:
        out["cluster_id"] = r.compact_string(True) if flexible else r.string(True)
    if v >= 1:
        out["controller_id"] = r.i32()
    return out


def find_coordinator(conn, v, group):
    if v == 0:
        body = string(group)
    elif v <= 2:
        body = string(group) + i8(0)  # key_type 0 = group
    elif v == 3:
        body = compact_string(group) + i8(0) + EMPTY_TAGS
    else:
        body = i8(0) + uvarint(2) + compact_string(group) + EMPTY_TAGS  # batched (KIP-699)
    r = conn.request(API_FIND_COORDINATOR, v, body)
    coordinators = []
    if v <= 3:
        flexible = v == 3
        if v >= 1:
            r.i32()  # throttle
        err = r.i16()
        if v >= 1:
            r.compact_string(True) if flexible else r.string(True)
        node_id = r.i32()
        host = r.compact_string() if flexible else r.string()
        port = r.i32()
        coordinators.append({"key": group, "id": node_id, "host": host, "port": port, "error_code": err})
    else:
        r.i32()  # throttle
        for _ in range(r.array_len(True)):
            key = r.compact_string()
            node_id, host, port = r.i32(), r.compact_string(), r.i32()
            err = r.i16()
            r.compact_string(True)
            r.tags()
            coordinators.append({"key": key, "id": node_id, "host": host, "port": port, "error_code": err})
    return {"coordinators": coordinators}


def describe_cluster(conn, v):
    body = i8(0)  # include_cluster_authorized_operations
    if v >= 1:
        body += i8(1)  # endpoint_type 1 = brokers
    body += EMPTY_TAGS
    r = conn.request(API_DESCRIBE_CLUSTER, v, body)
    r.i32()  # throttle
    err = r.i16()
    r.compact_string(True)  # error message
    if v >= 1:
        r.i8()  # endpoint type
    cluster_id = r.compact_string()
    controller = r.i32()
    brokers = []
    for _ in range(r.array_len(True)):
        node_id, host, port = r.i32(), r.compact_string(), r.i32()
        r.compact_string(True)  # rack
        r.tags()
        brokers.append({"id": node_id, "host": host, "port": port})
    return {"error_code": err, "cluster_id": cluster_id, "controller_id": controller, "brokers": brokers}


def probe(host, port, group, timeout):
    conn = Conn(host, port, timeout)
    try:
        versions = api_versions(conn)
    finally:
        conn.close()
    out = {"api_versions": {str(k): list(v) for k, v in sorted(versions.items())}}
    plan = (
        ("metadata", API_METADATA, lambda c, v: metadata(c, v)),
        ("find_coordinator", API_FIND_COORDINATOR, lambda c, v: find_coordinator(c, v, group)),
        ("describe_cluster", API_DESCRIBE_CLUSTER, lambda c, v: describe_cluster(c, v)),
    )
    for name, key, fn in plan:
        results = {}  # version (as str) -> result
        if key in versions:
            lo, hi = versions[key]
            for v in range(lo, min(hi, KNOWN_MAX[key]) + 1):
                # A fresh connection per version, so one bad answer cannot
                # desynchronise the next.
                try:
                    c = Conn(host, port, timeout)
                    try:
                        results[str(v)] = fn(c, v)
                    finally:
                        c.close()
                except Exception as exc:
                    results[str(v)] = {"error": repr(exc)}
        out[name] = results
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT of one endpoint")
    parser.add_argument("--group", default="kprobe-group")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    host, _, port = args.bootstrap.rpartition(":")
    print(json.dumps(probe(host, int(port), args.group, args.timeout), sort_keys=True))


if __name__ == "__main__":
    main()
