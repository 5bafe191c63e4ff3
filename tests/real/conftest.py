"""Fixtures of the real-client suite (see tests/real/README.md).

Session-scoped: one librdkafka mock cluster (3 brokers, loopback), one tansu
broker (node id 111, loopback), and one kafka-edge in front of each, listening
on GATEWAY_IP (a loopback address distinct from the brokers' 127.0.0.1, so
that any upstream address leaking through the gateway is visible as text).
The namespace tests (test_seed_netns.py, test_tls.py's SNI and netns parts,
test_compat.py's matrix) start clusters and gateways of their own in network
namespaces (netns.py), with module-scoped fixtures.

Every process started here is stopped in the fixture's teardown; when a test
fails, the tail of each gateway's log is attached to the report.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from realenv import (  # noqa: E402
    RUNNING_GATEWAYS,
    Kcat,
    MockClusterProc,
    TansuProc,
    make_kcat_libdir,
    start_gateway,
    stop_gateway,
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for gw in list(RUNNING_GATEWAYS):
            report.sections.append(("kafka-edge log: %s" % gw.proc.name, gw.excerpt(60)))
    return report


def pytest_terminal_summary(terminalreporter):
    """Print the compatibility matrix when test_compat.py ran it."""
    module = sys.modules.get("test_compat")
    info = getattr(module, "RESULTS", {}).get("info") if module else None
    if info:
        import compat_matrix

        terminalreporter.section("compatibility matrix")
        terminalreporter.write_line(compat_matrix.render_long(info))


@pytest.fixture(autouse=True)
def _gateways_stay_alive():
    """A gateway that crashed during a test fails that test's teardown."""
    yield
    dead = [gw for gw in RUNNING_GATEWAYS if not gw.proc.alive()]
    if dead:
        pytest.fail("kafka-edge exited during the test:\n" + "\n".join(g.excerpt() for g in dead), pytrace=False)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("kafka-edge-real"))


@pytest.fixture(scope="session")
def kcats(workdir):
    """Both librdkafka generations of kcat: {"2.0.2": Kcat, "2.16": Kcat}."""
    return {"2.0.2": Kcat("2.0.2"), "2.16": Kcat("2.16", make_kcat_libdir(workdir))}


@pytest.fixture(scope="session")
def mock_cluster(workdir):
    cluster = MockClusterProc(workdir)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def tansu_cluster(workdir):
    cluster = TansuProc(workdir)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def mock_gateway(mock_cluster, workdir):
    gw = start_gateway(mock_cluster, workdir, "kafka-edge-mock")
    yield gw
    stop_gateway(gw)


@pytest.fixture(scope="session")
def tansu_gateway(tansu_cluster, workdir):
    gw = start_gateway(tansu_cluster, workdir, "kafka-edge-tansu")
    yield gw
    stop_gateway(gw)


@pytest.fixture
def topic_name(request):
    """A topic name unique to this test (and this run)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name).strip("-")[:80]
    return "t-%s-%x" % (base, os.getpid())
