"""acks=0 Produce on one connection, raw protocol: with and without kafka-edge.

The Kafka protocol sends no response to a Produce request with acks=0.  Both
brokers of this suite answer it anyway (measured here, straight to the
broker: the librdkafka 2.16 mock and tansu 0.6.0 each return a Produce
response).  A client straight to the broker keeps its connection (librdkafka,
kafkajs and aiokafka ignore the stray answer).  Through kafka-edge the same
connection must stay usable too: this test sends three acks=0 Produce
requests back to back, then a Metadata request, on one connection to the
partition leader, and expects the Metadata answer, and all three records in
the topic.  Before the gateway owned its correlation ids, kafka-edge closed
the connection instead ("broker sent a response with no request
outstanding"), which lost the acks=0 requests still in flight: the
compatibility matrix saw acks=0 producers lose records through kafka-edge
only.
"""

import socket
import struct
import time

import pytest

from clients import Client

PRODUCE, METADATA = 0, 3


def frame(api_key, version, correlation_id, body):
    client_id = b"acks0-probe"
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    return struct.pack(">i", len(header) + len(body)) + header + body


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = CRC32C_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def varint(n):
    n = (n << 1) ^ (n >> 63)  # zigzag
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def record_batch(value):
    """A v2 record batch holding one record (key = value), no compression."""
    body = b"\x00" + varint(0) + varint(0) + varint(len(value)) + value + varint(len(value)) + value + varint(0)
    record = varint(len(body)) + body
    now = int(time.time() * 1000)
    # attributes, last offset delta, first/max timestamp, producer id/epoch, base sequence, record count
    after_crc = struct.pack(">hiqqqhii", 0, 0, now, now, -1, -1, -1, 1) + record
    batch_tail = struct.pack(">bI", 2, crc32c(after_crc)) + after_crc  # magic, crc
    partition_leader_epoch = struct.pack(">i", -1)
    length = len(partition_leader_epoch) + len(batch_tail)
    return struct.pack(">qi", 0, length) + partition_leader_epoch + batch_tail


def produce_v3_acks0(topic, partition, value):
    """Produce v3, acks=0, one record batch (v2) with one record."""
    batch = record_batch(value)
    name = topic.encode()
    return (
        struct.pack(">hhi", -1, 0, 5000)  # transactional id null, acks=0, timeout
        + struct.pack(">ih", 1, len(name))
        + name
        + struct.pack(">iii", 1, partition, len(batch))
        + batch
    )


def exchange(host, port, topic, partition, values, timeout=5.0):
    """Send the acks=0 produces and a Metadata v1 (no topics) on one connection.

    Returns (correlation ids answered, in order; whether the Metadata answer came).
    """
    sock = socket.create_connection((host, port), timeout=timeout)
    answered = []
    try:
        data = b"".join(
            frame(PRODUCE, 3, i + 1, produce_v3_acks0(topic, partition, v.encode())) for i, v in enumerate(values)
        )
        metadata_id = len(values) + 1
        data += frame(METADATA, 1, metadata_id, struct.pack(">i", 0))
        sock.sendall(data)
        buf, deadline = b"", time.monotonic() + timeout
        while time.monotonic() < deadline:
            while len(buf) >= 8:
                size = struct.unpack(">i", buf[:4])[0]
                if len(buf) < 4 + size:
                    break
                cid = struct.unpack(">i", buf[4:8])[0]
                answered.append(cid)
                buf = buf[4 + size :]
                if cid == metadata_id:
                    return answered, True
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, ConnectionError):
                break
            if not chunk:
                break  # closed
            buf += chunk
        return answered, False
    finally:
        sock.close()


@pytest.fixture
def cluster_and_gateway(request):
    kind = request.param
    return request.getfixturevalue("%s_cluster" % kind), request.getfixturevalue("%s_gateway" % kind)


@pytest.mark.parametrize("cluster_and_gateway", ["mock", "tansu"], indirect=True)
def test_acks0_answered_by_the_broker_keeps_the_connection(cluster_and_gateway, kcats, topic_name):
    cluster, gw = cluster_and_gateway
    cluster.create_topic(topic_name, 1)
    md = Client("confluent", kcats).metadata(gw.bootstrap, cluster)
    assert md.ok, md.detail
    reader = Client("confluent", kcats)
    # Leader of partition 0, straight and through the gateway.
    from confluent_kafka.admin import AdminClient

    leader = AdminClient({"bootstrap.servers": gw.bootstrap}).list_topics(topic_name, timeout=10).topics[
        topic_name
    ].partitions[0].leader
    direct_host, direct_port = cluster.advertised[leader]

    direct_values = ["direct-%d" % i for i in range(3)]
    answered, got_metadata = exchange(direct_host, direct_port, topic_name, 0, direct_values)
    # The broker quirk this test is about (if a broker stops answering acks=0,
    # this test is moot for it, and says so).
    assert [c for c in answered if c <= 3], "%s no longer answers acks=0 Produce: %s" % (cluster.kind, answered)
    assert got_metadata, "straight to %s the connection broke: answered %s" % (cluster.kind, answered)

    gw_values = ["gateway-%d" % i for i in range(3)]
    answered, got_metadata = exchange(gw.listen_ip, gw.port_base + leader, topic_name, 0, gw_values)
    assert got_metadata, (
        "through kafka-edge the connection closed after the broker answered an acks=0 Produce "
        "(answered correlation ids %s; a direct connection keeps working)\n%s" % (answered, gw.excerpt(5))
    )
    cons = reader.consume(gw.bootstrap, cluster, topic_name, 6)
    assert cons.ok and sorted(cons.data) == sorted(direct_values + gw_values), cons.detail
