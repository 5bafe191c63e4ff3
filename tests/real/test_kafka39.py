"""Apache Kafka 3.9.2 (the newest 3.9.x; 3 combined KRaft nodes) with both Java client lines.

Version negotiation across releases: the 4.4.0 client against a 3.9 broker
behind kafka-edge, and the 3.9.2 client. A 3.9 cluster finalizes no
transaction.version (transactions take the AddPartitionsToTxn path); its
KIP-848 consumer protocol is a preview, enabled here
(group.coordinator.rebalance.protocols=classic,consumer). It has no share
groups.
"""

import pytest

from kafkacluster import KAFKA_OLD_VERSION, KAFKA_VERSION, KafkaCluster
from kafkaring import (
    assert_direct,
    assert_nothing_internal_printed,
    assert_only_gateway_brokers,
    assert_through_gateway,
    java_runs,
    scan_capture,
)
from netns import seed_network
from realenv import stop_gateway

GATEWAY_PORT = 9092
PORT_BASE = 19000
SCENARIOS = ("produce", "txn", "group-classic", "group-consumer", "admin", "streams")
PLAN = {KAFKA_VERSION: SCENARIOS, KAFKA_OLD_VERSION: SCENARIOS}
CASES = [(v, s) for v, ss in PLAN.items() for s in ss]


@pytest.fixture(scope="module")
def net():
    with seed_network() as n:
        yield n


@pytest.fixture(scope="module")
def capture(net, workdir):
    cap = net.capture(workdir, "tcpdump-kafka39")
    try:
        yield cap
    finally:
        cap.close()


@pytest.fixture(scope="module")
def kafka(net, workdir):
    cluster = KafkaCluster(
        net,
        workdir,
        "kafka39",
        version=KAFKA_OLD_VERSION,
        extra={"group.coordinator.rebalance.protocols": "classic,consumer"},
    )
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def gateway(net, kafka, capture, workdir):
    gw = net.start_gateway(kafka.view(), workdir, "kafka-edge-kafka39", GATEWAY_PORT, PORT_BASE)
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.fixture(scope="module")
def runs(net, kafka, gateway):
    return java_runs(net, kafka, gateway, PLAN, "k39")


@pytest.mark.parametrize("version,scenario", CASES)
def test_java_direct(runs, version, scenario):
    assert_direct(runs, version, scenario)


@pytest.mark.parametrize("version,scenario", CASES)
def test_java_through_gateway(runs, version, scenario):
    assert_through_gateway(runs, version, scenario)


def test_java_sees_only_gateway_addresses(net, kafka, gateway, runs):
    assert_only_gateway_brokers(runs, gateway)
    assert_nothing_internal_printed(runs, kafka.internal_strings(), gap_needles=[net.edge_cluster_ip])


def test_capture_contains_no_internal_address(net, kafka, gateway, capture, runs):
    scan_capture(capture, net, kafka, min_received=100000)
