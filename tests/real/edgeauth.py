"""What the edge-identity tests (test_authz.py, test_edge_logins.py) share: the seed's
cluster (fixture `kafka`), two teams and their passwords, the
gateway's credential file written by its own CLI, the two-team policy, the gateway with
logins and an audit log, confluent-kafka runs from the client namespace, and tokens of a
test identity provider.

Tokens are JWTs signed RS256 with openssl (not with anything of the gateway's), so the
gateway checks signatures it did not make.
"""

import base64
import json
import os
import random
import subprocess

import pytest

from kafkacluster import KAFKA_VERSION, KafkaCluster
from realenv import PYTHON, describe, gateway_binary, register_gateway, run, stop_gateway
from tlsenv import TLSCLIENT, ConfigGateway

TEAMS = ("team-a", "team-b")
PASSWORDS = {team: "pw-%s-%06x" % (team, random.randrange(1 << 24)) for team in TEAMS}


@pytest.fixture(scope="module")
def kafka(request, net, workdir):
    """The seed's cluster: one Kafka 4.4.0 node with a PLAINTEXT listener only, holding the
    test module's TOPICS (3 partitions each)."""
    name = "kafka-%s" % request.module.__name__.replace("_", "-")
    cluster = KafkaCluster(net, workdir, name, version=KAFKA_VERSION, brokers=1)
    try:
        cluster.create_topics([(topic, 3, None) for topic in request.module.TOPICS])
        yield cluster.view("PLAINTEXT")
    finally:
        cluster.stop()


def serve(gw, net, kafka):
    """A fixture's body: `gw` in service once clients reach it from the client namespace."""
    register_gateway(gw, connect_check=net.connect_check(net.ns_client))
    gw.cluster = kafka
    try:
        yield gw
    finally:
        stop_gateway(gw)


def confluent(net, gw, conf, *args, deadline=30):
    """One kclient.py operation of confluent-kafka with `conf` (tlsclient.py), from the client
    namespace: (its JSON result or {}, the finished process)."""
    cmd = net.prefix(net.ns_client) + [PYTHON, TLSCLIENT]
    for key, value in sorted(conf.items()):
        cmd += ["-X", "%s=%s" % (key, value)]
    cmd += ["confluent", "--bootstrap", gw.bootstrap, "--deadline", str(deadline)] + [str(a) for a in args]
    res = run(cmd, timeout=deadline + 60)
    lines = (res.stdout or "").strip().splitlines()
    try:
        return (json.loads(lines[-1]) if lines else {}), res
    except ValueError:
        return {}, res


def values(prefix, count):
    """The values kclient.py's produce sends."""
    return ["%s-%05d" % (prefix, i) for i in range(count)]


def credentials(path, mechanisms=("SCRAM-SHA-512",)):
    """The gateway's credential file at `path`, every team with every mechanism, written by
    `kafka-edge credentials add` (passwords on stdin, as its help says)."""
    for user, password in PASSWORDS.items():
        for mechanism in mechanisms:
            cmd = [gateway_binary(), "credentials", "add", "--file", path, "--user", user, "--mechanism", mechanism]
            res = run(cmd, timeout=60, input_text=password + "\n")
            assert res.returncode == 0, describe(res)
    return path


def login(team, mechanism="SCRAM-SHA-512", password=None):
    """librdkafka's settings for logging in as `team` at the gateway (`password`: a wrong one)."""
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism, "sasl.username": team,
            "sasl.password": PASSWORDS[team] if password is None else password}  # fmt: skip


def java_scram(team, mechanism="SCRAM-SHA-512"):
    """The Java client's settings for logging in as `team` at the gateway."""
    jaas = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";' % (
        team, PASSWORDS[team])
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism, "sasl.jaas.config": jaas}


def policy():
    """Each team reads, writes, describes and creates its own topics, groups and
    transactional ids (`<team>.*`); nothing else is granted."""
    return "".join(
        """
[[policy.grants]]
principals = ["{team}"]
operations = ["read", "write", "describe", "create"]
topics = ["{team}.*"]
groups = ["{team}.*"]
transactional_ids = ["{team}.*"]
""".format(team=team)
        for team in TEAMS
    )


def read_audit(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class IdentityProvider:
    """An RSA signing key (openssl genpkey) and its public key file, as an IdP publishes it."""

    def __init__(self, directory, name):
        self.key = os.path.join(directory, "%s.key" % name)
        self.public = os.path.join(directory, "%s.pub.pem" % name)
        for cmd in (
            ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.key],
            ["openssl", "pkey", "-in", self.key, "-pubout", "-out", self.public],
        ):
            res = run(cmd, timeout=60)
            assert res.returncode == 0, describe(res)

    def token(self, kid, claims):
        """A JWT of `claims`, signed RS256 with this key, its header naming `kid`."""
        head = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
        body = _b64url(json.dumps(claims).encode())
        signing_input = ("%s.%s" % (head, body)).encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input,
                             capture_output=True, check=True, timeout=30).stdout  # fmt: skip
        return "%s.%s" % (signing_input.decode(), _b64url(sig))


class EdgeGateway(ConfigGateway):
    """kafka-edge in front of `view` with [client_auth] as given, the two-team policy (unless
    `with_policy` is false) and an audit log of its own."""

    def __init__(self, name, workdir, view, listen_ip, listen_port, prefix, client_auth, tls=None, raw="",
                 with_policy=True, **kwargs):  # fmt: skip
        self.audit_path = os.path.join(workdir, "%s-audit.log" % name)
        super().__init__(
            name, workdir, view.bootstrap, view.node_ids, listen_ip, listen_port, tls=tls, prefix=prefix,
            extra={"client_auth": client_auth, "audit": {"file": self.audit_path}},
            raw=raw + (policy() if with_policy else ""), **kwargs,
        )  # fmt: skip

    def audit(self):
        return read_audit(self.audit_path)
