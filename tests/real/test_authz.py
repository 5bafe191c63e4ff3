"""Authorization at the edge, with Apache Kafka 4.4.0 and real clients (issue 14, item 3).

The seed's shape: a one-node Kafka 4.4.0 with a PLAINTEXT listener only, in the
cluster namespace. kafka-edge, in the edge namespace, is the door: clients log in
to it with SCRAM-SHA-512 (its credential file, written by `kafka-edge credentials
add`), it talks to Kafka as is, and a two-team policy decides every request:
`team-a` and `team-b` each read, write, describe and create their own topics,
groups and transactional ids (`team-a.*`, `team-b.*`). Clients run in the client
namespace.

Shown, with confluent-kafka (librdkafka 2.16) and the Java client (kafka-clients
4.4.0):
  * team A produces and consumes its topic, with a consumer group; the Java
    client's produce, transaction and consumer group scenarios run whole under
    team A's names;
  * Metadata lists only team A's topics (not team B's, not Kafka's internal ones);
  * team A is refused team B's topic (TOPIC_AUTHORIZATION_FAILED), group
    (GROUP_AUTHORIZATION_FAILED) and transactional id
    (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), as the clients report them; the Java
    client creating a topic under team B's names gets TopicAuthorizationException;
  * team B, meanwhile, produces and consumes its own topic: nothing of A's refusals
    costs B anything;
  * a client that does not log in gets nothing but the refusal;
  * the audit log holds one line per refusal, and the denial metric counts them.
"""

import json
import os
import random

import pytest

from clientrun import JavaRun
from kafkacluster import KAFKA_VERSION, KafkaCluster
from netns import seed_network
from realenv import PYTHON, ManagedProc, describe, gateway_binary, register_gateway, run, stop_gateway, wait_for
from tlsenv import TLSCLIENT, ConfigGateway, render_config, sweep_stale_netns_etc

RUN_TAG = "%x%02x" % (os.getpid(), random.randrange(256))
PASSWORDS = {team: "pw-%s-%06x" % (team, random.randrange(1 << 24)) for team in ("team-a", "team-b")}
A_TOPIC = "team-a.orders-%s" % RUN_TAG
B_TOPIC = "team-b.orders-%s" % RUN_TAG


@pytest.fixture(scope="module")
def net():
    sweep_stale_netns_etc()
    with seed_network() as n:
        yield n


@pytest.fixture(scope="module")
def kafka(net, workdir):
    cluster = KafkaCluster(net, workdir, "kafka-authz", version=KAFKA_VERSION, brokers=1)
    try:
        cluster.create_topics([(A_TOPIC, 3, None), (B_TOPIC, 3, None)])
        yield cluster.view("PLAINTEXT")
    finally:
        cluster.stop()


def credentials(workdir):
    """The gateway's credential file, written by its own CLI (passwords on stdin)."""
    path = os.path.join(workdir, "authz-users-%s.json" % RUN_TAG)
    for user, password in PASSWORDS.items():
        cmd = [gateway_binary(), "credentials", "add", "--file", path, "--user", user, "--mechanism", "SCRAM-SHA-512"]
        res = run(cmd, timeout=60, input_text=password + "\n")
        assert res.returncode == 0, describe(res)
    return path


POLICY = "".join(
    """
[[policy.grants]]
principals = ["{team}"]
operations = ["read", "write", "describe", "create"]
topics = ["{team}.*"]
groups = ["{team}.*"]
transactional_ids = ["{team}.*"]
""".format(team=team)
    for team in PASSWORDS
)


class PolicyGateway(ConfigGateway):
    """kafka-edge with [client_auth], a policy and an audit log, as ConfigGateway runs it."""

    def __init__(self, name, workdir, view, listen_ip, prefix):
        self.name = name
        self.node_ids = sorted(view.node_ids)
        self.listen_ip = listen_ip
        self.listen_port = 9100
        self.port_base = 20000
        self.host = listen_ip
        self.sni_domain = None
        self.tls = None
        self.admin_port = 9300
        self.prefix = list(prefix)
        self.audit_path = os.path.join(workdir, "%s-audit.log" % name)
        sections = [
            ("gateway", {"listen": "%s:%d" % (listen_ip, self.listen_port), "advertised_host": listen_ip}),
            ("upstream", {"bootstrap_servers": list(view.bootstrap), "connect_timeout_ms": 3000}),
            ("admin", {"listen": "%s:%d" % (listen_ip, self.admin_port)}),
            ("brokers", {"port_base": self.port_base}),
            ("client_auth", {"mechanisms": ["SCRAM-SHA-512"], "credentials_file": credentials(workdir)}),
            ("audit", {"file": self.audit_path}),
        ]
        self.config_path = os.path.join(workdir, "%s.toml" % name)
        with open(self.config_path, "w") as f:
            f.write(render_config(sections) + POLICY)
        env = dict(os.environ, RUST_LOG="info", RUST_BACKTRACE="1", NO_COLOR="1")
        cmd = self.prefix + [gateway_binary(), "--config", self.config_path]
        self.proc = ManagedProc(name, cmd, workdir, env=env)

    def audit(self):
        try:
            with open(self.audit_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []


@pytest.fixture(scope="module")
def gateway(net, kafka, workdir):
    gw = PolicyGateway("kafka-edge-authz", workdir, kafka, net.edge_client_ip, net.prefix(net.ns_edge))
    register_gateway(gw, connect_check=net.connect_check(net.ns_client))
    gw.cluster = kafka
    try:
        yield gw
    finally:
        stop_gateway(gw)


def login(team):
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": team,
        "sasl.password": PASSWORDS[team],
    }


def confluent(net, gw, conf, *args, deadline=30):
    """One kclient.py operation of confluent-kafka with `conf`, from the client namespace."""
    cmd = net.prefix(net.ns_client) + [PYTHON, TLSCLIENT]
    for key, value in sorted(conf.items()):
        cmd += ["-X", "%s=%s" % (key, value)]
    cmd += ["confluent", "--bootstrap", gw.bootstrap, "--deadline", str(deadline)] + [str(a) for a in args]
    res = run(cmd, timeout=deadline + 60)
    lines = (res.stdout or "").strip().splitlines()
    data = json.loads(lines[-1]) if lines else None
    return data, res


def values(prefix, count):
    return ["%s-%05d" % (prefix, i) for i in range(count)]


def test_a_team_produces_and_consumes_its_own_topic(net, gateway):
    data, res = confluent(net, gateway, login("team-a"), "metadata")
    assert res.returncode == 0, describe(res)
    assert sorted(data["topics"]) == [A_TOPIC], "metadata lists only team A's topics\n%s" % describe(res)
    assert data["brokers"] == gateway.expected_brokers(), describe(res)
    data, res = confluent(net, gateway, login("team-a"), "produce", "--topic", A_TOPIC, "--prefix", "a", "--count", 20)
    assert res.returncode == 0, describe(res)
    group = "team-a.readers-%s" % RUN_TAG
    args = ("consume", "--topic", A_TOPIC, "--count", 20, "--group", group)
    data, res = confluent(net, gateway, login("team-a"), *args, deadline=60)
    assert res.returncode == 0, describe(res)
    assert sorted(data["values"]) == values("a", 20), describe(res)


def test_another_teams_topic_group_and_transactional_id_are_refused(net, gateway):
    conf = login("team-a")
    data, res = confluent(net, gateway, conf, "produce", "--topic", B_TOPIC, "--prefix", "x", "--count", 3)
    assert res.returncode != 0 and data["delivered"] == 0, describe(res)
    assert all("TOPIC_AUTHORIZATION_FAILED" in e for e in data["errors"]) and data["errors"], describe(res)

    # Its own topic, with team B's group: the group is refused.
    args = ("consume", "--topic", A_TOPIC, "--count", 1, "--group", "team-b.readers-%s" % RUN_TAG)
    data, res = confluent(net, gateway, conf, *args, deadline=20)
    assert res.returncode != 0, describe(res)
    assert any("GROUP_AUTHORIZATION_FAILED" in e for e in data.get("poll_errors", [])), describe(res)

    # Its own topic, with team B's transactional id: the id is refused.
    txn = "team-b.payments-%s" % RUN_TAG
    args = ("produce", "--topic", A_TOPIC, "--prefix", "t", "--count", 1, "--transactional-id", txn)
    data, res = confluent(net, gateway, conf, *args, deadline=20)
    assert res.returncode != 0, describe(res)
    assert "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" in data.get("error", ""), describe(res)

    # Team B, meanwhile, uses its own.
    conf = login("team-b")
    data, res = confluent(net, gateway, conf, "produce", "--topic", B_TOPIC, "--prefix", "b", "--count", 10)
    assert res.returncode == 0, describe(res)
    data, res = confluent(net, gateway, conf, "consume", "--topic", B_TOPIC, "--count", 10)
    assert res.returncode == 0 and sorted(data["values"]) == values("b", 10), describe(res)


def test_a_client_that_does_not_log_in_gets_nothing(net, gateway):
    data, res = confluent(net, gateway, {}, "metadata", deadline=8)
    assert res.returncode != 0, describe(res)
    assert A_TOPIC not in res.stdout and B_TOPIC not in res.stdout, describe(res)


def test_the_java_client_runs_under_its_teams_names_and_is_refused_others(net, gateway):
    conf = {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required username="team-a" '
        'password="%s";' % PASSWORDS["team-a"],
    }
    prefix = net.prefix(net.ns_client)
    own = JavaRun(KAFKA_VERSION, gateway.bootstrap, ["produce", "txn", "group-classic"], "team-a.java-" + RUN_TAG,
                  prefix=prefix, config=conf)  # fmt: skip
    for scenario in ("produce", "txn", "group-classic"):
        assert own.failures(scenario) == [], own.detail(scenario)
    other = JavaRun(KAFKA_VERSION, gateway.bootstrap, ["produce"], "team-b.java-" + RUN_TAG, prefix=prefix, config=conf)
    failed = other.failures("produce")
    assert failed, other.detail("produce")
    assert "TopicAuthorizationException" in json.dumps(failed), other.detail("produce")


def test_refusals_are_audited_and_counted(net, gateway):
    """Runs after the tests above, in file order."""

    def denials():
        return [line for line in gateway.audit() if line.get("event") == "denial"]

    wait_for(lambda: len(denials()) >= 3, 10, 0.2)
    seen = {(d["principal"], d["resource"], d.get("error_code")) for d in denials()}
    # librdkafka learns from the Metadata answer (the topic marked refused) that it may not
    # produce to team B's topic, and sends no Produce; the Java client's CreateTopics is
    # refused.
    for expected in [
        ("team-a", "topic:team-b.java-%s-produce-t" % RUN_TAG, 29),
        ("team-a", "group:team-b.readers-" + RUN_TAG, 30),
        ("team-a", "transactional_id:team-b.payments-" + RUN_TAG, 53),
    ]:
        assert expected in seen, "%s not audited: %s" % (expected, sorted(seen))
    for d in denials():
        assert d["decision"] == "deny" and d["client"].startswith(net.client_ip + ":"), d
    logins = [line for line in gateway.audit() if line.get("event") == "authentication"]
    assert any(line["principal"] == "team-b" and line["decision"] == "allow" for line in logins), logins
    status, metrics = gateway.admin_get("/metrics")
    assert status == 200, metrics
    lines = [line for line in metrics.splitlines() if line.startswith("kafka_edge_authorization_denials_total{")]
    for needle in ('resource="topic"', 'resource="group"', 'resource="transactional_id"'):
        assert any(needle in line for line in lines), "%s not counted:\n%s" % (needle, "\n".join(lines))

