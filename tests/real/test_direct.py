"""Baseline: every client straight to every broker, without kafka-edge.

If one of these fails, the matching gateway test failing says nothing about
kafka-edge: the client/broker pair itself (or the environment) is broken.
They also prove the harness (launchers, clients, assertions) works.
"""

import pytest

from clients import CLIENTS, Client, make_values

# Debian's kcat (librdkafka 2.0.2) cannot talk to tansu at all (ApiVersions v3,
# see TESTING.md); that pair is not a gateway concern and is not tested.
COMBOS = [
    pytest.param(cluster, client, id="%s-%s" % (cluster, client))
    for cluster in ("mock", "tansu")
    for client in CLIENTS
    if not (cluster == "tansu" and client == "kcat-2.0.2")
]


@pytest.fixture
def cluster(request):
    return request.getfixturevalue("%s_cluster" % request.param)


@pytest.mark.parametrize("cluster,client_name", COMBOS, indirect=["cluster"])
def test_direct_metadata_produce_consume(cluster, client_name, kcats, topic_name):
    client = Client(client_name, kcats)
    bootstrap = cluster.bootstrap[0]

    md = client.metadata(bootstrap, cluster)
    assert md.ok, md.detail
    got = {(b["id"], b["host"], b["port"]) for b in md.data["brokers"]}
    want = {(n, h, p) for n, (h, p) in cluster.advertised.items()}
    assert got == want, md.detail

    cluster.create_topic(topic_name, 3)
    values = make_values("direct", 15)
    prod = client.produce(bootstrap, cluster, topic_name, "direct", len(values))
    assert prod.ok, prod.detail
    cons = client.consume(bootstrap, cluster, topic_name, len(values))
    assert cons.ok, cons.detail
    assert sorted(cons.data) == sorted(values), cons.detail
