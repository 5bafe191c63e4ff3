"""Real clients over TLS through kafka-edge (issue 6).

Certificates come from the project's generator (examples/gencerts, rcgen),
fresh for every run and written under the pytest work directory.

1. Port mode, loopback: kafka-edge with [tls] in front of the librdkafka mock
   cluster (3 brokers).  kcat on librdkafka 2.0.2 and 2.16 and confluent-kafka
   with security.protocol=SSL and ssl.ca.location: metadata lists only the
   gateway's addresses, produce and consume return the exact values; a
   plaintext client gets nothing.
2. SNI mode, network namespaces (netns.SeedNetwork: the mock cluster on an
   internal address in "cluster", kafka-edge in "edge", clients in "client"):
   one TLS port; clients bootstrap at bootstrap.<domain>:9092 and see broker
   N at broker-N.<domain>:9092, names that only the client namespace's
   /etc/netns/<ns>/hosts resolves (to the edge).  Same clients, same checks;
   a second gateway requires client certificates (mutual TLS): clients with
   the certificate work, clients without one or with one from another CA are
   refused; a server name that is not ours is refused and logged.
3. A tcpdump capture of everything the client namespace exchanged with the
   edge: every TCP stream is TLS records from its first byte, the server
   names are visible in the hellos (the capture saw the connections), and no
   topic name, produced value, client name or internal address appears.
4. Upstream TLS.  tansu 0.6.0 cannot serve TLS (its --cert and --key are
   mutually exclusive options, and the broker never wraps its sockets) and
   the librdkafka mock has no TLS listener, so the TLS broker here is a
   kafka-edge: A (client TLS requiring a client certificate, in front of the
   mock, advertising 127.0.0.3, the IP its certificate names) and B
   ([upstream.tls] with A's CA and a client certificate) in front of A.
   Clients through B see only B's addresses and produce/consume; B refuses a
   broker certificate from another CA or not naming the broker it dialled
   (unless verify_hostname = false), and A refuses B without its certificate.

Everything is stopped, and the namespaces and /etc/netns entries deleted, by
the fixtures' teardown, also when a test fails.
"""

import os
import re
import random

import pytest

from clients import make_values
from netns import SeedNetwork, leak_scan, seed_network
from realenv import (
    GATEWAY_IP,
    PYTHON,
    describe,
    free_port,
    pick_port_base,
    run,
    stop_gateway,
    wait_for,
)
from tlsenv import (
    SECURE_CLIENTS,
    NetnsHosts,
    SecureClient,
    is_tls_stream,
    make_pki,
    start_config_gateway,
    sweep_stale_netns_etc,
    tls_settings,
)

# The TLS broker of the upstream tests (kafka-edge "A") listens on and
# advertises this loopback address; its certificate names it (IP SAN).
UPSTREAM_TLS_IP = os.environ.get("KAFKA_EDGE_TEST_UPSTREAM_IP", "127.0.0.3")
# A second loopback address for the TLS broker whose certificate names
# another host (the name-verification test).
MISNAMED_TLS_IP = os.environ.get("KAFKA_EDGE_TEST_MISNAMED_IP", "127.0.0.4")

SNI_PORT = 9092  # the SNI gateway's one port, on the edge's client-side address
SNI_MTLS_PORT = 9094  # the SNI gateway that requires client certificates
# What kafka-edge logs (warn) when a client's TLS handshake fails.
HANDSHAKE_FAILED = "TLS handshake failed"
RUN_TAG = "%x%02x" % (os.getpid(), random.randrange(256))


def topic_for(kind, client_name):
    return "tls-%s-%s-%s" % (kind, client_name.replace(".", ""), RUN_TAG)


def assert_brokers(md, gw):
    got = [{"id": b["id"], "host": b["host"], "port": b["port"]} for b in md.data["brokers"]]
    got.sort(key=lambda b: b["id"])
    assert got == gw.expected_brokers(), "brokers through %s\n  got:      %s\n  expected: %s\n%s" % (
        gw.bootstrap,
        got,
        gw.expected_brokers(),
        md.detail,
    )


def assert_absent(text, needles, context):
    for needle in needles:
        assert needle not in text, "%r reached the client\n%s" % (needle, context)


def produce_and_consume(client, gw, cluster, kind, prefix=(), count=20):
    """Create a topic on the cluster, produce `count` values through gw, read exactly them back."""
    topic = topic_for(kind, client.name)
    cluster.create_topic(topic, 3)
    values = make_values("%s-%s" % (kind, client.name), count)
    prod = client.produce(gw.bootstrap, topic, "%s-%s" % (kind, client.name), count, prefix=prefix)
    assert prod.ok, prod.detail
    cons = client.consume(gw.bootstrap, topic, count, prefix=prefix)
    assert cons.ok, cons.detail
    assert sorted(cons.data) == sorted(values), cons.detail


def free_listen_port(ip, avoid):
    port = free_port(ip)
    while port in avoid:
        port = free_port(ip)
    return port


@pytest.fixture(scope="module")
def tls_dir(workdir):
    path = os.path.join(workdir, "tls-%s" % RUN_TAG)
    os.makedirs(path, exist_ok=True)
    return path


# =========================================================================== 1. port mode


@pytest.fixture(scope="module")
def port_pki(tls_dir):
    return make_pki(os.path.join(tls_dir, "port"), [GATEWAY_IP])


@pytest.fixture(scope="module")
def tls_port_gateway(mock_cluster, port_pki, workdir):
    base = pick_port_base(GATEWAY_IP, mock_cluster.node_ids)
    port = free_listen_port(GATEWAY_IP, {base + n for n in mock_cluster.node_ids})
    gw = start_config_gateway(
        "kafka-edge-tls-port",
        workdir,
        mock_cluster.bootstrap,
        mock_cluster.node_ids,
        GATEWAY_IP,
        port,
        port_base=base,
        tls={"cert": port_pki.server_cert, "key": port_pki.server_key},
    )
    gw.cluster = mock_cluster
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.mark.parametrize("client_name", SECURE_CLIENTS)
def test_port_mode_tls_metadata_lists_only_gateway(tls_port_gateway, port_pki, kcats, client_name):
    client = SecureClient(client_name, kcats, tls_settings(port_pki))
    md = client.metadata(tls_port_gateway.bootstrap)
    assert md.ok, md.detail
    assert_brokers(md, tls_port_gateway)
    assert_absent(md.data["raw"], tls_port_gateway.cluster.upstream_strings(), md.detail)


@pytest.mark.parametrize("client_name", SECURE_CLIENTS)
def test_port_mode_tls_produce_and_consume(tls_port_gateway, port_pki, kcats, client_name):
    client = SecureClient(client_name, kcats, tls_settings(port_pki))
    produce_and_consume(client, tls_port_gateway, tls_port_gateway.cluster, "port")


PLAINTEXT_TO_TLS = "spoke plaintext Kafka to a TLS listener: set security.protocol=SSL"


def test_port_mode_plaintext_client_gets_nothing(tls_port_gateway, kcats):
    """A client speaking plain Kafka to the TLS port learns nothing, and the gateway says why."""
    before = tls_port_gateway.log_count(PLAINTEXT_TO_TLS)
    md = SecureClient("kcat-2.16", kcats, {}).metadata(tls_port_gateway.bootstrap, deadline=4)
    assert not md.ok, "plaintext client got metadata from a TLS listener\n%s" % md.detail
    assert tls_port_gateway.wait_log_count(PLAINTEXT_TO_TLS, before), tls_port_gateway.excerpt()


# =========================================================================== 2. SNI mode in namespaces


@pytest.fixture(scope="module")
def sni_net():
    sweep_stale_netns_etc()
    with seed_network() as net:
        net.domain = "k%s.edge.test" % net.tag  # .test never resolves anywhere else (RFC 2606)
        hosts = net.hosts = NetnsHosts(net.ns_client, []).write()
        try:
            yield net
        finally:
            removed = hosts.remove()
        assert removed, "could not remove %s" % hosts.dir


@pytest.fixture(scope="module")
def sni_cluster(sni_net, workdir):
    """3 mock brokers listening on (and advertising) the cluster namespace's internal IP."""
    cluster = sni_net.start_mock_cluster(workdir, "mockcluster-tls-sni")
    try:
        # Only the client namespace resolves our names, all to the edge.
        names = ["bootstrap.%s" % sni_net.domain] + ["broker-%d.%s" % (n, sni_net.domain) for n in cluster.node_ids]
        # A name under our domain that is no route of the gateway (refusal test).
        names.append("stranger.%s" % sni_net.domain)
        sni_net.hosts.entries = [(sni_net.edge_client_ip, names)]
        sni_net.hosts.write()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def sni_pki(tls_dir, sni_net):
    return make_pki(os.path.join(tls_dir, "sni"), ["*.%s" % sni_net.domain])


@pytest.fixture(scope="module")
def stranger_pki(tls_dir):
    """Another CA and client certificate: trusted by nothing here."""
    return make_pki(os.path.join(tls_dir, "stranger"), ["stranger.invalid"])


@pytest.fixture(scope="module")
def sni_capture(sni_net, workdir):
    """tcpdump on the client namespace's only interface, from before any gateway starts."""
    cap = sni_net.capture(workdir, "tcpdump-tls-sni-%s" % RUN_TAG)
    try:
        yield cap
    finally:
        cap.close()


def start_sni_gateway(name, net, cluster, pki, port, workdir, client_ca=None):
    tls = {"cert": pki.server_cert, "key": pki.server_key}
    if client_ca:
        tls["client_ca"] = client_ca
    gw = start_config_gateway(
        name,
        workdir,
        cluster.bootstrap,
        cluster.node_ids,
        net.edge_client_ip,
        port,
        tls=tls,
        sni_domain=net.domain,
        prefix=SeedNetwork.prefix(net.ns_edge),
        connect_check=net.connect_check(net.ns_client),
    )
    gw.cluster = cluster
    return gw


@pytest.fixture(scope="module")
def sni_gateway(sni_net, sni_cluster, sni_pki, sni_capture, workdir):
    gw = start_sni_gateway("kafka-edge-tls-sni", sni_net, sni_cluster, sni_pki, SNI_PORT, workdir)
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.fixture(scope="module")
def sni_mtls_gateway(sni_net, sni_cluster, sni_pki, sni_capture, workdir):
    gw = start_sni_gateway(
        "kafka-edge-tls-sni-mtls", sni_net, sni_cluster, sni_pki, SNI_MTLS_PORT, workdir, client_ca=sni_pki.ca
    )
    try:
        yield gw
    finally:
        stop_gateway(gw)


def test_sni_names_resolve_to_the_edge_in_the_client_namespace(sni_net, sni_gateway):
    """/etc/netns/<client ns>/hosts is what `ip netns exec` shows the client as /etc/hosts."""
    names = sni_gateway.sni_names()
    code = "import socket, sys; print(' '.join(socket.gethostbyname(n) for n in sys.argv[1:]))"
    res = run(SeedNetwork.prefix(sni_net.ns_client) + [PYTHON, "-c", code] + names, timeout=15)
    assert res.returncode == 0, describe(res)
    assert res.stdout.split() == [sni_net.edge_client_ip] * len(names), describe(res)


@pytest.mark.parametrize("client_name", SECURE_CLIENTS)
def test_sni_metadata_lists_broker_names_on_one_port(sni_net, sni_gateway, sni_pki, kcats, client_name):
    client = SecureClient(client_name, kcats, tls_settings(sni_pki))
    md = client.metadata(sni_gateway.bootstrap, prefix=SeedNetwork.prefix(sni_net.ns_client))
    assert md.ok, md.detail
    assert_brokers(md, sni_gateway)
    assert_absent(md.data["raw"], sni_net.internal_ips(), md.detail)


@pytest.mark.parametrize("client_name", SECURE_CLIENTS)
def test_sni_produce_and_consume(sni_net, sni_gateway, sni_pki, kcats, client_name):
    client = SecureClient(client_name, kcats, tls_settings(sni_pki))
    produce_and_consume(client, sni_gateway, sni_gateway.cluster, "sni", prefix=SeedNetwork.prefix(sni_net.ns_client))


def tls_hello_from_client_ns(net, pki, host, port, server_name):
    """Complete (or fail) a TLS handshake from the client namespace; (ok, CompletedProcess)."""
    code = (
        "import socket, ssl, sys\n"
        "ctx = ssl.create_default_context(cafile=%r)\n"
        "s = socket.create_connection((%r, %d), timeout=5)\n"
        "try:\n"
        "    t = ctx.wrap_socket(s, server_hostname=%r)\n"
        "    t.sendall(b'\\x00\\x00\\x00\\x00')\n"  # nothing a route would wait on; we only handshake
        "    print('handshake ok', t.version())\n"
        "except (ssl.SSLError, OSError) as e:\n"
        "    print('handshake failed', repr(e)); sys.exit(3)\n"
    ) % (pki.ca, host, port, server_name)
    res = run(SeedNetwork.prefix(net.ns_client) + [PYTHON, "-c", code], timeout=20)
    return res.returncode == 0, res


def test_sni_name_that_is_not_ours_is_refused(sni_net, sni_gateway, sni_pki):
    ip = sni_net.edge_client_ip
    ok, res = tls_hello_from_client_ns(sni_net, sni_pki, ip, SNI_PORT, "bootstrap.%s" % sni_net.domain)
    assert ok, "control: the bootstrap name must handshake\n" + describe(res)
    # Covered by the wildcard certificate, but no route of the gateway.
    stranger = "stranger.%s" % sni_net.domain
    ok, res = tls_hello_from_client_ns(sni_net, sni_pki, ip, SNI_PORT, stranger)
    assert not ok, "a name that is no route was served\n" + describe(res)
    # A broker the cluster never reported.
    ok, res = tls_hello_from_client_ns(sni_net, sni_pki, ip, SNI_PORT, "broker-77.%s" % sni_net.domain)
    assert not ok, "an unknown broker was served\n" + describe(res)
    log = lambda: sni_gateway.log_text()  # noqa: E731
    assert wait_for(lambda: stranger in log() and "broker 77" in log(), 5), sni_gateway.excerpt()


@pytest.mark.parametrize("client_name", SECURE_CLIENTS)
def test_sni_mutual_tls_produce_and_consume(sni_net, sni_mtls_gateway, sni_pki, kcats, client_name):
    client = SecureClient(client_name, kcats, tls_settings(sni_pki, client_cert=True))
    md = client.metadata(sni_mtls_gateway.bootstrap, prefix=SeedNetwork.prefix(sni_net.ns_client))
    assert md.ok, md.detail
    assert_brokers(md, sni_mtls_gateway)
    produce_and_consume(
        client, sni_mtls_gateway, sni_mtls_gateway.cluster, "mtls", prefix=SeedNetwork.prefix(sni_net.ns_client)
    )


def test_sni_mutual_tls_refuses_clients_without_a_trusted_certificate(
    sni_net, sni_mtls_gateway, sni_pki, stranger_pki, kcats
):
    prefix = SeedNetwork.prefix(sni_net.ns_client)
    before = sni_mtls_gateway.log_count(HANDSHAKE_FAILED)
    no_cert = SecureClient("confluent", kcats, tls_settings(sni_pki))
    md = no_cert.metadata(sni_mtls_gateway.bootstrap, prefix=prefix, deadline=3)
    assert not md.ok, "a client without a certificate got metadata\n%s" % md.detail
    foreign = tls_settings(sni_pki)
    foreign.update({"ssl.certificate.location": stranger_pki.client_cert, "ssl.key.location": stranger_pki.client_key})
    md = SecureClient("kcat-2.16", kcats, foreign).metadata(sni_mtls_gateway.bootstrap, prefix=prefix, deadline=3)
    assert not md.ok, "a client with a certificate from another CA got metadata\n%s" % md.detail
    assert sni_mtls_gateway.wait_log_count(HANDSHAKE_FAILED, before + 1), sni_mtls_gateway.excerpt()


def test_sni_capture_is_tls_only(sni_net, sni_gateway, sni_capture, sni_pki, kcats):
    """Last of the SNI tests: stops the capture that ran since before the gateways started."""
    prefix = SeedNetwork.prefix(sni_net.ns_client)
    cluster = sni_gateway.cluster
    # Traffic of its own, so that this test means something when run alone:
    # a canary topic and canary values that plaintext Kafka would carry verbatim.
    canary_topic = "canary-topic-%s" % RUN_TAG
    canary = "canary-value-%s" % RUN_TAG
    cluster.create_topic(canary_topic, 3)
    client = SecureClient("confluent", kcats, tls_settings(sni_pki))
    prod = client.produce(sni_gateway.bootstrap, canary_topic, canary, 10, prefix=prefix)
    assert prod.ok, prod.detail
    cons = SecureClient("kcat-2.16", kcats, tls_settings(sni_pki)).consume(
        sni_gateway.bootstrap, canary_topic, 10, prefix=prefix
    )
    assert cons.ok and sorted(cons.data) == sorted(make_values(canary, 10)), cons.detail

    # Stops the capture; only client and edge, and nothing that plaintext
    # Kafka would carry: canaries, topic and client names, internal addresses.
    needles = [canary_topic, canary, "tls-sni-", "tls-mtls-", "sni-kcat", "mtls-confluent", "rdkafka", "confluent"]
    scan = leak_scan(sni_capture, sni_net, forbidden=needles + cluster.upstream_strings(), min_received=2000)
    streams = scan.streams
    to_edge = {k: v for k, v in streams.items() if k[2] == sni_net.edge_client_ip}
    assert to_edge and len(to_edge) < len(streams), scan.summary
    # Every stream is TLS records from its first byte (and the check knows a
    # plaintext Kafka request when it sees one: ApiVersions v3 from "rdkafka").
    kafka_request = b"\x00\x00\x00\x14\x00\x12\x00\x03\x00\x00\x00\x01\x00\x07rdkafka\x00\x00\x00\x00"
    assert not is_tls_stream(kafka_request)
    not_tls = ["%s:%d->%s:%d %r" % (k + (v[:16],)) for k, v in streams.items() if not is_tls_stream(v)]
    assert not not_tls, "TCP streams that are not TLS: %s; %s" % (not_tls[:5], scan.summary)
    # The server names travel in the client hellos: the capture saw the SNI connections.
    sent = b"".join(to_edge.values())
    for name in sni_gateway.sni_names():
        assert name.encode() in sent, "server name %s not in any client hello; %s" % (name, scan.summary)


# =========================================================================== 4. upstream TLS


@pytest.fixture(scope="module")
def upstream_pki(tls_dir):
    return make_pki(os.path.join(tls_dir, "upstream"), [UPSTREAM_TLS_IP])


def start_front(name, cluster, ip, pki, workdir, client_ca=None):
    """kafka-edge "A": the TLS broker the upstream tests dial (port mode, advertising `ip`)."""
    base = pick_port_base(ip, cluster.node_ids)
    port = free_listen_port(ip, {base + n for n in cluster.node_ids})
    tls = {"cert": pki.server_cert, "key": pki.server_key}
    if client_ca:
        tls["client_ca"] = client_ca
    admin = free_listen_port(ip, {base + n for n in cluster.node_ids} | {port})
    gw = start_config_gateway(
        name, workdir, cluster.bootstrap, cluster.node_ids, ip, port, port_base=base, tls=tls, admin_port=admin
    )
    gw.cluster = cluster
    return gw


def handshake_failures(gw):
    """TLS handshakes the gateway saw fail: counted in its metrics (its log says only the first
    few of each kind a minute, so a long test module cannot count log lines)."""
    status, body = gw.admin_get("/metrics")
    assert status == 200, body
    found = re.search(r'^kafka_edge_refused_connections_total\{kind="tls_handshake"\} (\d+)', body, re.M)
    assert found, body
    return int(found.group(1))


def wait_handshake_failure(gw, before):
    """Whether another TLS handshake failure is counted within a few seconds."""
    return wait_for(lambda: handshake_failures(gw) > before, 10)


def start_chained(name, front, workdir, upstream_tls, node_ids, wait_brokers=True):
    """kafka-edge "B" on GATEWAY_IP, plaintext to clients, [upstream.tls] to `front`."""
    base = pick_port_base(GATEWAY_IP, node_ids)
    port = free_listen_port(GATEWAY_IP, {base + n for n in node_ids})
    gw = start_config_gateway(
        name,
        workdir,
        [front.bootstrap],
        node_ids,
        GATEWAY_IP,
        port,
        port_base=base,
        upstream_tls=upstream_tls,
        wait_brokers=wait_brokers,
    )
    gw.front = front
    return gw


@pytest.fixture(scope="module")
def tls_front(mock_cluster, upstream_pki, workdir):
    """A: requires TLS and a client certificate from upstream_pki's CA."""
    gw = start_front("kafka-edge-tls-front", mock_cluster, UPSTREAM_TLS_IP, upstream_pki, workdir, upstream_pki.ca)
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.fixture(scope="module")
def chained_gateway(tls_front, upstream_pki, workdir):
    tls = {"ca": upstream_pki.ca, "cert": upstream_pki.client_cert, "key": upstream_pki.client_key}
    gw = start_chained("kafka-edge-upstream-tls", tls_front, workdir, tls, tls_front.node_ids)
    gw.cluster = tls_front.cluster
    try:
        yield gw
    finally:
        stop_gateway(gw)


def upstream_leaks(front):
    """Addresses behind B that its clients must never see: A's and the mock's."""
    return front.cluster.upstream_strings() + [front.listen_ip]


@pytest.mark.parametrize("client_name", SECURE_CLIENTS)
def test_upstream_tls_chain_produce_and_consume(chained_gateway, kcats, client_name):
    client = SecureClient(client_name, kcats, {})
    md = client.metadata(chained_gateway.bootstrap)
    assert md.ok, md.detail
    assert_brokers(md, chained_gateway)
    assert_absent(md.data["raw"], upstream_leaks(chained_gateway.front), md.detail)
    produce_and_consume(client, chained_gateway, chained_gateway.cluster, "upstream")


def test_upstream_tls_refuses_a_broker_from_another_ca(tls_front, port_pki, upstream_pki, kcats, workdir):
    tls = {"ca": port_pki.ca, "cert": upstream_pki.client_cert, "key": upstream_pki.client_key}
    gw = start_chained("kafka-edge-upstream-wrong-ca", tls_front, workdir, tls, tls_front.node_ids, wait_brokers=False)
    try:
        md = SecureClient("kcat-2.16", kcats, {}).metadata(gw.bootstrap, deadline=4)
        assert not md.ok, "metadata through a broker that B must not trust\n%s" % md.detail
        # (Every gencerts CA has the same name, so rustls reports the other CA's
        # signature as bad rather than the issuer as unknown: either refuses.)
        assert wait_for(lambda: "invalid peer certificate" in gw.log_text(), 5), gw.excerpt()
    finally:
        stop_gateway(gw)


def test_upstream_tls_without_client_certificate_is_refused_by_the_broker(tls_front, upstream_pki, kcats, workdir):
    before = handshake_failures(tls_front)
    tls = {"ca": upstream_pki.ca}
    gw = start_chained("kafka-edge-upstream-no-cert", tls_front, workdir, tls, tls_front.node_ids, wait_brokers=False)
    try:
        md = SecureClient("kcat-2.16", kcats, {}).metadata(gw.bootstrap, deadline=4)
        assert not md.ok, "metadata without the client certificate A requires\n%s" % md.detail
        assert wait_handshake_failure(tls_front, before), tls_front.excerpt()
    finally:
        stop_gateway(gw)


@pytest.fixture(scope="module")
def misnamed_front(mock_cluster, tls_dir, workdir):
    """A TLS broker whose certificate (right CA) names another host than the one dialled."""
    pki = make_pki(os.path.join(tls_dir, "misnamed"), ["kafka-a.invalid"])
    gw = start_front("kafka-edge-tls-misnamed", mock_cluster, MISNAMED_TLS_IP, pki, workdir)
    gw.pki = pki
    try:
        yield gw
    finally:
        stop_gateway(gw)


def test_upstream_tls_checks_the_broker_name(misnamed_front, kcats, workdir):
    ca = {"ca": misnamed_front.pki.ca}
    gw = start_chained(
        "kafka-edge-upstream-misnamed", misnamed_front, workdir, ca, misnamed_front.node_ids, wait_brokers=False
    )
    try:
        md = SecureClient("kcat-2.16", kcats, {}).metadata(gw.bootstrap, deadline=4)
        assert not md.ok, "metadata from a broker whose certificate names another host\n%s" % md.detail
        assert wait_for(lambda: "certificate not valid for name" in gw.log_text(), 5), gw.excerpt()
    finally:
        stop_gateway(gw)
    # The explicit opt-out: the CA still counts, the name does not, and a warning says so.
    lax = dict(ca, verify_hostname=False)
    gw = start_chained("kafka-edge-upstream-lax", misnamed_front, workdir, lax, misnamed_front.node_ids)
    gw.cluster = misnamed_front.cluster
    try:
        assert "verify_hostname = false" in gw.log_text(), gw.excerpt()
        client = SecureClient("confluent", kcats, {})
        md = client.metadata(gw.bootstrap)
        assert md.ok, md.detail
        assert_brokers(md, gw)
        produce_and_consume(client, gw, gw.cluster, "lax")
    finally:
        stop_gateway(gw)


# =========================================================================== 5. port mode in namespaces

NETNS_PORT_MODE_PORT = 9093  # a port-mode TLS gateway on the edge's client-side address
NETNS_PORT_BASE = 19000  # its broker N at NETNS_PORT_BASE + N, inside the edge namespace


@pytest.fixture(scope="module")
def netns_port_gateway(sni_net, sni_cluster, tls_dir, workdir):
    """Port mode over TLS at the edge: one port per broker, the certificate names the edge IP."""
    pki = make_pki(os.path.join(tls_dir, "netns-port"), [sni_net.edge_client_ip])
    gw = start_config_gateway(
        "kafka-edge-tls-port-netns",
        workdir,
        sni_cluster.bootstrap,
        sni_cluster.node_ids,
        sni_net.edge_client_ip,
        NETNS_PORT_MODE_PORT,
        port_base=NETNS_PORT_BASE,
        tls={"cert": pki.server_cert, "key": pki.server_key},
        prefix=SeedNetwork.prefix(sni_net.ns_edge),
        connect_check=sni_net.connect_check(sni_net.ns_client),
    )
    gw.cluster = sni_cluster
    gw.pki = pki
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.mark.parametrize("client_name", SECURE_CLIENTS)
def test_port_mode_tls_in_namespaces(sni_net, netns_port_gateway, kcats, client_name):
    """The client namespace cannot route to the brokers: over TLS, port mode still serves it."""
    client = SecureClient(client_name, kcats, tls_settings(netns_port_gateway.pki))
    prefix = SeedNetwork.prefix(sni_net.ns_client)
    md = client.metadata(netns_port_gateway.bootstrap, prefix=prefix)
    assert md.ok, md.detail
    assert_brokers(md, netns_port_gateway)
    assert_absent(md.data["raw"], sni_net.internal_ips(), md.detail)
    produce_and_consume(client, netns_port_gateway, netns_port_gateway.cluster, "portns", prefix=prefix)
