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
from edgeauth import kafka  # noqa: F401 (a fixture)
from edgeauth import EdgeGateway, confluent, credentials, java_scram, login, serve, values
from kafkacluster import KAFKA_VERSION
from netns import leak_scan
from realenv import describe, wait_for
from tlsenv import net  # noqa: F401 (a fixture)

RUN_TAG = "%x%02x" % (os.getpid(), random.randrange(256))
A_TOPIC = "team-a.orders-%s" % RUN_TAG
B_TOPIC = "team-b.orders-%s" % RUN_TAG
TOPICS = [A_TOPIC, B_TOPIC]


@pytest.fixture(scope="module")
def gateway(net, kafka, workdir):
    users = credentials(os.path.join(workdir, "authz-users-%s.json" % RUN_TAG))
    gw = EdgeGateway("kafka-edge-authz", workdir, kafka, net.edge_client_ip, 9100, net.prefix(net.ns_edge),
                     client_auth={"mechanisms": ["SCRAM-SHA-512"], "credentials_file": users},
                     port_base=20000, admin_port=9300)  # fmt: skip
    yield from serve(gw, net, kafka)


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


def to_broker_bytes(gw):
    status, metrics = gw.admin_get("/metrics")
    assert status == 200, metrics
    line = next(x for x in metrics.splitlines() if x.startswith('kafka_edge_bytes_total{direction="to_broker"}'))
    return float(line.split()[-1])


def test_a_client_that_does_not_log_in_gets_nothing(net, gateway, kafka, workdir):
    """The seed scenario behind an authenticating gateway: a client that does not log in keeps
    trying for 8 s; in every byte the client namespace exchanged meanwhile there is no topic
    name and no internal address, and not one byte of it went on to the cluster."""
    before = to_broker_bytes(gateway)
    capture = net.capture(workdir, "authz-no-login")
    data, res = confluent(net, gateway, {}, "metadata", deadline=8)
    assert res.returncode != 0, describe(res)
    assert A_TOPIC not in res.stdout and B_TOPIC not in res.stdout, describe(res)
    forbidden = [A_TOPIC, B_TOPIC] + [h for h in kafka.bootstrap] + [h.split(":")[0] for h in kafka.bootstrap]
    scan = leak_scan(capture, net, forbidden=forbidden, min_received=200)
    assert to_broker_bytes(gateway) == before, "a client that never logged in reached the cluster"
    print("unauthenticated client: %s" % scan.summary)


def test_the_java_client_runs_under_its_teams_names_and_is_refused_others(net, gateway):
    conf = java_scram("team-a")
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
    # produce to team B's topic, and sends no Produce: the marked topic is the refusal; the
    # Java client's CreateTopics is refused.
    for expected in [
        ("team-a", "topic:" + B_TOPIC, 29),
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

