"""Real clients through kafka-edge, against both real broker implementations.

For each cluster (librdkafka mock: 3 brokers, ids 1..3; tansu: 1 broker,
id 111) and each client variant (clients.CLIENTS):
  * metadata lists exactly the cluster's node ids, each at
    <advertised-host>:<broker-port-base + id>, and no upstream address;
  * produce (acks=all, idempotence) and consume back the exact values;
  * a consumer group consumes and commits, and the commit reads back.
Plus a raw-protocol probe of every Metadata / FindCoordinator /
DescribeCluster version through the gateway, and a check that the two
kcat generations really load different librdkafkas.
"""

import json

import pytest

from clients import CLIENTS, Client, make_values
from realenv import KPROBE, PYTHON, describe, kclient, run

# Debian's kcat (librdkafka 2.0.2) cannot talk to tansu at all (ApiVersions v3,
# TESTING.md; test_direct shows the same pair fails without a gateway too).
COMBOS = [
    pytest.param(cluster, client, id="%s-%s" % (cluster, client))
    for cluster in ("mock", "tansu")
    for client in CLIENTS
    if not (cluster == "tansu" and client == "kcat-2.0.2")
]


@pytest.fixture
def gateway(request):
    """The session's kafka-edge in front of the cluster named by the parameter."""
    return request.getfixturevalue("%s_gateway" % request.param)


def assert_gateway_brokers(brokers, gw, context):
    """Exactly the cluster's node ids, each at advertised-host:base+id."""
    expected = gw.expected_brokers()
    got = sorted(({"id": b["id"], "host": b["host"], "port": b["port"]} for b in brokers), key=lambda b: b["id"])
    assert got == expected, "brokers seen through kafka-edge %s\n  got:      %s\n  expected: %s\n%s" % (
        gw.bootstrap,
        got,
        expected,
        context,
    )


def assert_no_upstream_text(text, gw, context):
    """No upstream host:port, and (loopback set-up) no upstream host at all."""
    for hp in gw.cluster.upstream_strings():
        assert hp not in text, "upstream address %s leaked to the client\n%s" % (hp, context)
    upstream_hosts = {h for h, _ in gw.cluster.advertised.values()}
    for host in upstream_hosts - {gw.host}:
        assert host not in text, "upstream host %s leaked to the client\n%s" % (host, context)


# ---------------------------------------------------------------------------


@pytest.mark.parametrize("gateway,client_name", COMBOS, indirect=["gateway"])
def test_metadata_lists_only_gateway_addresses(gateway, client_name, kcats):
    client = Client(client_name, kcats)
    md = client.metadata(gateway.bootstrap, gateway.cluster)
    assert md.ok, md.detail
    assert_gateway_brokers(md.data["brokers"], gateway, md.detail)
    assert_no_upstream_text(md.data["raw"], gateway, md.detail)
    if client_name == "confluent":
        # confluent-kafka also asked for DescribeCluster (librdkafka 2.16's
        # describe_cluster); its brokers and controller must be rewritten too.
        assert "describe_cluster" in md.data, md.detail
        assert_gateway_brokers(md.data["describe_cluster"], gateway, md.detail)
        ctrl = md.data.get("describe_cluster_controller")
        if ctrl is not None:
            assert ctrl["host"] == gateway.host and ctrl["port"] == gateway.port_base + ctrl["id"], md.detail


@pytest.mark.parametrize("gateway,client_name", COMBOS, indirect=["gateway"])
def test_produce_and_consume_exact_values(gateway, client_name, kcats, topic_name):
    client = Client(client_name, kcats)
    gateway.cluster.create_topic(topic_name, 3)
    values = make_values("pc-%s" % client_name, 30)

    prod = client.produce(gateway.bootstrap, gateway.cluster, topic_name, "pc-%s" % client_name, len(values))
    assert prod.ok, "produce through kafka-edge failed\n%s" % prod.detail

    cons = client.consume(gateway.bootstrap, gateway.cluster, topic_name, len(values))
    assert cons.ok, "consume through kafka-edge failed\n%s" % cons.detail
    assert sorted(cons.data) == sorted(values), cons.detail


@pytest.mark.parametrize("gateway,client_name", COMBOS, indirect=["gateway"])
def test_consumer_group_consumes_and_commits(gateway, client_name, kcats, topic_name):
    client = Client(client_name, kcats)
    gateway.cluster.create_topic(topic_name, 3)
    values = make_values("grp-%s" % client_name, 12)
    prod = client.produce(gateway.bootstrap, gateway.cluster, topic_name, "grp-%s" % client_name, len(values))
    assert prod.ok, prod.detail

    group = "g-" + topic_name
    res = client.consume_group(gateway.bootstrap, gateway.cluster, topic_name, group, len(values))
    assert res.ok, "group consume through kafka-edge failed\n%s" % res.detail
    assert sorted(res.data["values"]) == sorted(values), res.detail
    # A fresh topic holding exactly len(values) messages: committed offsets
    # (next offset to read, per partition) must add up to that count.
    assert res.data["committed_total"] == len(values), res.detail


# ---------------------------------------------------------------------------


def probe(bootstrap, group="probe-group"):
    res = run([PYTHON, KPROBE, "--bootstrap", bootstrap, "--group", group], timeout=120)
    assert res.returncode == 0, describe(res)
    return json.loads(res.stdout), res


@pytest.mark.parametrize("gateway", ["mock", "tansu"], indirect=True)
def test_every_api_version_is_rewritten(gateway):
    """Metadata v0..max, FindCoordinator v0..max, DescribeCluster: raw probe.

    Each version that works straight against the cluster must work through
    kafka-edge (bootstrap and every broker listener) and carry only gateway
    addresses.
    """
    direct, _ = probe(gateway.cluster.bootstrap[0])
    endpoints = [gateway.bootstrap] + gateway.broker_endpoints()
    for endpoint in endpoints:
        got, res = probe(endpoint)
        context = "endpoint %s\n%s" % (endpoint, json.dumps(got, indent=1, sort_keys=True)[:6000])
        for api in ("metadata", "find_coordinator", "describe_cluster"):
            for version, want in direct[api].items():
                if "error" in want:
                    continue  # the cluster itself cannot answer this version
                assert version in got[api], "%s v%s not offered through kafka-edge\n%s" % (api, version, context)
                answer = got[api][version]
                assert "error" not in answer, "%s v%s failed through kafka-edge: %s\n%s" % (
                    api,
                    version,
                    answer["error"],
                    context,
                )
                where = "%s v%s via %s" % (api, version, endpoint)
                assert answer.get("error_code", 0) == want.get("error_code", 0), where + "\n" + context
                if api in ("metadata", "describe_cluster"):
                    assert_gateway_brokers(answer["brokers"], gateway, where + "\n" + context)
                else:
                    for coord in answer["coordinators"]:
                        assert coord["error_code"] == 0, where + "\n" + context
                        assert (coord["host"], coord["port"]) == (
                            gateway.host,
                            gateway.port_base + coord["id"],
                        ), "coordinator not rewritten in %s: %s\n%s" % (where, coord, context)
        assert_no_upstream_text(res.stdout, gateway, context)


@pytest.mark.parametrize("generation,expected", [("2.0.2", "2.0.2"), ("2.16", "2.16.")])
def test_kcat_generations_load_expected_librdkafka(kcats, generation, expected):
    """The kcat-2.16 variant must really run on the wheel's librdkafka."""
    version = kcats[generation].runtime_version()
    assert version is not None and version.startswith(expected), "kcat %s reports librdkafka %r" % (
        generation,
        version,
    )


# Large, incompressible batches with every codec: responses far larger than
# any single read, streamed through the gateway in pieces.  kafka-python has
# only gzip without extra packages; kcat is checked with one codec.
BIG_COMBOS = [
    pytest.param(cluster, client, codec, id="%s-%s-%s" % (cluster, client, codec))
    for cluster in ("mock", "tansu")
    for client, codec in [("confluent", c) for c in ("none", "gzip", "snappy", "lz4", "zstd")]
    + [("kcat-2.16", "zstd"), ("kafkapython", "gzip")]
]


@pytest.mark.parametrize("gateway,client_name,codec", BIG_COMBOS, indirect=["gateway"])
def test_large_compressed_batches_round_trip(gateway, client_name, codec, kcats, topic_name):
    client = Client(client_name, kcats)
    gateway.cluster.create_topic(topic_name, 3)
    count, size = 40, 64 * 1024  # 2.5 MiB in all, well under the mock's retention cap
    values = make_values("big", count, size)
    prod = client.produce(
        gateway.bootstrap, gateway.cluster, topic_name, "big", count, value_size=size, compression=codec
    )
    assert prod.ok, "produce of %d x %d bytes (%s) through kafka-edge failed\n%s" % (count, size, codec, prod.detail)
    cons = client.consume(gateway.bootstrap, gateway.cluster, topic_name, count)
    assert cons.ok, "consume through kafka-edge failed\n%s" % cons.detail[-3000:]
    got = sorted(cons.data)
    assert len(got) == count and got == sorted(values), "values differ (%d received)" % len(got)


# tansu 0.6.0 offers no EndTxn (ApiVersions), so transactions run on the mock only.
@pytest.mark.parametrize("gateway", ["mock"], indirect=True)
def test_transactional_produce(gateway, topic_name):
    """Transactions through kafka-edge: FindCoordinator(key_type=transaction),
    InitProducerId, AddPartitionsToTxn, EndTxn (abort, then commit).

    The mock does not filter aborted records from Fetch (checked without
    kafka-edge: a read_committed consumer gets them too), so the consumer
    check is: every committed value arrives, and nothing else than the
    committed and the aborted values.
    """
    cluster = gateway.cluster
    cluster.create_topic(topic_name, 3)
    data, res = kclient(
        "confluent",
        gateway.bootstrap,
        cluster,
        "produce",
        "--topic",
        topic_name,
        "--prefix",
        "txn",
        "--count",
        10,
        "--transactional-id",
        "txn-" + topic_name,
        "--abort-first",
    )
    assert res.returncode == 0, "transactional produce through kafka-edge failed\n%s" % describe(res)
    assert data["aborted"] == 10 and data["delivered"] == 10, describe(res)
    committed, aborted = make_values("txn", 10), make_values("ABORTED", 10)
    cons = Client("confluent", {}).consume(gateway.bootstrap, cluster, topic_name, 20)
    assert cons.ok, cons.detail
    assert set(committed) <= set(cons.data) <= set(committed) | set(aborted), cons.detail
