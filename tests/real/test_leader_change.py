"""Partition leaders move under real traffic, through kafka-edge (KIP-951 path).

kafka-edge offers Produce up to v9 and Fetch up to v15, the versions before
KIP-951 put leader addresses (NodeEndpoints) into their responses, so a
client that meets NOT_LEADER_OR_FOLLOWER learns the new leader from a
Metadata response, which kafka-edge rewrites.  This test makes that happen
for real: a dedicated mock cluster (3 brokers) moves the leaders of a
3-partition topic again and again (rd_kafka_mock_partition_set_leader) and
injects NOT_LEADER_OR_FOLLOWER into Produce and Fetch
(rd_kafka_mock_push_request_errors), while an idempotent producer and a
consumer (confluent-kafka, librdkafka 2.16) run through kafka-edge.

Checked: every record is delivered and consumed exactly once; the clients
end up on the leaders the cluster now has; every broker address they ever
held is a gateway address; nothing they logged and no byte kafka-edge sent
them (tcpdump on loopback) names the brokers' 127.0.0.1 or their ports.
"""

import json
import os
import time

import pytest

from netns import read_pcap
from realenv import (
    GATEWAY_IP,
    PYTHON,
    HERE,
    ManagedProc,
    MockClusterProc,
    read_line,
    require_tool,
    start_gateway,
    stop_gateway,
    wait_for,
)

CHURN_CLIENT = os.path.join(HERE, "churn_client.py")
TOPIC = "churn"
PARTITIONS = 3
NOT_LEADER_OR_FOLLOWER = 6
API_PRODUCE, API_FETCH = 0, 1


@pytest.fixture(scope="module")
def churn_env(workdir):
    """Its own mock cluster and gateway: moving leaders must not disturb other tests."""
    cluster = MockClusterProc(workdir, name="mockcluster-churn")
    gw = None
    try:
        gw = start_gateway(cluster, workdir, "kafka-edge-churn")
        cluster.create_topic(TOPIC, PARTITIONS)
        yield cluster, gw
    finally:
        if gw is not None:
            stop_gateway(gw)
        cluster.stop()


@pytest.fixture
def gateway_capture(churn_env, workdir):
    """tcpdump on loopback: every packet the gateway sends from its client-facing ports."""
    _, gw = churn_env
    tcpdump = require_tool("tcpdump")
    pcap = os.path.join(workdir, "churn-gateway-to-clients.pcap")
    ports = [gw.listen_port] + [gw.port_base + n for n in gw.cluster.node_ids]
    flt = "tcp and src host %s and (%s)" % (GATEWAY_IP, " or ".join("src port %d" % p for p in ports))
    cap = ManagedProc("tcpdump-churn", [tcpdump, "-i", "lo", "-n", "-U", "-s", "0", "-w", pcap, flt], workdir)
    try:
        if not wait_for(lambda: "listening on" in cap.log_text() or not cap.alive(), 15):
            raise AssertionError("tcpdump did not start\n%s" % cap.excerpt())
        assert cap.alive(), cap.excerpt()
        cap.pcap = pcap
        yield cap
    finally:
        cap.stop()


def test_clients_follow_moving_leaders_through_the_gateway(churn_env, gateway_capture, workdir):
    cluster, gw = churn_env
    count, rate = 600, 100.0
    client = ManagedProc(
        "churn-client",
        [PYTHON, CHURN_CLIENT, "--bootstrap", gw.bootstrap, "--topic", TOPIC, "--count", str(count), "--rate",
         str(rate), "--deadline", "60"],
        workdir,
        stdout_pipe=True,
    )
    try:
        assert read_line(client, 30, "churn client start") == "started"
        # Leaders start at broker 1..3 by partition (mock default); move them
        # round the brokers while records flow, and inject NOT_LEADER errors.
        leader = {p: None for p in range(PARTITIONS)}
        moves = []
        time.sleep(0.8)
        for i in range(9):
            p = i % PARTITIONS
            new = (i // PARTITIONS + p + 1) % 3 + 1
            cluster.control("leader %s %d %d" % (TOPIC, p, new), "ok leader %s %d %d" % (TOPIC, p, new))
            leader[p] = new
            moves.append((round(time.monotonic(), 2), p, new))
            if i == 4:
                for api in (API_PRODUCE, API_FETCH):
                    cluster.control("errors %d %d 3" % (api, NOT_LEADER_OR_FOLLOWER), "ok errors %d" % api)
            time.sleep(0.5)
        line = read_line(client, 90, "churn client result")
        rc = client.proc.wait(30)
    finally:
        client.stop()
    log = client.log_text()  # the clients' stderr: librdkafka metadata debug lines
    result = json.loads(line)
    context = "moves %s\nresult %s\nclient log %s" % (moves, json.dumps(result, sort_keys=True), client.log_path)
    assert rc == 0, context

    # Every record delivered and consumed exactly once, through every move.
    assert result["sent"] == count and result["delivered"] == count, context
    assert not result["delivery_errors"], context
    assert result["consumed"] == count and not result["missing"], context
    assert result["duplicates"] == 0, context

    # The clients saw the leaders move and ended on the cluster's leaders.
    assert all(len(seq) >= 2 for seq in result["leaders"].values()), "no leader change seen\n" + context
    assert result["final_leaders"] == {str(p): leader[p] for p in range(PARTITIONS)}, context

    # Every broker address the clients ever held: a gateway address.
    expected = {"%s:%d/%d" % (gw.host, gw.port_base + n, n) for n in cluster.node_ids}
    assert set(result["nodenames"]) <= expected and result["nodenames"], context
    upstream = cluster.upstream_strings()
    for text, what in ((log, "client log"), (line, "client result")):
        for hp in upstream:
            assert hp not in text, "upstream %s in the %s\n%s" % (hp, what, context)
        assert "127.0.0.1" not in text, "upstream host 127.0.0.1 in the %s\n%s" % (what, context)

    # No byte kafka-edge sent to the clients names an upstream address.
    time.sleep(0.3)
    gateway_capture.stop()
    packets = list(read_pcap(gateway_capture.pcap))
    payload = b"".join(p[4] for p in packets)
    summary = "%d packets, %d payload bytes in %s" % (len(packets), len(payload), gateway_capture.pcap)
    assert len(payload) > 10000 and GATEWAY_IP.encode() in payload, "capture saw no metadata: " + summary
    assert b"127.0.0.1" not in payload, "127.0.0.1 in what kafka-edge sent to clients: " + summary
    for hp in upstream:
        assert hp.encode() not in payload, "%s in what kafka-edge sent to clients: %s" % (hp, summary)
