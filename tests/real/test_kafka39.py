"""Apache Kafka 3.9.2 (the newest 3.9.x; 3 combined KRaft nodes) with the Java and Go clients.

Version negotiation across releases: the 4.4.0 Java client against a 3.9
broker behind kafka-edge, the 3.9.2 one, franz-go, sarama, segmentio/kafka-go. A 3.9 cluster finalizes no
transaction.version (transactions take the AddPartitionsToTxn path); its
KIP-848 consumer protocol is a preview, enabled here
(group.coordinator.rebalance.protocols=classic,consumer). It has no share
groups.
"""

import pytest

from clientrun import CLIENTS
from kafkacluster import KAFKA_OLD_VERSION, KafkaCluster
from kafkaring import (
    assert_direct,
    assert_nothing_internal_printed,
    assert_only_gateway_brokers,
    assert_through_gateway,
    client_runs,
    scan_capture,
)
from netns import seed_network
from realenv import stop_gateway

GATEWAY_PORT = 9092
PORT_BASE = 19000
# No share groups before Kafka 4.0; franz-go's KIP-848 consumer (ServerSideBalancer) needs
# Kafka 4.0+ (its documentation; against the 3.9 preview its ConsumerGroupDescribe shows no
# group, directly too).
NOT_ON_39 = {("*", "share"), ("franz", "group-consumer")}
PLAN = {
    client: tuple(s for s in scenarios if ("*", s) not in NOT_ON_39 and (client, s) not in NOT_ON_39)
    for client, scenarios in CLIENTS.items()
}
CASES = [(c, s) for c, ss in PLAN.items() for s in ss]


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
    return client_runs(net, kafka, gateway, PLAN, "k39")


@pytest.mark.parametrize("client,scenario", CASES)
def test_direct(runs, client, scenario):
    assert_direct(runs, client, scenario)


@pytest.mark.parametrize("client,scenario", CASES)
def test_through_gateway(runs, client, scenario):
    assert_through_gateway(runs, client, scenario)


def test_clients_see_only_gateway_addresses(net, kafka, gateway, runs):
    assert_only_gateway_brokers(runs, gateway)
    assert_nothing_internal_printed(runs, kafka.internal_strings(), gap_needles=[net.edge_cluster_ip])


def test_capture_contains_no_internal_address(net, kafka, gateway, capture, runs):
    scan_capture(capture, net, kafka, min_received=100000)
