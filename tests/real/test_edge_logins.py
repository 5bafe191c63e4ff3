"""Every way a client logs in at the edge, with Apache Kafka 4.4.0 and real clients (issue 14).

The seed's shape, as in test_authz.py: a one-node Kafka 4.4.0 with a PLAINTEXT listener
only, in the cluster namespace; clients in the client namespace. Two kafka-edge gateways in
the edge namespace are the door, both with the two-team policy (edgeauth.py), so what a
client may reach shows which principal the gateway made of its login:
  * `sasl`: a SASL_PLAINTEXT listener offering PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and
    OAUTHBEARER. Tokens are JWTs an identity provider of the test signs (RS256, made with
    openssl); the gateway knows its public key by `kid`, requires issuer and audience, and
    takes the principal from `sub`.
  * `mtls`: a TLS listener that requires a certificate of the test CA; the principal is the
    CN of `OU=clients,CN=<user>`, by a rule written as Kafka's principal mapping rules.

Shown:
  * each mechanism logs in and its team produces and consumes its own topic, and is refused
    the other team's: confluent-kafka (librdkafka 2.16) with PLAIN, SCRAM-SHA-256,
    OAUTHBEARER and a client certificate; franz-go with PLAIN, SCRAM-SHA-256 and
    OAUTHBEARER; the Java client (kafka-clients 4.4.0) with OAUTHBEARER through its own
    token retriever reading a token file;
  * a wrong password, an expired token, a token signed by another key under the right
    `kid`, a token for another audience, an unsigned token, a certificate of another CA
    and a certificate of the right CA that no rule maps are each refused, as the client
    reports it; a SCRAM proof replayed on a new connection is refused;
  * none of those refusals costs team B anything: it produces and consumes after them;
  * with sessions of 4 s (KIP-368), the Java client logs in again on its connections while
    it produces and consumes for 20 s, and a connection that does not is closed;
  * every login, allowed or refused, is one audit line and one count of
    kafka_edge_authentications_total by mechanism and result.
"""

import json
import os
import random
import time

import pytest

from clientrun import GoRun, JavaRun
from edgeauth import kafka  # noqa: F401 (a fixture)
from edgeauth import PASSWORDS, EdgeGateway, IdentityProvider, confluent, credentials, java_scram, login, serve, values
from kafkacluster import KAFKA_VERSION
from realenv import PYTHON, describe, run, wait_for
from tlsenv import make_pki, net, tls_settings  # noqa: F401 (net: a fixture)

RUN_TAG = "%x%02x" % (os.getpid(), random.randrange(256))
A_TOPIC = "team-a.logins-%s" % RUN_TAG
B_TOPIC = "team-b.logins-%s" % RUN_TAG
TOPICS = [A_TOPIC, B_TOPIC]
ISSUER = "https://idp.test.invalid"
AUDIENCE = "kafka-edge"
KID = "idp-key-1"
SESSION_MS = 4000


@pytest.fixture(scope="module")
def idp(workdir):
    """The identity provider whose key the gateway trusts, and an impostor's."""
    directory = os.path.join(workdir, "idp-%s" % RUN_TAG)
    os.makedirs(directory, exist_ok=True)
    return IdentityProvider(directory, "trusted"), IdentityProvider(directory, "impostor")


@pytest.fixture(scope="module")
def pki(net, workdir):
    return make_pki(os.path.join(workdir, "logins-pki-%s" % RUN_TAG), [net.edge_client_ip], clients=["team-a"])


@pytest.fixture(scope="module")
def sasl_gateway(net, kafka, workdir, idp):
    users = credentials(os.path.join(workdir, "logins-users-%s.json" % RUN_TAG),
                        mechanisms=("SCRAM-SHA-256", "SCRAM-SHA-512"))  # fmt: skip
    oauth = '\n[client_auth.oauthbearer]\npublic_keys = [{ file = %s, kid = "%s" }]\nissuer = "%s"\n' % (
        json.dumps(idp[0].public), KID, ISSUER)
    oauth += 'audience = ["%s"]\nprincipal_claim = "sub"\n' % AUDIENCE
    client_auth = {"mechanisms": ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"], "credentials_file": users}
    gw = EdgeGateway("kafka-edge-logins", workdir, kafka, net.edge_client_ip, 9100, net.prefix(net.ns_edge),
                     client_auth, raw=oauth, port_base=20000, admin_port=9300)  # fmt: skip
    yield from serve(gw, net, kafka)


@pytest.fixture(scope="module")
def reauth_gateway(net, kafka, workdir):
    """SCRAM logins whose sessions last 4 s (KIP-368)."""
    users = credentials(os.path.join(workdir, "reauth-users-%s.json" % RUN_TAG),
                        mechanisms=("SCRAM-SHA-256", "SCRAM-SHA-512"))  # fmt: skip
    client_auth = {"mechanisms": ["SCRAM-SHA-256", "SCRAM-SHA-512"], "credentials_file": users,
                   "max_session_ms": SESSION_MS}  # fmt: skip
    gw = EdgeGateway("kafka-edge-reauth", workdir, kafka, net.edge_client_ip, 9102, net.prefix(net.ns_edge),
                     client_auth, port_base=22000, admin_port=9302)  # fmt: skip
    yield from serve(gw, net, kafka)


@pytest.fixture(scope="module")
def mtls_gateway(net, kafka, workdir, pki):
    tls = {"cert": pki.server_cert, "key": pki.server_key, "client_ca": pki.ca}
    rules = '\n[client_auth.mtls]\nrules = ["RULE:^OU=clients,CN=([^,]+)$/$1/"]\n'
    gw = EdgeGateway("kafka-edge-mtls", workdir, kafka, net.edge_client_ip, 9101, net.prefix(net.ns_edge), {},
                     tls=tls, raw=rules, port_base=21000, admin_port=9301)  # fmt: skip
    yield from serve(gw, net, kafka)


# ------------------------------------------------------------------ logins of each client


def claims(sub, **over):
    now = int(time.time())
    out = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 600}
    out.update(over)
    return out


def token_file(workdir, name, token):
    path = os.path.join(workdir, "token-%s-%s.jwt" % (name, RUN_TAG))
    with open(path, "w") as f:
        f.write(token + "\n")
    return path


def token_login(path):
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER", "oauth.token.file": path}


def round_trip(net, gw, conf, label):
    """Team A's login produces 10 records to its topic and reads them back, and is refused
    team B's topic: the principal is team A."""
    data, res = confluent(net, gw, conf, "produce", "--topic", A_TOPIC, "--prefix", label, "--count", 10)
    assert res.returncode == 0, describe(res)
    data, res = confluent(net, gw, conf, "consume", "--topic", A_TOPIC, "--count", 10 * 64, deadline=20)
    assert label + "-00009" in data.get("values", []), describe(res)
    assert sorted(v for v in data["values"] if v.startswith(label + "-")) == values(label, 10), describe(res)
    data, res = confluent(net, gw, conf, "produce", "--topic", B_TOPIC, "--prefix", "x" + label, "--count", 1)
    assert res.returncode != 0 and data.get("delivered") == 0, describe(res)
    assert data["errors"] and all("TOPIC_AUTHORIZATION_FAILED" in e for e in data["errors"]), describe(res)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_librdkafka_logs_in_with_a_password(net, sasl_gateway, mechanism):
    round_trip(net, sasl_gateway, login("team-a", mechanism), mechanism.lower())


def test_librdkafka_logs_in_with_a_token(net, sasl_gateway, idp, workdir):
    path = token_file(workdir, "librdkafka", idp[0].token(KID, claims("team-a")))
    round_trip(net, sasl_gateway, token_login(path), "oauth")


def test_librdkafka_logs_in_with_a_client_certificate(net, mtls_gateway, pki):
    conf = tls_settings(pki)
    conf["ssl.certificate.location"], conf["ssl.key.location"] = pki.client_of("team-a")
    data, res = confluent(net, mtls_gateway, conf, "metadata")
    assert res.returncode == 0, describe(res)
    assert sorted(data["topics"]) == [A_TOPIC], "metadata lists only team A's topics\n%s" % describe(res)
    round_trip(net, mtls_gateway, conf, "mtls")


def franz(net, gw, flags, topic_prefix):
    return GoRun("franz", gw.bootstrap, ["produce"], topic_prefix, prefix=net.prefix(net.ns_client), flags=flags)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "OAUTHBEARER"])
def test_franz_go_logs_in(net, sasl_gateway, idp, workdir, mechanism):
    if mechanism == "OAUTHBEARER":
        flags = ["-sasl", mechanism, "-token-file",
                 token_file(workdir, "franz", idp[0].token(KID, claims("team-a")))]  # fmt: skip
    else:
        flags = ["-sasl", mechanism, "-user", "team-a", "-password-file", secret_file(workdir, PASSWORDS["team-a"])]
    own = franz(net, sasl_gateway, flags, "team-a.franz-%s-%s" % (mechanism.lower(), RUN_TAG))
    assert own.failures("produce") == [], own.detail("produce")
    other = franz(net, sasl_gateway, flags, "team-b.franz-%s-%s" % (mechanism.lower(), RUN_TAG))
    failed = other.failures("produce")
    assert failed and "TOPIC_AUTHORIZATION_FAILED" in json.dumps(failed), other.detail("produce")


def secret_file(workdir, secret):
    path = os.path.join(workdir, "secret-%s-%06x" % (RUN_TAG, random.randrange(1 << 24)))
    with open(path, "w") as f:
        f.write(secret + "\n")
    return path


def java_token_login(path):
    config = {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "OAUTHBEARER",
        "sasl.login.callback.handler.class":
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
        "sasl.oauthbearer.token.endpoint.url": "file://" + path,
        "sasl.jaas.config": "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;",
    }  # fmt: skip
    # Kafka 4 reads token files only from URLs allowed by this system property.
    return config, {"org.apache.kafka.sasl.oauthbearer.allowed.urls": "file://" + path}


def test_the_java_client_logs_in_with_a_token(net, sasl_gateway, idp, workdir):
    config, props = java_token_login(token_file(workdir, "java", idp[0].token(KID, claims("team-a"))))
    prefix = net.prefix(net.ns_client)
    own = JavaRun(KAFKA_VERSION, sasl_gateway.bootstrap, ["produce", "group-classic"], "team-a.java-oauth-" + RUN_TAG,
                  prefix=prefix, config=config, properties=props)  # fmt: skip
    for scenario in ("produce", "group-classic"):
        assert own.failures(scenario) == [], own.detail(scenario)
    # A token the impostor signed under the trusted key's id: the Java client checks no
    # signature itself, so it is the gateway that refuses it.
    config, props = java_token_login(token_file(workdir, "java-forged", idp[1].token(KID, claims("team-a"))))
    forged = JavaRun(KAFKA_VERSION, sasl_gateway.bootstrap, ["produce"], "team-a.java-forged-" + RUN_TAG,
                     prefix=prefix, config=config, properties=props, timeout=200)  # fmt: skip
    failed = forged.failures("produce")
    assert failed and "SaslAuthenticationException" in json.dumps(failed), forged.detail("produce")


# ------------------------------------------------------------------ refusals


def assert_login_refused(net, gw, conf, what, says=("authentication",)):
    """The client got nothing, and (unless `says` is empty) its error says one of `says`."""
    data, res = confluent(net, gw, conf, "metadata", deadline=10)
    assert res.returncode != 0, "%s: logged in\n%s" % (what, describe(res))
    assert A_TOPIC not in res.stdout and B_TOPIC not in res.stdout, describe(res)
    text = (json.dumps(data) + (res.stderr or "")).lower()
    assert not says or any(s in text for s in says), "%s: not a login failure\n%s" % (what, describe(res))
    said = [line for line in (res.stderr or "").splitlines() if "|FAIL|" in line or "|AUTH" in line]
    return said[0].split("]: ", 1)[-1] if said else data.get("error")


def test_bad_logins_are_refused_and_cost_others_nothing(net, sasl_gateway, mtls_gateway, idp, pki, workdir):
    trusted, impostor = idp
    now = int(time.time())
    cases = [
        ("wrong PLAIN password", login("team-a", "PLAIN", "not-" + PASSWORDS["team-a"])),
        ("wrong SCRAM-SHA-256 password", login("team-a", "SCRAM-SHA-256", "not-" + PASSWORDS["team-a"])),
        ("SCRAM-SHA-256 as an unknown user", login("team-a", "SCRAM-SHA-256", None) | {
            "sasl.username": "team-c"}),
        ("forged token", token_login(token_file(workdir, "forged", impostor.token(KID, claims("team-a"))))),
        ("token for another audience", token_login(token_file(workdir, "audience", trusted.token(
            KID, claims("team-a", aud="another-service"))))),
        ("token of another issuer", token_login(token_file(workdir, "issuer", trusted.token(
            KID, claims("team-a", iss="https://elsewhere.invalid"))))),
        # librdkafka's own unsigned token ("alg": "none"), as a misconfigured client sends it.
        ("unsigned token", {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER",
                            "enable.sasl.oauthbearer.unsecure.jwt": "true",
                            "sasl.oauthbearer.config": "principal=team-a"}),
    ]  # fmt: skip
    seen = {}
    for what, conf in cases:
        seen[what] = assert_login_refused(net, sasl_gateway, conf, what)
    # librdkafka and the Java client will not send a token past its `exp`; franz-go does.
    expired = trusted.token(KID, claims("team-a", iat=now - 7200, exp=now - 3600))
    flags = ["-sasl", "OAUTHBEARER", "-token-file", token_file(workdir, "expired", expired)]
    late = franz(net, sasl_gateway, flags, "team-a.franz-expired-%s" % RUN_TAG)
    failed = late.failures("produce")
    assert failed and "SASL_AUTHENTICATION_FAILED" in json.dumps(failed), late.detail("produce")
    seen["expired token (franz-go)"] = failed[-1].get("error")

    other_ca = make_pki(os.path.join(workdir, "logins-other-pki-%s" % RUN_TAG), [net.edge_client_ip],
                        clients=["team-a"])  # fmt: skip
    conf = tls_settings(pki)
    conf["ssl.certificate.location"], conf["ssl.key.location"] = other_ca.client_of("team-a")
    # TLS 1.3: the client learns of it from the gateway's alert, after its side of the handshake.
    seen["certificate of another CA"] = assert_login_refused(net, mtls_gateway, conf, "certificate of another CA",
                                                             says=("tls alert", "tlsv1 alert"))  # fmt: skip
    # Signed by the right CA, but its subject is not OU=clients,CN=...: no rule maps it.
    conf = tls_settings(pki, client_cert=True)
    # The handshake completes (the CA signed it); the gateway then closes the connection,
    # which the client sees as a disconnect, and audits the refusal (last test).
    seen["certificate no rule maps"] = assert_login_refused(net, mtls_gateway, conf, "no rule maps", says=())

    # Team B meanwhile.
    conf = login("team-b")
    data, res = confluent(net, sasl_gateway, conf, "produce", "--topic", B_TOPIC, "--prefix", "b", "--count", 10)
    assert res.returncode == 0, describe(res)
    data, res = confluent(net, sasl_gateway, conf, "consume", "--topic", B_TOPIC, "--count", 10)
    assert res.returncode == 0 and sorted(data["values"]) == values("b", 10), describe(res)
    print(json.dumps(seen, indent=1))  # what each client reported: the closing note quotes it


# ------------------------------------------------------------------ a replayed SCRAM proof


def scram_exchange(net, gw):
    """Runs scram_replay.py in the client namespace: a SCRAM-SHA-256 login of team A done
    right, then its client-final message replayed on a new connection."""
    cmd = net.prefix(net.ns_client) + [PYTHON, os.path.join(os.path.dirname(__file__), "scram_replay.py"),
                                       gw.bootstrap, "team-a", PASSWORDS["team-a"]]  # fmt: skip
    res = run(cmd, timeout=60)
    lines = (res.stdout or "").strip().splitlines()
    return (json.loads(lines[-1]) if lines else {}), res


def test_a_replayed_scram_proof_is_refused(net, sasl_gateway):
    data, res = scram_exchange(net, sasl_gateway)
    assert res.returncode == 0, describe(res)
    assert data["first_login_error_code"] == 0, data
    assert data["replay_error_code"] == 58, data  # SASL_AUTHENTICATION_FAILED


# ------------------------------------------------------------------ sessions (KIP-368)


def test_clients_log_in_again_within_their_session_and_keep_their_connections(net, reauth_gateway):
    """The Java client produces and consumes for 20 s, five session lifetimes: it logs in
    again on the same connections, and nothing fails."""
    conf = java_scram("team-a")
    churn = JavaRun(KAFKA_VERSION, reauth_gateway.bootstrap, ["churn"], "team-a.java-reauth-" + RUN_TAG,
                    prefix=net.prefix(net.ns_client), config=conf, seconds=20)  # fmt: skip
    assert churn.failures("churn") == [], churn.detail("churn")
    per_connection = {}
    for line in reauth_gateway.audit():
        if line.get("event") == "authentication" and line["decision"] == "allow":
            per_connection[line["client"]] = per_connection.get(line["client"], 0) + 1
    again = {client: n for client, n in per_connection.items() if n >= 3}
    assert again, "no connection logged in again within its session: %s" % per_connection
    print("logins per connection: %s" % sorted(per_connection.values()))


def test_a_connection_that_outlives_its_session_is_closed(net, reauth_gateway):
    cmd = net.prefix(net.ns_client) + [PYTHON, os.path.join(os.path.dirname(__file__), "scram_replay.py"),
                                       "--outlive-session", reauth_gateway.bootstrap, "team-a",
                                       PASSWORDS["team-a"]]  # fmt: skip
    res = run(cmd, timeout=60)
    assert res.returncode == 0, describe(res)
    data = json.loads(res.stdout.strip().splitlines()[-1])
    assert 0 < data["session_lifetime_ms"] <= SESSION_MS, data
    assert data["after_the_session"] == "closed", data


# ------------------------------------------------------------------ audit and metrics


def test_logins_are_audited_and_counted(net, sasl_gateway, mtls_gateway):
    """Runs after the tests above, in file order."""

    def logins(gw):
        return [line for line in gw.audit() if line.get("event") == "authentication"]

    want = {("PLAIN", "allow"), ("PLAIN", "deny"), ("SCRAM-SHA-256", "allow"), ("SCRAM-SHA-256", "deny"),
            ("SCRAM-SHA-512", "allow"), ("OAUTHBEARER", "allow"), ("OAUTHBEARER", "deny")}  # fmt: skip
    wait_for(lambda: want <= {(x["mechanism"], x["decision"]) for x in logins(sasl_gateway)}, 10, 0.2)
    got = {(x["mechanism"], x["decision"]) for x in logins(sasl_gateway)}
    assert want <= got, "missing audit lines %s in %s" % (want - got, logins(sasl_gateway))
    for line in logins(sasl_gateway):
        assert line["client"].startswith(net.client_ip + ":"), line
        if line["decision"] == "allow":
            assert line["principal"] in ("team-a", "team-b"), line
    mtls = {(x["mechanism"], x["decision"], x.get("principal")) for x in logins(mtls_gateway)}
    assert ("mtls", "allow", "team-a") in mtls and ("mtls", "deny", None) in mtls, mtls

    for gw, needles in (
        (sasl_gateway, ['mechanism="OAUTHBEARER",result="failed"', 'mechanism="OAUTHBEARER",result="ok"',
                        'mechanism="PLAIN",result="failed"', 'mechanism="SCRAM-SHA-256",result="ok"']),
        (mtls_gateway, ['mechanism="mtls",result="ok"', 'mechanism="mtls",result="failed"']),
    ):  # fmt: skip
        status, metrics = gw.admin_get("/metrics")
        assert status == 200, metrics
        lines = [x for x in metrics.splitlines() if x.startswith("kafka_edge_authentications_total{")]
        for needle in needles:
            assert any(needle in x for x in lines), "%s not counted:\n%s" % (needle, "\n".join(lines))
