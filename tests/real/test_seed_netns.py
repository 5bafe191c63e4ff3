"""The seed scenario: clients outside a private network, brokers inside it.

Three network namespaces (see netns.py): the librdkafka mock cluster (3
brokers) listens on an internal address in "cluster"; "edge" has a leg in
each network and does not forward IP; "client" can reach only the edge.

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

import os
import time

import pytest

from clients import CLIENTS, Client, make_values
from netns import SeedNetwork, read_pcap, sweep_stale_namespaces
from realenv import (
    PYTHON,
    TCPFORWARD,
    ManagedProc,
    MockClusterProc,
    compile_bindshim,
    describe,
    kclient,
    read_line,
    require_tool,
    run,
    start_gateway,
    stop_gateway,
    wait_for,
)

GATEWAY_PORT = 9092  # kafka-edge bootstrap port on the edge's client-side address
PORT_BASE = 19000  # broker N at PORT_BASE + N
FORWARD_PORT = 29092  # the plain TCP forwarder of the "without kafka-edge" test


@pytest.fixture(scope="module")
def seed_net():
    require_tool("ip")
    sweep_stale_namespaces()
    net = SeedNetwork()
    try:
        net.setup()
        yield net
    finally:
        errors = net.teardown()
        assert not errors, "namespace cleanup failed: %s" % errors


@pytest.fixture(scope="module")
def seed_cluster(seed_net, workdir):
    """3 mock brokers listening (and advertising) the cluster ns's internal IP."""
    shim = compile_bindshim(workdir)
    prefix = SeedNetwork.prefix(seed_net.ns_cluster) + [
        "env",
        "LD_PRELOAD=" + shim,
        "BIND_IP=" + seed_net.broker_ip,
    ]
    cluster = MockClusterProc(workdir, prefix=prefix, name="mockcluster-seed")
    try:
        hosts = {h for h, _ in cluster.advertised.values()}
        assert hosts == {seed_net.broker_ip}, "bind shim not effective: %s" % cluster.bootstrap
        yield cluster
    finally:
        cluster.stop()


def client_can_connect(net):
    """connect_check for start_gateway: try a TCP connect from the client ns."""

    def check(ip, port):
        code = "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex((%r,%d)))" % (ip, port)
        return run(SeedNetwork.prefix(net.ns_client) + [PYTHON, "-c", code], timeout=10).returncode == 0

    return check


@pytest.fixture(scope="module")
def client_capture(seed_net, workdir):
    """tcpdump in the client ns, running before kafka-edge starts."""
    tcpdump = require_tool("tcpdump")
    pcap = os.path.join(workdir, "seed-client.pcap")
    cap = ManagedProc(
        "tcpdump-seed-client",
        SeedNetwork.prefix(seed_net.ns_client)
        + [
            tcpdump,
            "-Z",
            "root",
            "-i",
            seed_net.if_client,
            "-n",
            "-U",
            # Hand each packet over as it arrives, so stopping tcpdump right after the
            # traffic loses none of it (buffered packets were seen lost otherwise).
            "--immediate-mode",
            "-s",
            "0",
            "-w",
            pcap,
            "tcp and not port %d" % FORWARD_PORT,
        ],
        workdir,
    )
    try:
        if not wait_for(lambda: "listening on" in cap.log_text() or not cap.alive(), 15):
            raise AssertionError("tcpdump did not start\n%s" % cap.excerpt())
        assert cap.alive(), cap.excerpt()
        cap.pcap = pcap
        yield cap
    finally:
        cap.stop()


@pytest.fixture(scope="module")
def seed_gateway(seed_net, seed_cluster, client_capture, workdir):
    """kafka-edge inside the edge ns, advertising its client-side address."""
    gw = start_gateway(
        seed_cluster,
        workdir,
        "kafka-edge-seed",
        listen_ip=seed_net.edge_client_ip,
        prefix=SeedNetwork.prefix(seed_net.ns_edge),
        connect_check=client_can_connect(seed_net),
        port_base=PORT_BASE,
        listen_port=GATEWAY_PORT,
    )
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
    code = "import socket,sys; s=socket.socket(); s.settimeout(2); sys.exit(s.connect_ex((%r,%d)))" % (
        broker_host,
        broker_port,
    )
    res = run(client_ns + [PYTHON, "-c", code], timeout=15)
    assert res.returncode != 0, "client ns can reach the internal broker directly: %s" % describe(res)

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
        assert {b["host"] for b in md.data["brokers"]} == {seed_net.broker_ip}, md.detail

        # Producing cannot work: the partition leaders are unreachable.
        seed_cluster.create_topic("seed-nogw", 3)
        for name in ("kcat-2.0.2", "confluent"):
            prod = Client(name, kcats).produce(
                bootstrap, seed_cluster, "seed-nogw", "nogw", 5, prefix=client_ns, deadline=6
            )
            assert not prod.ok, "%s produced without kafka-edge?\n%s" % (name, prod.detail)
            # ... because the client tried the internal addresses it was given.
            assert seed_net.broker_ip in prod.detail and "unreachable" in prod.detail, prod.detail
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

    time.sleep(0.5)  # let the last segments hit the wire
    client_capture.stop()
    assert os.path.getsize(client_capture.pcap) > 24, client_capture.excerpt()

    packets = list(read_pcap(client_capture.pcap))
    received = [p for p in packets if p[1] == seed_net.client_ip]
    payload_in = b"".join(p[4] for p in received)
    payload_all = b"".join(p[4] for p in packets)
    summary = "%d packets (%d to the client, %d payload bytes received) in %s" % (
        len(packets),
        len(received),
        len(payload_in),
        client_capture.pcap,
    )
    # Positive control: the capture saw Kafka traffic, including metadata that
    # names the gateway's advertised host.
    assert len(payload_in) > 1000, summary
    assert seed_net.edge_client_ip.encode() in payload_in, "advertised host not seen in capture: " + summary
    # Every packet the client sent or received was to/from the edge only.
    peers = {p[0] for p in packets} | {p[1] for p in packets}
    assert peers <= {seed_net.client_ip, seed_net.edge_client_ip}, "unexpected peers %s; %s" % (peers, summary)
    # And no byte of any payload names an internal address.
    for ip in seed_net.internal_ips():
        assert ip.encode() not in payload_all, "internal address %s in the client's traffic: %s" % (ip, summary)
    for hp in cluster.upstream_strings():
        assert hp.encode() not in payload_all, "internal %s in the client's traffic: %s" % (hp, summary)
