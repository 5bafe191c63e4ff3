"""SASL through kafka-edge, against Apache Kafka's own SASL listener (issue 6, item 4; issue 11).

The broker: one combined Apache Kafka 4.4.0 node (kafkacluster.py) with a
SASL_PLAINTEXT listener offering PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512; the
SCRAM users are written at format time, the PLAIN ones in the listener's JAAS
line. Everything of this module runs in the cluster namespace of a seed
network (netns.py): the broker on its address, each kafka-edge on an address
of its own there (port mode, fixed ports: the namespace is fresh), the
clients and the admin endpoint checks from inside it too.

What is shown, through kafka-edge in port mode (plain, and TLS to clients):
  * confluent-kafka and kcat (librdkafka 2.16) authenticate with SCRAM-SHA-256
    and PLAIN (SASL_PLAINTEXT, and SASL_SSL through the TLS gateway), then
    produce and consume exact values; metadata names only the gateway;
  * a wrong password fails through the gateway, as it does directly: the
    broker really checks, and its verdict reaches the client.

The gateway's own login ([upstream.sasl], for its metadata refresh):
  * with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 and the right password (from a
    file or from an environment variable) it becomes ready (/readyz 200) and
    binds the broker port before any client has connected;
  * over TLS to the brokers as well (SASL_SSL): a second gateway logs in
    through the TLS gateway, and a client produces and consumes through both;
  * `kafka-edge diagnose` logs in too;
  * with a wrong password it stays not ready and logs why, without the
    password; without [upstream.sasl] it stays not ready and logs that the
    broker requires authentication.
"""

import itertools
import os
import random
import re

import pytest

from kafkacluster import KafkaCluster
from netns import seed_network
from realenv import describe, gateway_binary, run, stop_gateway
from tlsenv import (
    SecureClient,
    make_pki,
    render_config,
    start_config_gateway,
    tls_settings,
)

USER = "edge-sasl-user"
# A second user with the same password, for the gateway's own SCRAM-SHA-512 login.
USER_512 = "edge-sasl-user-512"
PASSWORD = "s3cret-%06x" % random.randrange(1 << 24)
WRONG_PASSWORD = "wr0ng-%06x" % random.randrange(1 << 24)
MECHANISM = "SCRAM-SHA-256"
RUN_TAG = "%x%02x" % (os.getpid(), random.randrange(256))
KINDS = ("plain-confluent", "plain-kcat", "plainmech-confluent", "ssl-confluent", "ssl-kcat", "chain-confluent")
TOPICS = {kind: "sasl-%s-%s" % (kind, RUN_TAG) for kind in KINDS}
# The broker's verdict on a wrong password (its SaslAuthenticate error message).
BAD_CREDENTIALS = "invalid credentials"
# Gateway k of this module: bootstrap on 9100+k, broker N on 20000+100k+N, admin on 9300+k.
GATEWAY_NUMBERS = itertools.count()


@pytest.fixture(scope="module")
def sasl_net():
    with seed_network() as net:
        yield net


@pytest.fixture(scope="module")
def sasl_kafka(sasl_net, workdir):
    """The SASL_PLAINTEXT listener of a one-node Kafka 4.4.0, topics created."""
    cluster = KafkaCluster(sasl_net, workdir, "kafka-sasl", brokers=1, sasl_users={USER: PASSWORD, USER_512: PASSWORD})
    try:
        cluster.create_topics([(t, 3, None) for t in TOPICS.values()])
        yield cluster.view("SASL_PLAINTEXT")
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def gw_ip(sasl_net):
    """The gateways' address in the cluster namespace."""
    return sasl_net.add_cluster_ip()


@pytest.fixture(scope="module")
def in_ns(sasl_net):
    """The command prefix that runs a client in the cluster namespace."""
    return sasl_net.prefix(sasl_net.ns_cluster)


def scram(password=PASSWORD, protocol="SASL_PLAINTEXT", mechanism=MECHANISM):
    return {
        "security.protocol": protocol,
        "sasl.mechanism": mechanism,
        "sasl.username": USER,
        "sasl.password": password,
    }


def start_gateway_for(net, gw_ip, name, bootstrap, cluster, workdir, **kwargs):
    """kafka-edge in port mode in the cluster ns, in front of `bootstrap`, with an admin port.

    kwargs: tls, upstream_tls, upstream_sasl ([upstream.sasl], the gateway's own login),
    env, wait_brokers (False when the gateway cannot read metadata: its broker port stays shut).
    """
    k = next(GATEWAY_NUMBERS)
    wait_brokers = kwargs.pop("wait_brokers", True)
    gw = start_config_gateway(
        name,
        workdir,
        bootstrap,
        cluster.node_ids,
        gw_ip,
        9100 + k,
        port_base=20000 + 100 * k,
        admin_port=9300 + k,
        prefix=net.prefix(net.ns_cluster),
        connect_check=net.connect_check(net.ns_cluster),
        wait_brokers=wait_brokers,
        **kwargs,
    )
    gw.cluster = cluster
    gw.connect_check = net.connect_check(net.ns_cluster)
    return gw


@pytest.fixture(scope="module")
def password_files(workdir):
    """{"right": path, "wrong": path}: password files as a Kubernetes secret volume has them."""
    files = {}
    for kind, password in (("right", PASSWORD), ("wrong", WRONG_PASSWORD)):
        path = os.path.join(workdir, "sasl-password-%s-%s" % (kind, RUN_TAG))
        with open(path, "w") as f:
            f.write(password + "\n")
        files[kind] = path
    return files


def login(password_file, user=USER, mechanism=MECHANISM):
    return {"mechanism": mechanism, "username": user, "password_file": password_file}


@pytest.fixture(scope="module")
def sasl_gateway(sasl_net, gw_ip, sasl_kafka, workdir):
    """Logs in itself, with the password from an environment variable."""
    env = {"EDGE_SASL_PASSWORD": PASSWORD}
    own = {"mechanism": MECHANISM, "username": USER, "password_env": "EDGE_SASL_PASSWORD"}
    gw = start_gateway_for(
        sasl_net, gw_ip, "kafka-edge-sasl", sasl_kafka.bootstrap, sasl_kafka, workdir, upstream_sasl=own, env=env
    )
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.fixture(scope="module")
def sasl_pki(workdir, gw_ip):
    return make_pki(os.path.join(workdir, "tls-sasl-%s" % RUN_TAG), [gw_ip])


@pytest.fixture(scope="module")
def sasl_tls_gateway(sasl_net, gw_ip, sasl_kafka, sasl_pki, workdir):
    """TLS to clients, and no login of its own: client traffic alone teaches it the broker."""
    tls = {"cert": sasl_pki.server_cert, "key": sasl_pki.server_key}
    gw = start_gateway_for(
        sasl_net, gw_ip, "kafka-edge-sasl-tls", sasl_kafka.bootstrap, sasl_kafka, workdir, tls=tls, wait_brokers=False
    )
    try:
        yield gw
    finally:
        stop_gateway(gw)


def check_client(client, gw, kind, in_ns):
    md = client.metadata(gw.bootstrap, prefix=in_ns)
    assert md.ok, md.detail
    got = [{"id": b["id"], "host": b["host"], "port": b["port"]} for b in md.data["brokers"]]
    assert got == gw.expected_brokers(), "got %s, expected %s\n%s" % (got, gw.expected_brokers(), md.detail)
    for hp in gw.cluster.upstream_strings():
        assert hp not in md.data["raw"], "upstream %s reached the client\n%s" % (hp, md.detail)
    topic = TOPICS[kind]
    value_prefix = "sasl-%s" % kind
    prod = client.produce(gw.bootstrap, topic, value_prefix, 15, prefix=in_ns)
    assert prod.ok, prod.detail
    cons = client.consume(gw.bootstrap, topic, 15, prefix=in_ns)
    assert cons.ok, cons.detail
    assert sorted(cons.data) == ["%s-%05d" % (value_prefix, i) for i in range(15)], cons.detail


def wait_ready(gw, timeout=20):
    """/readyz answers 200 within `timeout`; returns the last (status, body)."""
    from realenv import wait_for

    last = [None]

    def ready():
        last[0] = gw.admin_get("/readyz")
        return last[0][0] == 200

    wait_for(ready, timeout, 0.2)
    return last[0]


def assert_no_password(gw):
    log = gw.log_text()
    for secret in (PASSWORD, WRONG_PASSWORD):
        assert secret not in log, "a password is in the gateway's log\n%s" % gw.excerpt()


def broker_port(gw):
    return gw.port_base + gw.cluster.node_ids[0]


def assert_ready_and_serving(gw):
    """Ready, and the broker's port bound, with no client having connected."""
    status = wait_ready(gw)
    assert status[0] == 200, "not ready: %s\n%s" % (status, gw.excerpt())
    assert gw.connect_check(gw.listen_ip, broker_port(gw)), "broker port %d not bound\n%s" % (
        broker_port(gw),
        gw.excerpt(),
    )
    assert "cluster metadata received" in gw.log_text(), gw.excerpt()
    metrics = gw.admin_get("/metrics")[1]
    assert "kafka_edge_ready 1" in metrics.splitlines(), metrics
    # No client request has gone through: the port comes from the gateway's own refresh.
    # (The harness's connect checks open connections, but send nothing.)
    assert "kafka_edge_requests_total{" not in metrics, metrics
    assert_no_password(gw)


def test_gateway_login_from_the_environment_makes_it_ready(sasl_gateway):
    """Runs before any client test uses this gateway."""
    assert_ready_and_serving(sasl_gateway)


@pytest.mark.parametrize(
    "mechanism,user", [("SCRAM-SHA-256", USER), ("SCRAM-SHA-512", USER_512), ("PLAIN", USER)]
)  # fmt: skip
def test_gateway_login_from_a_file_makes_it_ready(
    sasl_net, gw_ip, sasl_kafka, password_files, workdir, mechanism, user
):  # fmt: skip
    name = "kafka-edge-sasl-login-%s" % mechanism.lower()
    gw = start_gateway_for(
        sasl_net, gw_ip, name, sasl_kafka.bootstrap, sasl_kafka, workdir,
        upstream_sasl=login(password_files["right"], user, mechanism),
    )  # fmt: skip
    try:
        assert_ready_and_serving(gw)
    finally:
        stop_gateway(gw)


def assert_not_ready_because(gw, needles):
    line = "cannot read cluster metadata"
    assert gw.wait_log_count(line, 0, timeout=20), "no discovery failure logged\n%s" % gw.excerpt()
    failure = [entry for entry in gw.log_text().splitlines() if line in entry][0]
    for needle in needles:
        assert needle in failure, "%r not in the failure line:\n%s" % (needle, failure)
    status = gw.admin_get("/readyz")
    assert status[0] == 503, "readyz %s\n%s" % (status, gw.excerpt())
    assert not gw.connect_check(gw.listen_ip, broker_port(gw)), "broker port %d bound without metadata" % broker_port(
        gw
    )
    assert_no_password(gw)


def test_gateway_login_with_a_wrong_password_stays_not_ready(sasl_net, gw_ip, sasl_kafka, password_files, workdir):
    gw = start_gateway_for(
        sasl_net, gw_ip, "kafka-edge-sasl-wrong", sasl_kafka.bootstrap, sasl_kafka, workdir,
        upstream_sasl=login(password_files["wrong"]), wait_brokers=False,
    )  # fmt: skip
    try:
        # Kafka's verdict is a SaslAuthenticate error (SASL_AUTHENTICATION_FAILED) with its message.
        assert_not_ready_because(
            gw,
            [
                "cannot log in to %s" % sasl_kafka.bootstrap[0],
                'the broker refused the login of user "%s" with SCRAM-SHA-256' % USER,
                BAD_CREDENTIALS,
            ],
        )
    finally:
        stop_gateway(gw)


def test_gateway_without_login_stays_not_ready_and_says_why(sasl_net, gw_ip, sasl_kafka, workdir):
    gw = start_gateway_for(
        sasl_net, gw_ip, "kafka-edge-sasl-none", sasl_kafka.bootstrap, sasl_kafka, workdir, wait_brokers=False
    )
    try:
        assert_not_ready_because(gw, ["its listener requires authentication; configure [upstream.sasl]"])
    finally:
        stop_gateway(gw)


def test_diagnose_logs_in(sasl_kafka, password_files, workdir, in_ns):
    def diagnose(name, password_file):
        path = os.path.join(workdir, "%s.toml" % name)
        sections = [
            ("upstream", {"bootstrap_servers": list(sasl_kafka.bootstrap)}),
            ("upstream.sasl", login(password_file, USER_512, "SCRAM-SHA-512")),
        ]
        with open(path, "w") as f:
            f.write(render_config(sections))
        return run(in_ns + [gateway_binary(), "diagnose", "--config", path], timeout=30)

    res = diagnose("diagnose-sasl-right", password_files["right"])
    assert res.returncode == 0, describe(res)
    node = sasl_kafka.node_ids[0]
    assert re.search(r"^\s+%d\s+%s\s" % (node, re.escape(sasl_kafka.bootstrap[0])), res.stdout, re.M), describe(res)
    assert "security.protocol=SASL_PLAINTEXT" in res.stdout, describe(res)
    res = diagnose("diagnose-sasl-wrong", password_files["wrong"])
    assert res.returncode == 1, describe(res)
    assert 'the broker refused the login of user "%s" with SCRAM-SHA-512' % USER_512 in res.stderr, describe(res)
    assert BAD_CREDENTIALS in res.stderr, describe(res)
    assert WRONG_PASSWORD not in res.stdout + res.stderr


def test_gateway_login_over_tls_to_the_brokers(
    sasl_net, gw_ip, sasl_kafka, sasl_tls_gateway, sasl_pki, password_files, workdir, kcats, in_ns
):  # fmt: skip
    """SASL_SSL for the gateway's own connections: [upstream.tls] and [upstream.sasl] to
    the TLS gateway in front of Kafka, which passes the login through to Kafka."""
    front = sasl_tls_gateway
    gw = start_gateway_for(
        sasl_net, gw_ip, "kafka-edge-sasl-ssl-chain", [front.bootstrap], sasl_kafka, workdir,
        upstream_tls={"ca": sasl_pki.ca}, upstream_sasl=login(password_files["right"]),
    )  # fmt: skip
    try:
        assert_ready_and_serving(gw)
        # The front learned the broker from the chained gateway's own Metadata.
        assert front.connect_check(front.listen_ip, broker_port(front)), front.excerpt()
        check_client(SecureClient("confluent", kcats, scram()), gw, "chain-confluent", in_ns)
    finally:
        stop_gateway(gw)


def test_kafka_refuses_unauthenticated_and_wrong_password_directly(sasl_kafka, kcats, in_ns):
    """Controls: the broker itself insists on SASL and checks the password."""
    bootstrap = sasl_kafka.bootstrap[0]
    md = SecureClient("confluent", kcats, {}).metadata(bootstrap, prefix=in_ns, deadline=3)
    assert not md.ok, "Kafka answered without authentication\n%s" % md.detail
    data, res = SecureClient("confluent", kcats, scram("wrong-password"))._confluent(bootstrap, ["metadata"], in_ns, 3)
    assert res.returncode != 0, "Kafka accepted a wrong password\n%s" % describe(res)
    assert BAD_CREDENTIALS in res.stderr, describe(res, limit=20000)
    md = SecureClient("confluent", kcats, scram()).metadata(bootstrap, prefix=in_ns)
    assert md.ok, "the right password fails even without kafka-edge\n%s" % md.detail


@pytest.mark.parametrize("client_name", ["kcat-2.16", "confluent"])
def test_sasl_plaintext_scram_through_gateway(sasl_gateway, kcats, client_name, in_ns):
    check_client(SecureClient(client_name, kcats, scram()), sasl_gateway, "plain-%s" % client_name.split("-")[0], in_ns)


def test_sasl_plaintext_plain_mechanism_through_gateway(sasl_gateway, kcats, in_ns):
    conf = scram(mechanism="PLAIN")
    check_client(SecureClient("confluent", kcats, conf), sasl_gateway, "plainmech-confluent", in_ns)


@pytest.mark.parametrize("client_name", ["kcat-2.16", "confluent"])
def test_sasl_ssl_scram_through_tls_gateway(sasl_tls_gateway, sasl_pki, kcats, client_name, in_ns):
    conf = dict(tls_settings(sasl_pki), **scram(protocol="SASL_SSL"))
    check_client(SecureClient(client_name, kcats, conf), sasl_tls_gateway, "ssl-%s" % client_name.split("-")[0], in_ns)


def test_sasl_wrong_password_fails_through_gateway(sasl_gateway, kcats, in_ns):
    client = SecureClient("confluent", kcats, scram("wrong-password"))
    data, res = client._confluent(sasl_gateway.bootstrap, ["metadata"], in_ns, 3)
    assert res.returncode != 0, "a wrong password got metadata through kafka-edge\n%s" % describe(res)
    # The broker's verdict travelled back through the gateway unchanged.
    assert BAD_CREDENTIALS in res.stderr, describe(res, limit=20000)
