"""SASL through kafka-edge, against a broker that requires it (issue 6, item 4).

Which of our brokers speaks SASL:
  * librdkafka's mock cluster: no.  Its request handler table
    (rdkafka_mock_handlers.c, rd_kafka_mock_api_handlers) has no SaslHandshake
    or SaslAuthenticate, and it has no TLS listener either.
  * tansu 0.6.0 with `--authentication`: SCRAM-SHA-256 and SCRAM-SHA-512.
    Not PLAIN (its rsasl is built with scram-sha-2 only; a PLAIN handshake
    ends with `Auth(Sasl(NoSharedMechanism))` and a closed connection).
    Credentials live in the storage engine, and only the SQL engines keep
    them: with memory:// (the `dynostore` feature) `tansu user create` is a
    no-op and every login fails with "unknown-user".  So this module needs a
    tansu built with `--features libsql` (sqlite://).  `tansu user create`
    does not authenticate itself, so users and topics are created on the
    same sqlite file by a broker without --authentication, which is then
    restarted with it.

What is shown, through kafka-edge in port mode (plain, and TLS to clients):
  * confluent-kafka and kcat (librdkafka 2.16) authenticate with SCRAM-SHA-256
    (SASL_PLAINTEXT, and SASL_SSL through the TLS gateway), then produce and
    consume exact values; metadata names only the gateway;
  * a wrong password fails through the gateway, as it does directly: the
    broker really checks, and its verdict reaches the client.

Debian's kcat (librdkafka 2.0.2) cannot talk to tansu at all (TESTING.md).
TANSU_SASL_BIN names the tansu binary (default: tansu on PATH or
~/.cargo/bin); one without sqlite support fails this module with the command
that installs one that has it.
"""

import os
import random

import pytest

from realenv import (
    GATEWAY_IP,
    Cluster,
    ManagedProc,
    can_connect,
    describe,
    free_port,
    pick_port_base,
    require_tool,
    run,
    wait_for,
)
from tlsenv import SecureClient, make_pki, start_config_gateway, stop_config_gateway, tls_settings

USER = "edge-sasl-user"
PASSWORD = "s3cret-%06x" % random.randrange(1 << 24)
MECHANISM = "SCRAM-SHA-256"
RUN_TAG = "%x%02x" % (os.getpid(), random.randrange(256))
KINDS = ("plain-confluent", "plain-kcat", "ssl-confluent", "ssl-kcat")
TOPICS = {kind: "sasl-%s-%s" % (kind, RUN_TAG) for kind in KINDS}
INSTALL_HINT = "cargo install tansu --version 0.6.0 --locked --debug --features dynostore,libsql"


def tansu_binary():
    path = os.environ.get("TANSU_SASL_BIN")
    if path:
        if not os.access(path, os.X_OK):
            pytest.fail("TANSU_SASL_BIN=%s is not executable" % path, pytrace=False)
        return path
    return require_tool("tansu")


class SaslTansu(Cluster):
    """tansu (node id 111) on sqlite storage, requiring SCRAM authentication."""

    kind = "tansu-sasl"
    NODE_ID = 111

    def __init__(self, workdir, host="127.0.0.1"):
        self.tansu = tansu_binary()
        self.dir = os.path.join(workdir, "tansu-sasl-%s" % RUN_TAG)
        os.makedirs(self.dir, exist_ok=True)
        self.host = host
        self.port = free_port(host)
        self.url = "tcp://%s:%d" % (host, self.port)
        self.proc = None
        # 1. Without authentication: create the user and the topics.
        self._start("tansu-sasl-setup", authentication=False)
        try:
            res = run(
                [self.tansu, "user", "create", USER, PASSWORD, "--mechanism", "scram256", "--broker", self.url],
                timeout=30,
            )
            assert res.returncode == 0, "tansu user create failed\n%s" % describe(res)
            for topic in TOPICS.values():
                run(
                    [self.tansu, "topic", "create", topic, "--broker", self.url, "--partitions", "3"],
                    timeout=30,
                    check=True,
                )
        finally:
            self.proc.stop()
        # 2. The same storage, now requiring SASL.
        self._start("tansu-sasl", authentication=True)
        hp = "%s:%d" % (host, self.port)
        super().__init__([hp], [self.NODE_ID], {self.NODE_ID: (host, self.port)})

    def _start(self, name, authentication):
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        cmd = ["env", "-C", self.dir, self.tansu, "broker", "--listener-url", self.url]
        cmd += ["--advertised-listener-url", self.url, "--storage-engine", "sqlite://tansu.db"]
        if authentication:
            cmd.append("--authentication")
        self.proc = ManagedProc(name, cmd, self.dir, env=env)
        up = wait_for(lambda: can_connect(self.host, self.port) or not self.proc.alive(), 30)
        log = self.proc.log_text()
        if "FeatureNotEnabled" in log:
            self.proc.stop()
            pytest.fail(
                "%s has no sqlite storage (needed to keep SCRAM credentials): install it with\n  %s\n%s"
                % (self.tansu, INSTALL_HINT, log[-2000:]),
                pytrace=False,
            )
        if not up or not self.proc.alive():
            self.proc.stop()
            raise AssertionError("tansu did not listen on %s\n%s" % (self.url, self.proc.excerpt()))

    def create_topic(self, name, partitions):
        raise AssertionError("topics are created before authentication is switched on: %s" % sorted(TOPICS.values()))

    def stop(self):
        return self.proc.stop()


def scram(password=PASSWORD, protocol="SASL_PLAINTEXT"):
    return {
        "security.protocol": protocol,
        "sasl.mechanism": MECHANISM,
        "sasl.username": USER,
        "sasl.password": password,
    }


@pytest.fixture(scope="module")
def sasl_tansu(workdir):
    cluster = SaslTansu(workdir)
    try:
        yield cluster
    finally:
        cluster.stop()


def start_gateway_for(name, cluster, workdir, tls=None):
    base = pick_port_base(GATEWAY_IP, cluster.node_ids)
    port = free_port(GATEWAY_IP)
    while port == base + cluster.NODE_ID:
        port = free_port(GATEWAY_IP)
    # wait_brokers=False: kafka-edge's own discovery has no SASL credentials,
    # so tansu closes its Metadata request ("cannot read cluster metadata:
    # early eof") and the broker port opens only when the first client's
    # Metadata passes through (before that response reaches the client).
    gw = start_config_gateway(
        name,
        workdir,
        cluster.bootstrap,
        cluster.node_ids,
        GATEWAY_IP,
        port,
        port_base=base,
        tls=tls,
        wait_brokers=False,
    )
    gw.cluster = cluster
    return gw


@pytest.fixture(scope="module")
def sasl_gateway(sasl_tansu, workdir):
    gw = start_gateway_for("kafka-edge-sasl", sasl_tansu, workdir)
    try:
        yield gw
    finally:
        stop_config_gateway(gw)


@pytest.fixture(scope="module")
def sasl_pki(workdir):
    return make_pki(os.path.join(workdir, "tls-sasl-%s" % RUN_TAG), [GATEWAY_IP])


@pytest.fixture(scope="module")
def sasl_tls_gateway(sasl_tansu, sasl_pki, workdir):
    tls = {"cert": sasl_pki.server_cert, "key": sasl_pki.server_key}
    gw = start_gateway_for("kafka-edge-sasl-tls", sasl_tansu, workdir, tls=tls)
    try:
        yield gw
    finally:
        stop_config_gateway(gw)


def check_client(client, gw, kind):
    md = client.metadata(gw.bootstrap)
    assert md.ok, md.detail
    got = [{"id": b["id"], "host": b["host"], "port": b["port"]} for b in md.data["brokers"]]
    assert got == gw.expected_brokers(), "got %s, expected %s\n%s" % (got, gw.expected_brokers(), md.detail)
    for hp in gw.cluster.upstream_strings():
        assert hp not in md.data["raw"], "upstream %s reached the client\n%s" % (hp, md.detail)
    topic = TOPICS[kind]
    value_prefix = "sasl-%s" % kind
    prod = client.produce(gw.bootstrap, topic, value_prefix, 15)
    assert prod.ok, prod.detail
    cons = client.consume(gw.bootstrap, topic, 15)
    assert cons.ok, cons.detail
    assert sorted(cons.data) == ["%s-%05d" % (value_prefix, i) for i in range(15)], cons.detail


def test_tansu_refuses_unauthenticated_and_wrong_password_directly(sasl_tansu, kcats):
    """Controls: the broker itself insists on SASL and checks the password."""
    bootstrap = sasl_tansu.bootstrap[0]
    md = SecureClient("confluent", kcats, {}).metadata(bootstrap, deadline=3)
    assert not md.ok, "tansu answered without authentication\n%s" % md.detail
    data, res = SecureClient("confluent", kcats, scram("wrong-password"))._confluent(bootstrap, ["metadata"], (), 3)
    assert res.returncode != 0, "tansu accepted a wrong password\n%s" % describe(res)
    assert "invalid-proof" in res.stderr, describe(res, limit=20000)
    md = SecureClient("confluent", kcats, scram()).metadata(bootstrap)
    assert md.ok, "the right password fails even without kafka-edge\n%s" % md.detail


@pytest.mark.parametrize("client_name", ["kcat-2.16", "confluent"])
def test_sasl_plaintext_scram_through_gateway(sasl_gateway, kcats, client_name):
    check_client(SecureClient(client_name, kcats, scram()), sasl_gateway, "plain-%s" % client_name.split("-")[0])


@pytest.mark.parametrize("client_name", ["kcat-2.16", "confluent"])
def test_sasl_ssl_scram_through_tls_gateway(sasl_tls_gateway, sasl_pki, kcats, client_name):
    conf = dict(tls_settings(sasl_pki), **scram(protocol="SASL_SSL"))
    check_client(SecureClient(client_name, kcats, conf), sasl_tls_gateway, "ssl-%s" % client_name.split("-")[0])


def test_sasl_wrong_password_fails_through_gateway(sasl_gateway, kcats):
    client = SecureClient("confluent", kcats, scram("wrong-password"))
    data, res = client._confluent(sasl_gateway.bootstrap, ["metadata"], (), 3)
    assert res.returncode != 0, "a wrong password got metadata through kafka-edge\n%s" % describe(res)
    # The broker's SCRAM verdict (server-final-message "e=invalid-proof")
    # travelled back through the gateway unchanged.
    assert "invalid-proof" in res.stderr, describe(res, limit=20000)
