"""What the real-Kafka test modules share: Java runs through kafka-edge and directly, known gateway gaps.

A ring is one KafkaCluster in the cluster namespace, one kafka-edge in the
edge namespace, and clients in the client namespace (netns.py). Each client
run (clientrun.py: Java, Go) happens twice, through kafka-edge from the client namespace and
directly from the cluster namespace, so a failure is attributed: one that
passes directly and fails through the gateway is the gateway's.
"""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from clientrun import client_run
from kafkacluster import KAFKA_VERSION

JAVA_NEW = "java-" + KAFKA_VERSION

# Failures of kafka-edge itself, known and not yet fixed (issue 11, the gateway side): a
# test that meets one must fail exactly this way (the pattern must match its failure
# message) and is then reported as xfail; once it passes, the test fails until the entry is
# removed here.
KNOWN_GATEWAY_GAPS = {
}


def expect_known_gap(key, check):
    """Run `check`; when `key` is a known gateway gap, it must fail matching its pattern (then xfail)."""
    pattern = KNOWN_GATEWAY_GAPS.get(key)
    if pattern is None:
        check()
        return
    try:
        check()
    except AssertionError as exc:
        if not re.search(pattern, str(exc)):
            raise
        pytest.xfail("known gateway gap %r: %s" % (key, str(exc).splitlines()[0][:300]))
    pytest.fail("known gateway gap %r no longer fails: remove it from KNOWN_GATEWAY_GAPS" % (key,))


def client_runs(net, cluster, gateway, plan, tag):
    """{(client, "gateway" | "direct"): ClientRun} for plan {client: scenarios} (clientrun.CLIENTS), all in parallel."""
    jobs = {}
    for client, scenarios in plan.items():
        stem = "%s-%s" % (tag, client.replace(".", ""))
        jobs[(client, "gateway")] = dict(
            bootstrap=gateway.bootstrap, prefix=net.prefix(net.ns_client), topic_prefix=stem + "gw", scenarios=scenarios
        )
        jobs[(client, "direct")] = dict(
            bootstrap=cluster.internal_bootstrap(),
            prefix=net.prefix(net.ns_cluster),
            topic_prefix=stem + "direct",
            scenarios=scenarios,
        )
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {key: pool.submit(client_run, key[0], **job) for key, job in jobs.items()}
        return {key: f.result() for key, f in futures.items()}


def assert_direct(runs, client, scenario):
    """Baseline: the scenario passes straight against the brokers (cluster namespace)."""
    direct = runs[(client, "direct")]
    failed = direct.failures(scenario)
    assert not failed, "fails directly, not the gateway's: %s\n%s" % (failed, direct.detail(scenario))


def assert_through_gateway(runs, client, scenario, gap_key=None):
    """The scenario passes through kafka-edge; a failure says whether it also fails directly."""
    gw, direct = runs[(client, "gateway")], runs[(client, "direct")]
    gw_failed, direct_failed = gw.failures(scenario), direct.failures(scenario)
    where = "gateway only (passes directly)" if not direct_failed else "also directly: %s" % direct_failed

    def check():
        assert not gw_failed, "fails through kafka-edge, %s: %s\n%s" % (where, gw_failed, gw.detail(scenario))

    expect_known_gap(gap_key, check)


def assert_only_gateway_brokers(runs, gateway):
    """Every client's describe_cluster through kafka-edge lists exactly the gateway's broker addresses."""
    expected = ["%d@%s:%d" % (b["id"], b["host"], b["port"]) for b in gateway.expected_brokers()]
    for (client, path), run in runs.items():
        if path != "gateway" or not run.op("admin", "describe_cluster"):
            continue
        described = run.op("admin", "describe_cluster")[0]
        assert described["nodes"] == expected, run.detail("admin")
        if client.startswith("java-"):  # the others print the controller's id only
            assert described["controller"] in expected, run.detail("admin")


def assert_nothing_internal_printed(runs, needles, gap_needles=(), gap=True):
    """No needle in any line a client printed through kafka-edge; `gap_needles` under the member-hosts
    gap when `gap` (the runs described KIP-848 or share groups through the gateway)."""
    for (client, path), run in runs.items():
        if path != "gateway":
            continue
        for needle in needles:
            hits = [line for line in run.result.stdout.splitlines() if needle in line]
            assert not hits, "%r in what %s printed:\n%s" % (needle, client, "\n".join(hits))

    def check():
        for (client, path), run in runs.items():
            for needle in gap_needles if path == "gateway" else ():
                hits = [line for line in run.result.stdout.splitlines() if needle in line]
                assert not hits, "%r in what %s printed:\n%s" % (needle, client, "\n".join(hits))

    expect_known_gap("member-hosts" if gap else None, check)


class BrokersOnly:
    """A SeedNetwork as leak_scan sees it, without the edge's cluster-side address (the member-hosts gap)."""

    def __init__(self, net):
        self.client_ip, self.edge_client_ip = net.client_ip, net.edge_client_ip
        self._ips = [ip for ip in net.internal_ips() if ip != net.edge_cluster_ip]

    def internal_ips(self):
        return self._ips


def scan_capture(capture, net, cluster, min_received, gap=True):
    """The leak scan: no broker address or name at all; the edge's cluster-side one under the
    member-hosts gap when `gap`."""
    from netns import leak_scan

    forbidden = [s for s in cluster.view().upstream_strings() if net.edge_cluster_ip not in s]
    scan = leak_scan(
        capture, BrokersOnly(net), forbidden=forbidden, must_receive=[net.edge_client_ip], min_received=min_received
    )
    expect_known_gap("member-hosts" if gap else None, lambda: leak_scan(capture, net, min_received=min_received))
    return scan
