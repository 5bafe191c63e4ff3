"""The compatibility matrix (compat_matrix.py) as tests.

One module-scoped run drives every client (kcat with librdkafka 2.0.2 and
2.16, confluent-kafka, kafka-python, aiokafka, kafkajs) through kafka-edge in
front of the mock cluster and tansu, plus the direct runs that prove the
expected failures are not kafka-edge's, plus tests/real_rdkafka.rs through
cargo.  It runs in network namespaces (compat_matrix.namespace_env): brokers
on an internal address in the cluster ns (where the direct runs execute),
the two gateways in the edge ns, every run through kafka-edge in the client
ns, which reaches only the edge, and a tcpdump capture there from before the
gateways start until the matrix is done.

Then one test per cell, one per client/broker for upstream addresses in
what the client printed, one for the capture (nothing the clients received
or sent during the whole run names an internal address or upstream
host:port), one for the rdkafka rows, and one that docs/compatibility.md's
generated section is what this run measured.
"""

import json
import os

import pytest

import compat_matrix

RESULTS = {}  # filled by the fixture; printed by conftest's terminal summary


@pytest.fixture(scope="module")
def compat_setup(workdir):
    """(Env, SeedNetwork, Capture): clusters, gateways and capture in namespaces, for this module."""
    with compat_matrix.namespace_env(workdir) as setup:
        yield setup


@pytest.fixture(scope="module")
def compat(compat_setup, workdir):
    env, _, _ = compat_setup
    info = compat_matrix.run_matrix(env)
    path = os.path.join(workdir, "compat-results.json")
    with open(path, "w") as f:
        json.dump(info, f, indent=1)
    RESULTS["info"], RESULTS["json"] = info, path
    return info


def cell_of(info, client, broker, op):
    return next(c for c in info["cells"] if (c["client"], c["broker"], c["op"]) == (client, broker, op))


@pytest.mark.parametrize(
    "client,broker,op", compat_matrix.cells(), ids=["%s-%s-%s" % c for c in compat_matrix.cells()]
)
def test_cell(compat, client, broker, op, workdir):
    c = cell_of(compat, client, broker, op)
    assert c["verdict"] in ("pass", "external", "n/a"), "%s x %s x %s: %s\n(driver logs: %s/compat-%s-%s-*.log)" % (
        client,
        broker,
        op,
        c["detail"],
        workdir,
        client,
        broker,
    )


@pytest.mark.parametrize(
    "client,broker", [(c, b) for c in compat_matrix.CLIENT_NAMES for b in compat_matrix.BROKERS]
)
def test_no_upstream_address_in_client_output(compat, client, broker):
    """Nothing a client printed through kafka-edge (logs, metadata, errors) names an upstream address."""
    found = compat["leaks"].get("%s-%s-gateway" % (client, broker))
    assert not found, "upstream address(es) %s in the output of %s through kafka-edge" % (found, client)


def test_client_capture_of_the_whole_run_names_no_internal_address(compat, compat_setup):
    """Every byte the client ns exchanged during the matrix: only client and edge, no upstream address.

    Positive control: plenty of payload reached the clients, including the
    gateways' advertised address; tcpdump lost no packet.
    """
    env, net, capture = compat_setup
    compat["capture"] = compat_matrix.capture_scan(env, net, capture)


def test_rdkafka_crate_rows(compat):
    """tests/real_rdkafka.rs, run by the matrix: every test passed (and some ran)."""
    rows = compat["rdkafka"]
    assert rows and all(result == "ok" for _, result in rows), rows


def test_docs_matrix_is_what_this_run_measured(compat):
    """docs/compatibility.md's compat-matrix section is regenerated from this run's results, so it cannot go stale."""
    want = compat_matrix.render(compat)
    got = compat_matrix.docs_section()
    assert got is not None, "docs/compatibility.md lacks the %s / %s markers" % (
        compat_matrix.START_MARK,
        compat_matrix.END_MARK,
    )
    assert got == want, (
        "docs/compatibility.md's compatibility matrix differs from this run. Regenerate it with\n"
        "  python3 tests/real/compat_matrix.py --from %s --write-docs\n"
        "(or without --from, to run the matrix again). This run renders:\n%s" % (RESULTS.get("json"), want)
    )
