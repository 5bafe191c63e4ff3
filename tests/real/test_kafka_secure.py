"""Apache Kafka brokers behind DNS names, TLS, mutual TLS and SASL_SSL, through kafka-edge.

One Kafka 4.4.0 cluster (3 combined KRaft nodes) in the cluster namespace
whose brokers advertise DNS names, as a Kubernetes headless service does
(kafka-N.kafka-headless...): only the cluster and edge namespaces resolve
them (/etc/netns/<ns>/hosts), the client namespace cannot. Each node has
PLAINTEXT, SSL (mutual TLS required) and SASL_SSL (PLAIN, SCRAM-SHA-256/512)
listeners, with a certificate for those names from the project's generator.

kafka-edge runs in the edge namespace in front of each listener: plaintext
(the DNS names are all it is told), TLS with a client certificate to the SSL
listener (and, as a control, without one: Kafka refuses), TLS to the SASL_SSL
listener with the clients' own SASL logins passing through, and with the
gateway's own SASL login. Clients in the client namespace get metadata naming
only the gateway, produce and consume exact values; the Java client runs its
produce scenario through the SASL_SSL gateway. Last, the leak scan of the
client namespace's capture: no internal IP, no DNS name, no host:port.
"""

import itertools
import os
import random

import pytest

from clientrun import JavaRun
from kafkacluster import KAFKA_VERSION, KafkaCluster
from netns import leak_scan
from realenv import describe, run, stop_gateway, wait_for
from tlsenv import SecureClient, make_pki, net, start_config_gateway  # noqa: F401 (net: a fixture)

HOSTNAMES = {n: "kafka-%d.kafka-headless.kafka.svc.cluster.local" % (n - 1) for n in (1, 2, 3)}
USER = "edge-secure-user"
PASSWORD = "s3cret-%06x" % random.randrange(1 << 24)
RUN_TAG = "%x%02x" % (os.getpid(), random.randrange(256))
KINDS = ("dns-kcat-2.16", "dns-confluent", "mtls", "sasl-scram", "sasl-plain", "own")
TOPICS = {kind: "secure-%s-%s" % (kind, RUN_TAG) for kind in KINDS}
# Gateway k of this module: bootstrap on 9100+k, broker N on 20000+100k+N (the namespaces are fresh).
GATEWAY_NUMBERS = itertools.count()


@pytest.fixture(scope="module")
def capture(net, workdir):
    cap = net.capture(workdir, "tcpdump-kafka-secure")
    try:
        yield cap
    finally:
        cap.close()


@pytest.fixture(scope="module")
def pki(workdir):
    return make_pki(os.path.join(workdir, "tls-kafka-secure-%s" % RUN_TAG), sorted(HOSTNAMES.values()))


@pytest.fixture(scope="module")
def kafka(net, pki, workdir):
    cluster = KafkaCluster(
        net, workdir, "kafka-secure", version=KAFKA_VERSION, hostnames=HOSTNAMES, tls=pki, sasl_users={USER: PASSWORD}
    )
    try:
        cluster.create_topics([(t, 3, None) for t in TOPICS.values()])
        yield cluster
    finally:
        cluster.stop()


def start_gateway(net, name, view, workdir, **kwargs):
    """kafka-edge in the edge ns in front of one listener (`view`), plaintext to clients."""
    k = next(GATEWAY_NUMBERS)
    gw = start_config_gateway(
        name,
        workdir,
        view.bootstrap,
        view.node_ids,
        net.edge_client_ip,
        9100 + k,
        port_base=20000 + 100 * k,
        prefix=net.prefix(net.ns_edge),
        connect_check=net.connect_check(net.ns_client),
        **kwargs,
    )
    gw.cluster = view
    return gw


@pytest.fixture(scope="module")
def gateways(net, kafka, pki, capture, workdir):
    """{kind: gateway}, each in front of one listener of the cluster."""
    ca = {"ca": pki.ca}
    mtls = {"ca": pki.ca, "cert": pki.client_cert, "key": pki.client_key}
    own = {"mechanism": "SCRAM-SHA-256", "username": USER, "password_env": "EDGE_SASL_PASSWORD"}
    specs = {
        "dns": ("PLAINTEXT", {}),
        "mtls": ("SSL", {"upstream_tls": mtls}),
        # Without the gateway's own login its broker ports open with the first client's Metadata.
        "sasl": ("SASL_SSL", {"upstream_tls": ca, "wait_brokers": False}),
        "own": ("SASL_SSL", {"upstream_tls": ca, "upstream_sasl": own, "env": {"EDGE_SASL_PASSWORD": PASSWORD}}),
    }
    started = {}
    try:
        for kind, (listener, kwargs) in specs.items():
            started[kind] = start_gateway(net, "kafka-edge-secure-%s" % kind, kafka.view(listener), workdir, **kwargs)
        yield started
    finally:
        for gw in started.values():
            stop_gateway(gw)


def sasl(mechanism):
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism, "sasl.username": USER,
            "sasl.password": PASSWORD}  # fmt: skip


def check_client(net, kafka, client, gw, topic):
    """Metadata names only the gateway; exact values produced and consumed back."""
    prefix = net.prefix(net.ns_client)
    md = client.metadata(gw.bootstrap, prefix=prefix)
    assert md.ok, md.detail
    got = [{"id": b["id"], "host": b["host"], "port": b["port"]} for b in md.data["brokers"]]
    assert got == gw.expected_brokers(), "got %s, expected %s\n%s" % (got, gw.expected_brokers(), md.detail)
    for needle in kafka.internal_strings():
        assert needle not in md.data["raw"], "%r reached the client\n%s" % (needle, md.detail)
    prod = client.produce(gw.bootstrap, topic, topic, 15, prefix=prefix)
    assert prod.ok, prod.detail
    cons = client.consume(gw.bootstrap, topic, 15, prefix=prefix)
    assert cons.ok, cons.detail
    assert sorted(cons.data) == ["%s-%05d" % (topic, i) for i in range(15)], cons.detail


def test_only_the_edge_resolves_the_broker_names(net, kafka):
    name = HOSTNAMES[1]
    edge = run(net.prefix(net.ns_edge) + ["getent", "hosts", name], timeout=10)
    assert edge.returncode == 0 and kafka.nodes[1].ip in edge.stdout, describe(edge)
    client = run(net.prefix(net.ns_client) + ["getent", "hosts", name], timeout=10)
    assert client.returncode != 0, "the client namespace resolves %s\n%s" % (name, describe(client))


def test_brokers_advertise_their_dns_names(kafka):
    assert kafka.view().advertised == {n: (h, 9092) for n, h in HOSTNAMES.items()}


@pytest.mark.parametrize("client_name", ["kcat-2.16", "confluent"])
def test_dns_named_brokers_through_gateway(net, kafka, gateways, kcats, client_name):
    check_client(net, kafka, SecureClient(client_name, kcats, {}), gateways["dns"], TOPICS["dns-" + client_name])


def test_mutual_tls_to_kafka_through_gateway(net, kafka, gateways, kcats):
    check_client(net, kafka, SecureClient("confluent", kcats, {}), gateways["mtls"], TOPICS["mtls"])


def test_kafka_refuses_the_gateway_without_a_client_certificate(net, kafka, pki, gateways, kcats, workdir):
    """Control: the SSL listener really requires mutual TLS."""
    gw = start_gateway(
        net, "kafka-edge-secure-nocert", kafka.view("SSL"), workdir, upstream_tls={"ca": pki.ca}, wait_brokers=False
    )
    try:
        md = SecureClient("confluent", kcats, {}).metadata(gw.bootstrap, prefix=net.prefix(net.ns_client), deadline=4)
        assert not md.ok, "metadata without the client certificate Kafka requires\n%s" % md.detail
        assert wait_for(lambda: "cannot read cluster metadata" in gw.log_text(), 20), gw.excerpt()
    finally:
        stop_gateway(gw)


@pytest.mark.parametrize("mechanism,kind", [("SCRAM-SHA-512", "sasl-scram"), ("PLAIN", "sasl-plain")])
def test_client_sasl_over_the_gateways_tls_to_kafka(net, kafka, gateways, kcats, mechanism, kind):
    check_client(net, kafka, SecureClient("confluent", kcats, sasl(mechanism)), gateways["sasl"], TOPICS[kind])


def test_gateway_own_login_over_sasl_ssl(net, kafka, gateways, kcats):
    gw = gateways["own"]
    assert wait_for(lambda: "cluster metadata received" in gw.log_text(), 20), gw.excerpt()
    assert PASSWORD not in gw.log_text()
    check_client(net, kafka, SecureClient("confluent", kcats, sasl("SCRAM-SHA-256")), gw, TOPICS["own"])


def test_java_client_with_sasl_through_the_tls_gateway(net, kafka, gateways):
    jaas = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";' % (
        USER,
        PASSWORD,
    )
    config = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512", "sasl.jaas.config": jaas}
    res = JavaRun(
        KAFKA_VERSION, gateways["sasl"].bootstrap, ["produce"], "secure-java", prefix=net.prefix(net.ns_client),
        config=config,
    )  # fmt: skip
    assert not res.failures("produce"), res.detail("produce")
    for needle in kafka.internal_strings():
        assert needle not in res.result.stdout, "%r in what the Java client printed\n%s" % (needle, res.detail())


def test_capture_contains_no_internal_address_or_name(net, kafka, gateways, capture):
    """Last: no internal IP, DNS name or host:port in anything the client namespace exchanged."""
    leak_scan(capture, net, forbidden=kafka.internal_strings(), must_receive=[net.edge_client_ip], min_received=50000)
