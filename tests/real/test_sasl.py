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

The gateway's own login ([upstream.sasl], for its metadata refresh):
  * with SCRAM-SHA-256 or SCRAM-SHA-512 and the right password (from a file or
    from an environment variable) it becomes ready (/readyz 200) and binds the
    broker port of node 111 before any client has connected;
  * over TLS to the brokers as well (SASL_SSL): a second gateway logs in
    through the TLS gateway, and a client produces and consumes through both;
  * `kafka-edge diagnose` logs in too;
  * with a wrong password it stays not ready and logs why, without the
    password; without [upstream.sasl] it stays not ready and logs that the
    broker requires authentication.

Debian's kcat (librdkafka 2.0.2) cannot talk to tansu at all (TESTING.md).
TANSU_SASL_BIN names the tansu binary (default: tansu on PATH or
~/.cargo/bin); one without sqlite support fails this module with the command
that installs one that has it.
"""

import os
import random
import re

import pytest

from realenv import (
    GATEWAY_IP,
    Cluster,
    ManagedProc,
    can_connect,
    describe,
    free_port,
    gateway_binary,
    pick_port_base,
    require_tool,
    run,
    stop_gateway,
    wait_for,
)
from tlsenv import (
    SecureClient,
    make_pki,
    render_config,
    start_config_gateway,
    tls_settings,
)

USER = "edge-sasl-user"
# A SCRAM-SHA-512 user with the same password, for the gateway's own login.
USER_512 = "edge-sasl-user-512"
PASSWORD = "s3cret-%06x" % random.randrange(1 << 24)
WRONG_PASSWORD = "wr0ng-%06x" % random.randrange(1 << 24)
MECHANISM = "SCRAM-SHA-256"
RUN_TAG = "%x%02x" % (os.getpid(), random.randrange(256))
KINDS = ("plain-confluent", "plain-kcat", "ssl-confluent", "ssl-kcat", "chain-confluent")
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
            res = run(
                [self.tansu, "user", "create", USER_512, PASSWORD, "--mechanism", "scram512", "--broker", self.url],
                timeout=30,
            )
            assert res.returncode == 0, "tansu user create (scram512) failed\n%s" % describe(res)
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


def start_gateway_for(name, cluster, workdir, tls=None, login=None, env=None, wait_brokers=True, avoid=()):
    """kafka-edge in port mode in front of `cluster`, with an admin port.

    login: the [upstream.sasl] section of the gateway's own login, or None.
    Without one, tansu closes the gateway's Metadata request, so the broker
    port opens only when the first client's Metadata passes through (before
    that response reaches the client): pass wait_brokers=False then.
    """
    base = pick_port_base(GATEWAY_IP, cluster.node_ids, avoid=avoid)
    taken = {base + cluster.NODE_ID} | set(avoid)
    port = free_port(GATEWAY_IP)
    while port in taken:
        port = free_port(GATEWAY_IP)
    admin = free_port(GATEWAY_IP)
    while admin in taken or admin == port:
        admin = free_port(GATEWAY_IP)
    gw = start_config_gateway(
        name,
        workdir,
        cluster.bootstrap,
        cluster.node_ids,
        GATEWAY_IP,
        port,
        port_base=base,
        tls=tls,
        upstream_sasl=login,
        admin_port=admin,
        env=env,
        wait_brokers=wait_brokers,
    )
    gw.cluster = cluster
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
def sasl_gateway(sasl_tansu, workdir):
    """Logs in itself, with the password from an environment variable."""
    env = {"EDGE_SASL_PASSWORD": PASSWORD}
    own = {"mechanism": MECHANISM, "username": USER, "password_env": "EDGE_SASL_PASSWORD"}
    gw = start_gateway_for("kafka-edge-sasl", sasl_tansu, workdir, login=own, env=env)
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.fixture(scope="module")
def sasl_pki(workdir):
    return make_pki(os.path.join(workdir, "tls-sasl-%s" % RUN_TAG), [GATEWAY_IP])


@pytest.fixture(scope="module")
def sasl_tls_gateway(sasl_tansu, sasl_pki, workdir):
    """TLS to clients, and no login of its own: client traffic alone teaches it node 111."""
    tls = {"cert": sasl_pki.server_cert, "key": sasl_pki.server_key}
    gw = start_gateway_for("kafka-edge-sasl-tls", sasl_tansu, workdir, tls=tls, wait_brokers=False)
    try:
        yield gw
    finally:
        stop_gateway(gw)


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


def wait_ready(gw, timeout=20):
    """/readyz answers 200 within `timeout`; returns the last (status, body)."""
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


def assert_ready_and_serving(gw):
    """Ready, and node 111's port bound, with no client having connected."""
    status = wait_ready(gw)
    assert status[0] == 200, "not ready: %s\n%s" % (status, gw.excerpt())
    port = gw.port_base + gw.cluster.NODE_ID
    assert can_connect(GATEWAY_IP, port), "broker port %d not bound\n%s" % (port, gw.excerpt())
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


@pytest.mark.parametrize("mechanism,user", [("SCRAM-SHA-256", USER), ("SCRAM-SHA-512", USER_512)])
def test_gateway_login_from_a_file_makes_it_ready(sasl_tansu, password_files, workdir, mechanism, user):
    name = "kafka-edge-sasl-login-%s" % mechanism.lower()
    gw = start_gateway_for(name, sasl_tansu, workdir, login=login(password_files["right"], user, mechanism))
    try:
        assert_ready_and_serving(gw)
    finally:
        stop_gateway(gw)


def assert_not_ready_because(gw, needles):
    line = "cannot read cluster metadata"
    assert gw.wait_log_count(line, 0, timeout=20), "no discovery failure logged\n%s" % gw.excerpt()
    failure = [l for l in gw.log_text().splitlines() if line in l][0]
    for needle in needles:
        assert needle in failure, "%r not in the failure line:\n%s" % (needle, failure)
    status = gw.admin_get("/readyz")
    assert status[0] == 503, "readyz %s\n%s" % (status, gw.excerpt())
    port = gw.port_base + gw.cluster.NODE_ID
    assert not can_connect(GATEWAY_IP, port), "broker port %d bound without metadata" % port
    assert_no_password(gw)


def test_gateway_login_with_a_wrong_password_stays_not_ready(sasl_tansu, password_files, workdir):
    gw = start_gateway_for(
        "kafka-edge-sasl-wrong", sasl_tansu, workdir, login=login(password_files["wrong"]), wait_brokers=False
    )
    try:
        # tansu's verdict is the SCRAM server-final-message "e=invalid-proof".
        assert_not_ready_because(
            gw, ["cannot log in to %s" % sasl_tansu.bootstrap[0], 'SCRAM-SHA-256 login of user "%s"' % USER, "invalid-proof"]
        )
    finally:
        stop_gateway(gw)


def test_gateway_without_login_stays_not_ready_and_says_why(sasl_tansu, workdir):
    gw = start_gateway_for("kafka-edge-sasl-none", sasl_tansu, workdir, wait_brokers=False)
    try:
        assert_not_ready_because(gw, ["its listener requires authentication; configure [upstream.sasl]"])
    finally:
        stop_gateway(gw)


def test_diagnose_logs_in(sasl_tansu, password_files, workdir):
    def diagnose(name, password_file):
        path = os.path.join(workdir, "%s.toml" % name)
        sections = [
            ("upstream", {"bootstrap_servers": list(sasl_tansu.bootstrap)}),
            ("upstream.sasl", login(password_file, USER_512, "SCRAM-SHA-512")),
        ]
        with open(path, "w") as f:
            f.write(render_config(sections))
        return run([gateway_binary(), "diagnose", "--config", path], timeout=30)

    res = diagnose("diagnose-sasl-right", password_files["right"])
    assert res.returncode == 0, describe(res)
    assert re.search(r"^\s+111\s+%s\s" % re.escape(sasl_tansu.bootstrap[0]), res.stdout, re.M), describe(res)
    assert "security.protocol=SASL_PLAINTEXT" in res.stdout, describe(res)
    res = diagnose("diagnose-sasl-wrong", password_files["wrong"])
    assert res.returncode == 1, describe(res)
    assert 'SCRAM-SHA-512 login of user "%s": the server refused the login: invalid-proof' % USER_512 in res.stderr, describe(res)
    assert WRONG_PASSWORD not in res.stdout + res.stderr


def test_gateway_login_over_tls_to_the_brokers(sasl_tansu, sasl_tls_gateway, sasl_pki, password_files, workdir, kcats):
    """SASL_SSL for the gateway's own connections: [upstream.tls] and [upstream.sasl] to
    the TLS gateway in front of tansu, which passes the login through to tansu."""
    front = sasl_tls_gateway
    avoid = {front.port_base + sasl_tansu.NODE_ID, front.listen_port, front.admin_port}
    port, base, admin = chain_ports(avoid)
    gw = start_config_gateway(
        "kafka-edge-sasl-ssl-chain",
        workdir,
        [front.bootstrap],
        sasl_tansu.node_ids,
        GATEWAY_IP,
        port,
        port_base=base,
        admin_port=admin,
        upstream_tls={"ca": sasl_pki.ca},
        upstream_sasl=login(password_files["right"]),
    )
    gw.cluster = sasl_tansu
    try:
        assert_ready_and_serving(gw)
        # The front learned node 111 from the chained gateway's own Metadata.
        assert can_connect(GATEWAY_IP, front.port_base + sasl_tansu.NODE_ID), front.excerpt()
        check_client(SecureClient("confluent", kcats, scram()), gw, "chain-confluent")
    finally:
        stop_gateway(gw)


def chain_ports(avoid):
    """(listen port, port base, admin port) for one more gateway beside the others."""
    base = pick_port_base(GATEWAY_IP, [SaslTansu.NODE_ID], avoid=avoid)
    taken = set(avoid) | {base + SaslTansu.NODE_ID}
    ports = []
    while len(ports) < 2:
        port = free_port(GATEWAY_IP)
        if port not in taken:
            taken.add(port)
            ports.append(port)
    return ports[0], base, ports[1]


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
