"""Apache Kafka 4.4.0 with a separate controller quorum (ids 101-103) and 3 brokers (ids 1-3).

What a split layout adds over test_kafka_java.py's combined one: DescribeQuorum
answers name the controllers (ids the brokers' Metadata never lists), as
`kafka-metadata-quorum --bootstrap-server` and the Java Admin client show them
through kafka-edge; and transaction version 1: after the cluster's
transaction.version is downgraded to 1 (FeatureCommand), transactions and
Kafka Streams exactly_once_v2 take the AddPartitionsToTxn path, through
kafka-edge and directly, with both Java client lines and franz-go.
"""

import pytest

from kafkacluster import KAFKA_OLD_VERSION, KAFKA_VERSION, KafkaCluster
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
JAVA_NEW, JAVA_OLD = "java-" + KAFKA_VERSION, "java-" + KAFKA_OLD_VERSION
TV2_PLAN = {JAVA_NEW: ("produce", "group-consumer", "admin")}
TV1_PLAN = {JAVA_NEW: ("txn", "streams"), JAVA_OLD: ("txn", "streams"), "franz": ("txn",)}


@pytest.fixture(scope="module")
def net():
    with seed_network() as n:
        yield n


@pytest.fixture(scope="module")
def capture(net, workdir):
    cap = net.capture(workdir, "tcpdump-kafka-split")
    try:
        yield cap
    finally:
        cap.close()


@pytest.fixture(scope="module")
def kafka(net, workdir):
    cluster = KafkaCluster(net, workdir, "kafka44-split", version=KAFKA_VERSION, layout="split")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def gateway(net, kafka, capture, workdir):
    gw = net.start_gateway(kafka.view(), workdir, "kafka-edge-split", GATEWAY_PORT, PORT_BASE)
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.fixture(scope="module")
def tv2_runs(net, kafka, gateway):
    return client_runs(net, kafka, gateway, TV2_PLAN, "split")


@pytest.fixture(scope="module")
def tv1_runs(net, kafka, gateway, tv2_runs):
    """After transaction.version is downgraded to 1 (after the TV2 runs)."""
    res = kafka.tool(
        "org.apache.kafka.tools.FeatureCommand",
        ["--bootstrap-server", "{bootstrap}", "downgrade", "--feature", "transaction.version=1"],
    )
    described = kafka.tool("org.apache.kafka.tools.FeatureCommand", ["--bootstrap-server", "{bootstrap}", "describe"])
    line = [x for x in described.stdout.splitlines() if "Feature: transaction.version" in x]
    assert line and "FinalizedVersionLevel: 1" in line[0], describe(res) + describe(described)
    return client_runs(net, kafka, gateway, TV1_PLAN, "split-tv1")


@pytest.mark.parametrize("scenario", TV2_PLAN[JAVA_NEW])
def test_java_direct(tv2_runs, scenario):
    assert_direct(tv2_runs, JAVA_NEW, scenario)


@pytest.mark.parametrize("scenario", TV2_PLAN[JAVA_NEW])
def test_java_through_gateway(tv2_runs, scenario):
    assert_through_gateway(tv2_runs, JAVA_NEW, scenario)


def test_describe_quorum_names_only_gateway_addresses(tv2_runs, gateway):
    """DescribeQuorum v2 through kafka-edge: the controllers 101-103 at gateway addresses."""
    quorum = tv2_runs[(JAVA_NEW, "gateway")].op("admin", "describe_quorum")
    assert quorum and quorum[0]["voters"] == [101, 102, 103], tv2_runs[(JAVA_NEW, "gateway")].detail("admin")
    for endpoint in quorum[0]["endpoints"]:
        node, hostport = endpoint.split("@")
        assert hostport == "%s:%d" % (gateway.host, gateway.port_base + int(node)), quorum


def test_java_sees_only_gateway_addresses(net, kafka, gateway, tv2_runs, tv1_runs):
    assert_only_gateway_brokers(tv2_runs, gateway)
    assert_nothing_internal_printed(tv2_runs, kafka.internal_strings(), gap_needles=[net.edge_cluster_ip])
    assert_nothing_internal_printed(tv1_runs, kafka.internal_strings() + [net.edge_cluster_ip], gap=False)


@pytest.mark.parametrize("client,scenario", [(c, s) for c, ss in TV1_PLAN.items() for s in ss])
def test_tv1_direct(tv1_runs, client, scenario):
    assert_direct(tv1_runs, client, scenario)
    if scenario == "txn" and client.startswith("java-"):
        features = tv1_runs[(client, "direct")].op("txn", "features")
        assert features and features[0]["transaction.version"] == 1, features


@pytest.mark.parametrize("client,scenario", [(c, s) for c, ss in TV1_PLAN.items() for s in ss])
def test_tv1_through_gateway(tv1_runs, client, scenario):
    assert_through_gateway(tv1_runs, client, scenario)


def test_tool_metadata_quorum(net, kafka, gateway):
    """kafka-metadata-quorum --bootstrap-server through kafka-edge: the voters, at gateway addresses only."""
    res = kafka.tools.run(
        "org.apache.kafka.tools.MetadataQuorumCommand",
        ["--bootstrap-server", gateway.bootstrap, "describe", "--status"],
        prefix=net.prefix(net.ns_client),
    )
    assert res.returncode == 0 and "CurrentVoters" in res.stdout, describe(res)
    for node in (101, 102, 103):
        assert "%s:%d" % (gateway.host, gateway.port_base + node) in res.stdout, describe(res)
    for needle in kafka.internal_strings() + [net.edge_cluster_ip]:
        assert needle not in res.stdout + res.stderr, "%r in the tool's output\n%s" % (needle, describe(res))
    res = kafka.tools.run(
        "org.apache.kafka.tools.MetadataQuorumCommand",
        ["--bootstrap-server", gateway.bootstrap, "describe", "--replication"],
        prefix=net.prefix(net.ns_client),
    )
    assert res.returncode == 0 and res.stdout.count("Leader") + res.stdout.count("Follower") >= 3, describe(res)


def test_capture_contains_no_internal_address(net, kafka, gateway, capture, tv2_runs, tv1_runs):
    scan_capture(capture, net, kafka, min_received=100000)
