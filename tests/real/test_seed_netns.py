"""The seed scenario: clients outside a private network, brokers inside it.

Three network namespaces (see netns.py): Apache Kafka 4.4.0 (3 combined
KRaft nodes, each on an internal address of its own, kafkacluster.py) in
"cluster"; "edge" has a leg in each network and does not forward IP;
"client" can reach only the edge.

1. Without kafka-edge (a plain TCP port forward on the edge), a client can
   bootstrap and read Metadata, but it names the internal addresses and
   producing fails: the problem kafka-edge exists to solve.
2. With kafka-edge on the edge (listening and advertising its client-side
   address), metadata shows only gateway addresses; produce, consume and a
   consumer group work, for both kcat generations and both Python clients.
3. A tcpdump capture of everything the client exchanged with the edge while
   kafka-edge served it contains none of the internal addresses.

Namespaces carry a per-run tag and are deleted (after killing whatever still
runs inside them) in the fixture teardown, also when a test fails.
"""

import pytest

from clients import CLIENTS, Client, make_values
from kafkacluster import KafkaCluster
from netns import SeedNetwork, leak_scan, seed_network
from realenv import (
    PYTHON,
    TCPFORWARD,
    ManagedProc,
    describe,
    kclient,
    read_line,
    stop_gateway,
)

GATEWAY_PORT = 9092  # kafka-edge bootstrap port on the edge's client-side address
PORT_BASE = 19000  # broker N at PORT_BASE + N
FORWARD_PORT = 29092  # the plain TCP forwarder of the "without kafka-edge" test


@pytest.fixture(scope="module")
def seed_net():
    with seed_network() as net:
        yield net


@pytest.fixture(scope="module")
def seed_cluster(seed_net, workdir):
    """3 Kafka nodes, each listening on (and advertising) an internal IP of its own in the cluster ns."""
    cluster = KafkaCluster(seed_net, workdir, "kafka-seed")
    try:
        yield cluster.view()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def client_capture(seed_net, workdir):
    """tcpdump in the client ns, running before kafka-edge starts (the forwarder's port excluded)."""
    cap = seed_net.capture(workdir, "tcpdump-seed-client", "tcp and not port %d" % FORWARD_PORT)
    try:
        yield cap
    finally:
        cap.close()


@pytest.fixture(scope="module")
def seed_gateway(seed_net, seed_cluster, client_capture, workdir):
    """kafka-edge inside the edge ns, advertising its client-side address."""
    gw = seed_net.start_gateway(seed_cluster, workdir, "kafka-edge-seed", GATEWAY_PORT, PORT_BASE)
    try:
        yield gw
    finally:
        stop_gateway(gw)


def assert_no_internal_text(text, net, context):
    for ip in net.internal_ips():
        assert ip not in text, "internal address %s reached the client\n%s" % (ip, context)


# --------------------------------------------------------------------- 1.


def test_without_gateway_client_sees_internal_addresses_and_cannot_produce(seed_net, seed_cluster, kcats, workdir):
    client_ns = SeedNetwork.prefix(seed_net.ns_client)
    # The internal network is not routable from the client at all.
    broker_host, broker_port = seed_cluster.advertised[1]
    assert not seed_net.connect_check(seed_net.ns_client)(broker_host, broker_port, timeout=2), (
        "client ns can reach the internal broker %s:%d directly" % (broker_host, broker_port)
    )
    # ... while the cluster ns can (the check itself works).
    assert seed_net.connect_check(seed_net.ns_cluster)(broker_host, broker_port), "broker not reachable in its ns"

    # A plain L4 port forward on the edge, pointing at broker 1.
    fwd = ManagedProc(
        "tcpforward-seed",
        SeedNetwork.prefix(seed_net.ns_edge)
        + [
            PYTHON,
            TCPFORWARD,
            "--listen",
            "%s:%d" % (seed_net.edge_client_ip, FORWARD_PORT),
            "--target",
            seed_cluster.bootstrap[0],
        ],
        workdir,
        stdout_pipe=True,
    )
    try:
        read_line(fwd, 15, "forwarder ready line")
        bootstrap = "%s:%d" % (seed_net.edge_client_ip, FORWARD_PORT)

        # Bootstrapping works (librdkafka 2.0.2 answers -L from the bootstrap
        # connection), and the metadata names the internal addresses.
        md = Client("kcat-2.0.2", kcats).metadata(bootstrap, seed_cluster, prefix=client_ns)
        assert md.ok, md.detail
        internal = {host for host, _ in seed_cluster.advertised.values()}
        assert {b["host"] for b in md.data["brokers"]} == internal, md.detail

        # Producing cannot work: the partition leaders are unreachable.
        seed_cluster.create_topic("seed-nogw", 3)
        for name in ("kcat-2.0.2", "confluent"):
            prod = Client(name, kcats).produce(
                bootstrap, seed_cluster, "seed-nogw", "nogw", 5, prefix=client_ns, deadline=6
            )
            assert not prod.ok, "%s produced without kafka-edge?\n%s" % (name, prod.detail)
            # ... because the client tried the internal addresses it was given.
            assert any(ip in prod.detail for ip in internal) and "unreachable" in prod.detail, prod.detail
    finally:
        fwd.stop()


# --------------------------------------------------------------------- 2.


@pytest.mark.parametrize("client_name", CLIENTS)
def test_gateway_metadata_lists_only_gateway(seed_net, seed_gateway, kcats, client_name):
    md = Client(client_name, kcats).metadata(
        seed_gateway.bootstrap, seed_gateway.cluster, prefix=SeedNetwork.prefix(seed_net.ns_client)
    )
    assert md.ok, md.detail
    got = sorted(
        ({"id": b["id"], "host": b["host"], "port": b["port"]} for b in md.data["brokers"]), key=lambda b: b["id"]
    )
    assert got == seed_gateway.expected_brokers(), md.detail
    assert_no_internal_text(md.data["raw"], seed_net, md.detail)


@pytest.mark.parametrize("client_name", CLIENTS)
def test_gateway_produce_and_consume(seed_net, seed_gateway, kcats, client_name):
    client = Client(client_name, kcats)
    prefix = SeedNetwork.prefix(seed_net.ns_client)
    topic = "seed-pc-%s" % client_name.replace(".", "")
    seed_gateway.cluster.create_topic(topic, 3)
    values = make_values("seed-%s" % client_name, 25)
    prod = client.produce(
        seed_gateway.bootstrap, seed_gateway.cluster, topic, "seed-%s" % client_name, len(values), prefix=prefix
    )
    assert prod.ok, prod.detail
    cons = client.consume(seed_gateway.bootstrap, seed_gateway.cluster, topic, len(values), prefix=prefix)
    assert cons.ok, cons.detail
    assert sorted(cons.data) == sorted(values), cons.detail


@pytest.mark.parametrize("client_name", CLIENTS)
def test_gateway_consumer_group(seed_net, seed_gateway, kcats, client_name):
    client = Client(client_name, kcats)
    prefix = SeedNetwork.prefix(seed_net.ns_client)
    topic = "seed-grp-%s" % client_name.replace(".", "")
    seed_gateway.cluster.create_topic(topic, 3)
    values = make_values("sgrp-%s" % client_name, 10)
    prod = client.produce(
        seed_gateway.bootstrap, seed_gateway.cluster, topic, "sgrp-%s" % client_name, len(values), prefix=prefix
    )
    assert prod.ok, prod.detail
    res = client.consume_group(
        seed_gateway.bootstrap, seed_gateway.cluster, topic, "seed-g-" + topic, len(values), prefix=prefix
    )
    assert res.ok, res.detail
    assert sorted(res.data["values"]) == sorted(values), res.detail
    assert res.data["committed_total"] == len(values), res.detail


# --------------------------------------------------------------------- 3.


def test_client_capture_contains_no_internal_address(seed_net, seed_gateway, client_capture, kcats):
    """Last in this module: stops the capture that ran since before kafka-edge."""
    prefix = SeedNetwork.prefix(seed_net.ns_client)
    cluster = seed_gateway.cluster
    # Traffic of its own, so this test is meaningful when run alone too.
    md = Client("kcat-2.16", kcats).metadata(seed_gateway.bootstrap, cluster, prefix=prefix)
    assert md.ok, md.detail
    cluster.create_topic("seed-capture", 3)
    prod = Client("confluent", kcats).produce(seed_gateway.bootstrap, cluster, "seed-capture", "cap", 10, prefix=prefix)
    assert prod.ok, prod.detail
    data, res = kclient(
        "confluent",
        seed_gateway.bootstrap,
        cluster,
        "consume",
        "--topic",
        "seed-capture",
        "--count",
        10,
        "--group",
        "seed-capture-g",
        prefix=prefix,
    )
    assert res.returncode == 0, describe(res)

    # Stops the capture that ran since before kafka-edge: only client and edge,
    # the advertised host seen, and no internal address anywhere.
    leak_scan(client_capture, seed_net, forbidden=cluster.upstream_strings(), must_receive=[seed_net.edge_client_ip])
