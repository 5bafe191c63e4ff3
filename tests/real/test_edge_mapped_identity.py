"""Clients log in at the edge; the gateway logs in to Kafka as each team's own user (issue 14).

A one-node Kafka 4.4.0 in the cluster namespace with a SASL_PLAINTEXT listener (SCRAM
users `svc-team-a` and `svc-team-b`) and the StandardAuthorizer: each service user may do
everything on its team's prefixed topics, groups and transactional ids, and nothing else
(only the harness's own PLAINTEXT listener, `User:ANONYMOUS`, is a super user). kafka-edge
in the edge namespace takes client logins (SCRAM-SHA-512 against its own credential file,
passwords unrelated to the broker users') and maps each principal to its broker user:
`team-a` to `svc-team-a` by SCRAM-SHA-512 with the password from a file, `team-b` to
`svc-team-b` by SCRAM-SHA-256 with the password from an environment variable. The gateway
has no policy of its own, so every decision here is the broker's, made on the mapped user.

Shown, with confluent-kafka and the Java client from the client namespace:
  * each team produces, consumes with a group and (Java, team B) runs transactions on its
    own topics, as its broker user;
  * team A is refused team B's topic and group by the broker's ACLs
    (TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED), and the gateway's audit log
    holds no refusal of its own: the broker decided, on `svc-team-a`;
  * a client that does not log in at the edge gets nothing, although the broker is reachable
    from the edge.
"""

import json
import os
import random

import pytest

from clientrun import JavaRun
from edgeauth import EdgeGateway, confluent, credentials, java_scram, login, serve, values
from kafkacluster import KAFKA_VERSION, KafkaCluster
from realenv import describe
from tlsenv import net  # noqa: F401 (a fixture)

RUN_TAG = "%x%02x" % (os.getpid(), random.randrange(256))
A_TOPIC = "team-a.mapped-%s" % RUN_TAG
B_TOPIC = "team-b.mapped-%s" % RUN_TAG
BROKER_USERS = {"team-a": "svc-team-a", "team-b": "svc-team-b"}
BROKER_PASSWORDS = {user: "broker-%s-%06x" % (user, random.randrange(1 << 24)) for user in BROKER_USERS.values()}
ACL_COMMAND = "org.apache.kafka.tools.AclCommand"


@pytest.fixture(scope="module")
def kafka(net, workdir):
    authorizer = {
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # The PLAINTEXT listener (controller, inter-broker, the harness's admin) only.
        "super.users": "User:ANONYMOUS",
    }
    cluster = KafkaCluster(net, workdir, "kafka-mapped", version=KAFKA_VERSION, brokers=1, sasl_users=BROKER_PASSWORDS,
                           extra=authorizer)  # fmt: skip
    try:
        cluster.create_topics([(A_TOPIC, 3, None), (B_TOPIC, 3, None)])
        for team, user in BROKER_USERS.items():
            args = ["--bootstrap-server", "{bootstrap}", "--add", "--allow-principal", "User:" + user,
                    "--operation", "All", "--resource-pattern-type", "prefixed", "--topic", team + ".",
                    "--group", team + ".", "--transactional-id", team + "."]  # fmt: skip
            cluster.tool(ACL_COMMAND, args)
        yield cluster.view("SASL_PLAINTEXT")
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def gateway(net, kafka, workdir):
    users = credentials(os.path.join(workdir, "mapped-users-%s.json" % RUN_TAG))
    password_file = os.path.join(workdir, "mapped-svc-team-a-%s.password" % RUN_TAG)
    with open(password_file, "w") as f:
        f.write(BROKER_PASSWORDS["svc-team-a"] + "\n")
    raw = """
[upstream_identity.principals.team-a]
mode = "sasl"
mechanism = "SCRAM-SHA-512"
username = "svc-team-a"
password_file = %s

[upstream_identity.principals.team-b]
mode = "sasl"
mechanism = "SCRAM-SHA-256"
username = "svc-team-b"
password_env = "KAFKA_EDGE_TEST_TEAM_B_PASSWORD"
""" % json.dumps(password_file)
    gw = EdgeGateway("kafka-edge-mapped", workdir, kafka, net.edge_client_ip, 9100, net.prefix(net.ns_edge),
                     {"mechanisms": ["SCRAM-SHA-512"], "credentials_file": users}, raw=raw, with_policy=False,
                     port_base=20000, admin_port=9300,
                     env={"KAFKA_EDGE_TEST_TEAM_B_PASSWORD": BROKER_PASSWORDS["svc-team-b"]})  # fmt: skip
    yield from serve(gw, net, kafka)


@pytest.mark.parametrize("team,topic", [("team-a", A_TOPIC), ("team-b", B_TOPIC)])
def test_each_team_works_on_its_topics_as_its_broker_user(net, gateway, team, topic):
    data, res = confluent(net, gateway, login(team), "produce", "--topic", topic, "--prefix", team, "--count", 20)
    assert res.returncode == 0, describe(res)
    group = "%s.readers-%s" % (team, RUN_TAG)
    data, res = confluent(net, gateway, login(team), "consume", "--topic", topic, "--count", 20, "--group", group,
                          deadline=60)  # fmt: skip
    assert res.returncode == 0 and sorted(data["values"]) == values(team, 20), describe(res)


def test_the_broker_refuses_another_teams_topic_and_group_to_the_mapped_user(net, gateway):
    conf = login("team-a")
    data, res = confluent(net, gateway, conf, "produce", "--topic", B_TOPIC, "--prefix", "x", "--count", 3)
    assert res.returncode != 0 and data["delivered"] == 0, describe(res)
    assert data["errors"] and all("TOPIC_AUTHORIZATION_FAILED" in e for e in data["errors"]), describe(res)
    args = ("consume", "--topic", A_TOPIC, "--count", 1, "--group", "team-b.readers-%s" % RUN_TAG)
    data, res = confluent(net, gateway, conf, *args, deadline=20)
    assert res.returncode != 0, describe(res)
    assert any("GROUP_AUTHORIZATION_FAILED" in e for e in data.get("poll_errors", [])), describe(res)
    # The gateway refused nothing itself: it has no policy; the broker decided.
    assert [x for x in gateway.audit() if x.get("event") == "denial"] == [], gateway.audit()
    allowed = {x["principal"] for x in gateway.audit() if x.get("event") == "authentication"}
    assert "team-a" in allowed, gateway.audit()


def test_the_java_client_runs_transactions_as_its_teams_broker_user(net, gateway):
    conf = java_scram("team-b")
    own = JavaRun(KAFKA_VERSION, gateway.bootstrap, ["produce", "txn"], "team-b.java-" + RUN_TAG,
                  prefix=net.prefix(net.ns_client), config=conf)  # fmt: skip
    for scenario in ("produce", "txn"):
        assert own.failures(scenario) == [], own.detail(scenario)


def test_a_client_that_does_not_log_in_at_the_edge_gets_nothing(net, gateway):
    data, res = confluent(net, gateway, {}, "metadata", deadline=8)
    assert res.returncode != 0, describe(res)
    assert A_TOPIC not in res.stdout and B_TOPIC not in res.stdout, describe(res)
