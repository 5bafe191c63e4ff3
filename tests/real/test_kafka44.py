"""Apache Kafka 4.4.0 (3 combined KRaft nodes, one internal IP each) with the Java and Go clients and Kafka's tools.

The seed topology (netns.py): the brokers in the cluster namespace, kafka-edge
in the edge namespace, the clients in the client namespace. Each client of
clientrun.CLIENTS (Java with kafka-clients 4.4.0 and 3.9.2; franz-go, sarama,
segmentio/kafka-go) runs every scenario it has twice: through kafka-edge from
the client namespace, and directly from the cluster namespace, so a failure
is attributed: a scenario that passes directly and fails through the gateway
is the gateway's. Then Kafka's own tools run through the gateway. Last, the
leak scan of the client namespace's capture: nothing internal (IP, host:port)
ever reached a client.
"""

import json

import pytest

from clientrun import CLIENTS
from kafkacluster import KAFKA_VERSION, KafkaCluster
from kafkaring import (
    assert_direct,
    assert_nothing_internal_printed,
    assert_only_gateway_brokers,
    assert_through_gateway,
    client_runs,
    scan_capture,
)
from netns import seed_network
from realenv import describe, stop_gateway

GATEWAY_PORT = 9092
PORT_BASE = 19000
CASES = [(c, s) for c, scenarios in CLIENTS.items() for s in scenarios]


@pytest.fixture(scope="module")
def net():
    with seed_network() as n:
        yield n


@pytest.fixture(scope="module")
def capture(net, workdir):
    cap = net.capture(workdir, "tcpdump-kafka44")
    try:
        yield cap
    finally:
        cap.close()


@pytest.fixture(scope="module")
def kafka(net, workdir):
    cluster = KafkaCluster(net, workdir, "kafka44", version=KAFKA_VERSION)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def gateway(net, kafka, capture, workdir):
    gw = net.start_gateway(kafka.view(), workdir, "kafka-edge-kafka44", GATEWAY_PORT, PORT_BASE)
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.fixture(scope="module")
def runs(net, kafka, gateway):
    return client_runs(net, kafka, gateway, CLIENTS, "k44")


@pytest.mark.parametrize("client,scenario", CASES)
def test_direct(runs, client, scenario):
    assert_direct(runs, client, scenario)


@pytest.mark.parametrize("client,scenario", CASES)
def test_through_gateway(runs, client, scenario):
    # The cluster finalizes transaction.version=2 (the 4.x default).
    assert_through_gateway(runs, client, scenario, gap_key=("tv2", client, scenario))


def test_clients_see_only_gateway_addresses(net, kafka, gateway, runs):
    """Every broker a client was told of is a gateway address; nothing internal in what it printed."""
    assert_only_gateway_brokers(runs, gateway)
    assert_nothing_internal_printed(runs, kafka.internal_strings(), gap_needles=[net.edge_cluster_ip])


# ------------------------------------------------------------------ Kafka's own tools through kafka-edge

TOOL_TOPIC = "tools-t"


@pytest.fixture(scope="module")
def tools_topic(kafka):
    kafka.create_topic(TOOL_TOPIC, 3)
    return TOOL_TOPIC


def tool(net, kafka, gateway, main_class, args, timeout=120):
    """A kafka-tools class of Kafka 4.4.0, from the client namespace, against the gateway."""
    args = [gateway.bootstrap if a == "{gw}" else a for a in args]
    return kafka.tools.run(main_class, args, prefix=net.prefix(net.ns_client), timeout=timeout)


def assert_clean(res, net, kafka):
    text = res.stdout + res.stderr
    for needle in kafka.internal_strings() + [net.edge_cluster_ip]:
        assert needle not in text, "%r in the tool's output\n%s" % (needle, describe(res))


def test_tool_topics(net, kafka, gateway, tools_topic):
    res = tool(net, kafka, gateway, "org.apache.kafka.tools.TopicCommand", ["--bootstrap-server", "{gw}", "--list"])
    assert res.returncode == 0 and tools_topic in res.stdout.split(), describe(res)
    res = tool(
        net, kafka, gateway, "org.apache.kafka.tools.TopicCommand",
        ["--bootstrap-server", "{gw}", "--describe", "--topic", tools_topic],
    )  # fmt: skip
    assert res.returncode == 0 and res.stdout.count("Leader:") == 3, describe(res)
    assert_clean(res, net, kafka)


def test_tool_broker_api_versions(net, kafka, gateway):
    res = tool(net, kafka, gateway, "org.apache.kafka.tools.BrokerApiVersionsCommand", ["--bootstrap-server", "{gw}"])
    assert res.returncode == 0, describe(res)
    for b in gateway.expected_brokers():
        assert "%s:%d (id: %d" % (b["host"], b["port"], b["id"]) in res.stdout, describe(res)
    assert_clean(res, net, kafka)


def test_tool_metadata_quorum(net, kafka, gateway):
    for what in ("--status", "--replication"):
        res = tool(
            net, kafka, gateway, "org.apache.kafka.tools.MetadataQuorumCommand",
            ["--bootstrap-server", "{gw}", "describe", what],
        )  # fmt: skip
        assert res.returncode == 0, describe(res)
        assert_clean(res, net, kafka)
    assert "LeaderId" in res.stdout or "NodeId" in res.stdout, describe(res)


def test_tool_get_offsets_and_verifiable_clients(net, kafka, gateway, tools_topic):
    """VerifiableProducer then VerifiableConsumer (their own accounting), then GetOffsetShell agrees."""
    count = 500
    res = tool(
        net, kafka, gateway, "org.apache.kafka.tools.VerifiableProducer",
        ["--bootstrap-server", "{gw}", "--topic", tools_topic, "--max-messages", count, "--acks", "-1"],
    )  # fmt: skip
    events = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    summary = [e for e in events if e.get("name") == "tool_data"]
    assert res.returncode == 0 and summary and summary[0]["acked"] == count and summary[0]["sent"] == count, describe(res)
    res = tool(
        net, kafka, gateway, "org.apache.kafka.tools.VerifiableConsumer",
        ["--bootstrap-server", "{gw}", "--topic", tools_topic, "--group-id", "tools-g", "--max-messages", count,
         "--reset-policy", "earliest", "--group-protocol", "consumer"],
    )  # fmt: skip
    events = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    consumed = sum(e["count"] for e in events if e.get("name") == "records_consumed")
    committed = [e for e in events if e.get("name") == "offsets_committed"]
    assert res.returncode == 0 and consumed == count, describe(res)
    assert committed and all(e["success"] for e in committed), describe(res)
    res = tool(
        net, kafka, gateway, "org.apache.kafka.tools.GetOffsetShell",
        ["--bootstrap-server", "{gw}", "--topic", tools_topic],
    )  # fmt: skip
    offsets = {int(p): int(o) for _, p, o in (line.rsplit(":", 2) for line in res.stdout.split())}  # topic:partition:offset
    assert res.returncode == 0 and sorted(offsets) == [0, 1, 2] and sum(offsets.values()) == count, describe(res)
    # The group's committed offsets, per partition, as the group command sees them (the group is empty now).
    res = tool(
        net, kafka, gateway, "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        ["--bootstrap-server", "{gw}", "--describe", "--group", "tools-g"],
    )  # fmt: skip
    rows = [line.split() for line in res.stdout.splitlines() if line.startswith("tools-g ")]
    assert res.returncode == 0 and sum(int(r[3]) for r in rows) == count, describe(res)
    assert_clean(res, net, kafka)


# ------------------------------------------------------------------ last: the capture


def test_capture_contains_no_internal_address(net, kafka, gateway, capture, runs):
    scan_capture(capture, net, kafka, min_received=200000)
