"""Raw Kafka protocol for the parts of scripts/bench-e2e no client can do.

  * ``FetchLoop``: the same Fetch request over and over at a chosen version, so consume can
    be compared at Fetch v15 (before KIP-951's NodeEndpoints) and v16+ through the same
    gateway, with the same client: no client lets its Fetch version be capped.
  * ``big_metadata``: a Metadata v12 answer of N brokers and P partitions, and
    ``FakeBroker``, a process that serves it (and ApiVersions) to measure what the gateway
    holds while rewriting it.
  * ``produce_swarm``: C connections producing at once, each one small Produce at a time.

Our own small codec: only the fields these requests and answers need. Answers are read with
tests/real/kprobe.py's Reader, which checks every length read off the wire against what is
left.
"""

import os
import selectors
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "real"))
from kprobe import Reader  # noqa: E402

API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3
API_API_VERSIONS = 18


# === encoding ===


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


def varint(n):
    return uvarint((n << 1) ^ (n >> 63))


def compact_string(s):
    if s is None:
        return b"\x00"
    b = s.encode()
    return uvarint(len(b) + 1) + b


def compact_array(items):
    return uvarint(len(items) + 1) + b"".join(items)


TAGS = b"\x00"


def request(api_key, version, corr, body, flexible):
    """A size-prefixed request: header v2 (flexible) or v1."""
    head = struct.pack(">hhi", api_key, version, corr) + struct.pack(">h", 9) + b"bench-e2e"
    if flexible:
        head += TAGS
    frame = head + body
    return struct.pack(">i", len(frame)) + frame


def recv_exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError("closed after %d of %d bytes" % (got, n))
        got += k
    return bytes(buf)


def read_frame(sock):
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    if size < 4 or size > 1 << 30:
        raise ValueError("frame size %d" % size)
    return recv_exact(sock, size)


# === Fetch at a chosen version ===


def topic_id(sock, topic):
    """The topic's id and partition count, from a Metadata v12 answer."""
    body = compact_array([uuid_zero() + compact_string(topic) + TAGS]) + b"\x00\x00" + TAGS
    sock.sendall(request(API_METADATA, 12, 1, body, True))
    r = Reader(read_frame(sock))
    r.i32()  # correlation id
    r.tags()
    r.i32()  # throttle
    for _ in range(r.uvarint() - 1):  # brokers
        r.i32()
        r.compact_string()
        r.i32()
        r.compact_string(nullable=True)  # rack
        r.tags()
    r.compact_string(nullable=True)  # cluster id
    r.i32()  # controller
    if r.uvarint() - 1 != 1:
        raise ValueError("expected one topic")
    err = r.i16()
    name = r.compact_string()
    tid = r.take(16)
    r.i8()
    parts = r.uvarint() - 1
    if err or name != topic or parts < 1:
        raise ValueError("topic %s: error %d, %d partitions" % (topic, err, parts))
    return tid, parts


def uuid_zero():
    return b"\x00" * 16


def fetch_request(version, corr, tid, partitions, max_bytes, partition_max_bytes):
    """Fetch v13-v18 from offset 0 of every partition: the same bytes at each of these versions
    but the version itself (v13+ names topics by id; v15+ moved the replica id to a tag)."""
    parts = []
    for p in range(partitions):
        parts.append(struct.pack(">iiqiqi", p, -1, 0, -1, -1, partition_max_bytes) + TAGS)
    body = b""
    if version <= 14:
        body += struct.pack(">i", -1)  # replica id (v15+: a tagged field of brokers only)
    body += struct.pack(">iiibii", 0, 1, max_bytes, 0, 0, -1)
    body += compact_array([tid + compact_array(parts) + TAGS])
    body += compact_array([])  # forgotten topics
    body += compact_string("")  # rack
    body += TAGS
    return request(API_FETCH, version, corr, body, True)


def fetch_loop(host, port, topic, version, seconds):
    """Fetches the whole topic again and again for `seconds`; returns (bytes, elapsed)."""
    with socket.create_connection((host, port), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tid, parts = topic_id(s, topic)
        req = fetch_request(version, 2, tid, parts, 64 << 20, 8 << 20)
        buf = bytearray(4 << 20)
        view = memoryview(buf)
        total = 0
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            s.sendall(req)
            size = struct.unpack(">i", recv_exact(s, 4))[0]
            head = recv_exact(s, 8)  # correlation id, tagged fields byte, throttle (v13+)
            if struct.unpack(">i", head[:4])[0] != 2:
                raise ValueError("unexpected correlation id")
            left = size - 8
            while left > 0:
                k = s.recv_into(view, min(left, len(buf)))
                if k == 0:
                    raise ConnectionError("closed inside a Fetch answer")
                left -= k
            total += size + 4
        return total, time.monotonic() - start


# === a big Metadata answer ===


def big_metadata_body(brokers, partitions, topics, host_of):
    """Metadata v12 answer body: `brokers` brokers, `partitions` spread over `topics` topics."""
    out = [struct.pack(">i", 0)]  # throttle
    out.append(uvarint(brokers + 1))
    for b in range(1, brokers + 1):
        host, port = host_of(b)
        out.append(struct.pack(">i", b) + compact_string(host) + struct.pack(">i", port) + compact_string(None) + TAGS)
    out.append(compact_string("bench-cluster") + struct.pack(">i", 1))
    out.append(uvarint(topics + 1))
    per = partitions // topics if topics else 0
    for t in range(topics):
        out.append(struct.pack(">h", 0) + compact_string("topic-%04d" % t) + struct.pack(">QQ", t + 1, t + 1) + b"\x00")
        out.append(uvarint(per + 1))
        for p in range(per):
            replicas = [(p + k) % brokers + 1 for k in range(3)]
            arr = uvarint(4) + b"".join(struct.pack(">i", r) for r in replicas)
            out.append(struct.pack(">hiii", 0, p, replicas[0], 0) + arr + arr + uvarint(1) + TAGS)
        out.append(struct.pack(">i", -2147483648) + TAGS)  # topic authorized operations
    out.append(TAGS)
    return b"".join(out)


def api_versions_body():
    """ApiVersions v0 answer: the APIs the fake serves (Metadata v0-12, ApiVersions v0-3)."""
    keys = [(API_METADATA, 0, 12), (API_API_VERSIONS, 0, 3)]
    return struct.pack(">hi", 0, len(keys)) + b"".join(struct.pack(">hhh", *k) for k in keys)


def fake_broker(port, brokers, partitions, topics):
    """Serves ApiVersions and one precomputed Metadata v12 answer, forever (a process). Prints
    `ready PORT ANSWER_BYTES` once listening (port 0: any free port)."""
    host_of = lambda b: ("10.99.%d.%d" % (b // 250, b % 250 + 1), 9092)  # noqa: E731 - internal addresses
    big = big_metadata_body(brokers, partitions, topics, host_of)
    # The gateway's own refresh asks Metadata v4 for brokers alone.
    v4 = [struct.pack(">ii", 0, brokers)]
    for b in range(1, brokers + 1):
        host, broker_port = host_of(b)
        v4.append(struct.pack(">ih", b, len(host)) + host.encode() + struct.pack(">ih", broker_port, -1))
    v4.append(struct.pack(">h", -1) + struct.pack(">ii", 1, 0))
    small_v4 = b"".join(v4)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    print("ready %d %d" % (srv.getsockname()[1], len(big)), flush=True)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is srv:
                conn, _ = srv.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.setblocking(True)
                sel.register(conn, selectors.EVENT_READ)
                continue
            conn = key.fileobj
            try:
                frame = read_frame(conn)
            except (OSError, ValueError):
                sel.unregister(conn)
                conn.close()
                continue
            api, version, corr = struct.unpack(">hhi", frame[:8])
            if api == API_API_VERSIONS:
                answer = struct.pack(">i", corr) + api_versions_body()
            elif api == API_METADATA and version == 12:
                answer = struct.pack(">i", corr) + TAGS + big
            elif api == API_METADATA and version == 4:
                answer = struct.pack(">i", corr) + small_v4
            else:
                sel.unregister(conn)
                conn.close()
                continue
            conn.sendall(struct.pack(">i", len(answer)) + answer)


def metadata_all_topics(host, port):
    """One Metadata v12 request for all topics; returns (answer bytes, seconds)."""
    with socket.create_connection((host, port), timeout=60) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(request(API_API_VERSIONS, 0, 1, b"", False))
        read_frame(s)
        # Topics: null (0) = all topics; then allow auto-create false, topic authorized ops false.
        body = b"\x00" + b"\x00\x00" + TAGS
        t0 = time.monotonic()
        s.sendall(request(API_METADATA, 12, 2, body, True))
        frame = read_frame(s)
        return len(frame) + 4, time.monotonic() - t0, frame


# === many connections producing at once ===


def crc32c(data, _table=[]):
    if not _table:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _table.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = _table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def record_batch(value, count):
    """A v2 record batch of `count` records of `value`, no key, no compression."""
    records = b""
    for i in range(count):
        rec = b"\x00" + varint(0) + varint(i) + varint(-1) + varint(len(value)) + value + uvarint(0)
        records += varint(len(rec)) + rec
    now = int(time.time() * 1000)
    after_crc = struct.pack(">hiqqqhii", 0, count - 1, now, now, -1, -1, -1, count) + records
    crc = crc32c(after_crc)
    tail = struct.pack(">ibI", 0, 2, crc) + after_crc  # partition leader epoch, magic, crc
    return struct.pack(">qi", 0, len(tail)) + tail


def produce_request(corr, topic, partition, batch):
    """Produce v8 (the last non-flexible version: one encoder covers every broker here)."""
    name = topic.encode()
    body = struct.pack(">hhi", -1, 1, 30000)  # transactional id null, acks=1, timeout
    body += struct.pack(">ih", 1, len(name)) + name + struct.pack(">ii", 1, partition)
    body += struct.pack(">i", len(batch)) + batch
    return request(API_PRODUCE, 8, corr, body, False)


def produce_swarm(host, port, topic, partitions, conns, seconds, record_bytes):
    """`conns` connections, each sending one Produce (10 records) and awaiting its answer, for
    `seconds`. Returns (answers, bytes of record values, elapsed, latency p50/p99 in µs)."""
    batch = record_batch(os.urandom(record_bytes), 10)
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(conns):
        s = socket.create_connection((host, port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    reqs = [produce_request(7, topic, i % partitions, batch) for i in range(conns)]
    state = {}
    for i, s in enumerate(socks):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        state[i] = [bytearray(), time.monotonic()]
        s.sendall(reqs[i])
    answers = 0
    lat = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        for key, _ in sel.select(timeout=1.0):
            i = key.data
            s = key.fileobj
            buf = state[i][0]
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("connection %d closed" % i)
            buf += chunk
            if len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">i", buf[:4])[0]:
                now = time.monotonic()
                lat.append(now - state[i][1])
                answers += 1
                del buf[:]
                state[i][1] = now
                s.setblocking(True)
                s.sendall(reqs[i])
                s.setblocking(False)
    elapsed = time.monotonic() - start
    for s in socks:
        s.close()
    lat.sort()
    pct = lambda q: lat[int((len(lat) - 1) * q)] * 1e6 if lat else None  # noqa: E731
    return answers, answers * 10 * record_bytes, elapsed, pct(0.5), pct(0.99)


if __name__ == "__main__":
    # python3 bench_wire.py fake-broker PORT BROKERS PARTITIONS TOPICS
    if len(sys.argv) == 6 and sys.argv[1] == "fake-broker":
        fake_broker(*(int(a) for a in sys.argv[2:]))
    else:
        sys.exit("usage: bench_wire.py fake-broker PORT BROKERS PARTITIONS TOPICS")
