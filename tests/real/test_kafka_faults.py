"""Faults on a real Kafka 4.4.0 cluster while traffic flows through kafka-edge (issue 11, part 4).

3 combined KRaft nodes in the cluster namespace, kafka-edge in the edge
namespace, and in the client namespace the Java client's churn scenario: an
idempotent acks=all producer sending for a while and a KIP-848 consumer group
member reading and committing. Meanwhile the cluster moves underneath:

  * a rolling restart of every node (controlled shutdown, start, ready);
  * the gateway itself restarted (SIGTERM: it drains, then starts again on
    its ports);
  * a partition reassignment (replica list rotated) and a preferred election;
  * a 4th broker added: the gateway opens its port, a partition moves onto
    it (so clients must reach it through the gateway);
  * that broker decommissioned: the partition moved off, the broker stopped
    and unregistered, and the gateway retires its port (`retire_after_ms`).

Then every acknowledged record is in the log exactly once (idempotence) and
reached the group member, and the capture of the client namespace holds no
internal address. The same churn runs straight against the brokers from the
cluster namespace at the same time, so a failure is attributed.
"""

import threading

import pytest

from clientrun import JavaRun
from kafkacluster import KAFKA_VERSION, KafkaCluster
from kafkaring import scan_capture
from netns import seed_network
from realenv import describe, stop_gateway, wait_for
from tlsenv import start_config_gateway

GATEWAY_PORT = 9092
PORT_BASE = 19000
CHURN_SECONDS = 100
TOPIC = "faults-churn-t"  # the churn scenario's topic for prefix "faults" (through kafka-edge)
DIRECT_TOPIC = "direct-churn-t"  # and for prefix "direct"
# A broker the cluster stops reporting has its port closed after this long. Short, so that
# the decommissioned broker's port closes within the run; a node restarting may drop out
# for longer, and is served again once reported.
RETIRE_AFTER_MS = 15000


@pytest.fixture(scope="module")
def net():
    with seed_network() as n:
        yield n


@pytest.fixture(scope="module")
def capture(net, workdir):
    cap = net.capture(workdir, "tcpdump-kafka-faults")
    try:
        yield cap
    finally:
        cap.close()


@pytest.fixture(scope="module")
def kafka(net, workdir):
    cluster = KafkaCluster(net, workdir, "kafka-faults", version=KAFKA_VERSION)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def gateway(net, kafka, capture, workdir):
    view = kafka.view()
    gw = start_config_gateway(
        "kafka-edge-faults",
        workdir,
        view.bootstrap,
        view.node_ids,
        net.edge_client_ip,
        GATEWAY_PORT,
        port_base=PORT_BASE,
        prefix=net.prefix(net.ns_edge),
        connect_check=net.connect_check(net.ns_client),
        extra={"brokers": {"retire_after_ms": RETIRE_AFTER_MS}, "upstream": {"metadata_refresh_ms": 1000}},
    )
    gw.cluster = view
    try:
        yield gw
    finally:
        stop_gateway(gw)


def replicas(kafka, topic):
    """{partition: [replica ids]} from TopicCommand --describe, run in the cluster namespace ({} before it exists)."""
    args = ["--bootstrap-server", "{bootstrap}", "--describe", "--topic", topic]
    res = kafka.tool("org.apache.kafka.tools.TopicCommand", args, check=False)
    out = {}
    for line in res.stdout.splitlines():
        fields = dict(f.split(": ", 1) for f in line.strip().split("\t") if ": " in f)
        if "Partition" in fields and "Replicas" in fields:
            out[int(fields["Partition"])] = [int(r) for r in fields["Replicas"].split(",")]
    return out


@pytest.fixture(scope="module")
def churn(net, kafka, gateway):
    """The Java churn run (through kafka-edge) and the log of the faults done meanwhile."""
    result = {}
    paths = {
        "gateway": (gateway.bootstrap, net.prefix(net.ns_client), "faults"),
        "direct": (kafka.internal_bootstrap(), net.prefix(net.ns_cluster), "direct"),
    }

    def churn_run(path):
        bootstrap, prefix, topic_prefix = paths[path]
        result[path] = JavaRun(KAFKA_VERSION, bootstrap, ["churn"], topic_prefix, prefix=prefix, seconds=CHURN_SECONDS,
                               timeout=CHURN_SECONDS + 300)  # fmt: skip

    threads = [threading.Thread(target=churn_run, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    faults = []
    try:
        # Both runs' topics first: a topic created while a node restarts can lack replicas.
        for topic in (TOPIC, DIRECT_TOPIC):
            assert wait_for(lambda: len(replicas(kafka, topic)) == 6, 90, 1), "%s never appeared" % topic
        for node in sorted(kafka.broker_ids()):
            kafka.restart_node(node)
            faults.append("restarted node %d" % node)
        check = net.connect_check(net.ns_client)
        gateway.restart(check)
        faults.append("gateway restarted")
        before = replicas(kafka, TOPIC)
        kafka.reassign({(TOPIC, 0): before[0][1:] + before[0][:1]})
        kafka.elect_leaders(TOPIC)
        faults.append("partition 0 reassigned %s -> %s, preferred leaders elected" % (before[0], replicas(kafka, TOPIC)[0]))
        kafka.add_broker(4)
        result["port_4_opened"] = wait_for(lambda: check(gateway.host, PORT_BASE + 4), 30, 0.5)
        kafka.reassign({(TOPIC, 1): [4] + before[1][1:]})
        kafka.elect_leaders(TOPIC)
        faults.append("broker 4 added; partition 1 on %s" % replicas(kafka, TOPIC)[1])
        kafka.reassign({(TOPIC, 1): before[1]})
        kafka.elect_leaders(TOPIC)
        kafka.unregister(4)
        faults.append("partition 1 back on %s; broker 4 stopped and unregistered" % replicas(kafka, TOPIC)[1])
        result["port_4_retired"] = wait_for(lambda: not check(gateway.host, PORT_BASE + 4), RETIRE_AFTER_MS / 1000 + 30, 0.5)
        faults.append("port %d retired: %s" % (PORT_BASE + 4, result["port_4_retired"]))
    finally:
        for thread in threads:
            thread.join(CHURN_SECONDS + 400)
    result["faults"] = faults
    return result


def test_faults_were_done_while_traffic_flowed(churn):
    for path in ("gateway", "direct"):
        run = churn[path]
        assert run.op("churn", "started") and run.op("churn", "produced"), run.detail()
    assert len(churn["faults"]) == 8, churn["faults"]


def test_new_broker_port_opens_on_the_gateway(churn, gateway):
    assert churn["port_4_opened"], "port %d for broker 4 never opened\n%s" % (PORT_BASE + 4, gateway.excerpt())


def test_decommissioned_broker_port_is_retired(churn, gateway):
    assert churn["port_4_retired"], "port %d of the decommissioned broker 4 stayed open\n%s" % (
        PORT_BASE + 4, gateway.excerpt(),
    )  # fmt: skip


@pytest.mark.parametrize("path", ["direct", "gateway"])
def test_every_acknowledged_record_once_in_the_log_and_consumed(churn, path):
    """Through kafka-edge, and (to attribute a failure) the same traffic straight to the brokers."""
    run = churn[path]
    failed = run.failures("churn")
    other = churn["direct" if path == "gateway" else "gateway"].failures("churn")
    assert not failed, "%s: faults %s; the other path %s\n%s" % (
        path, churn["faults"], "fails too: %s" % other if other else "passes", run.detail("churn"),
    )  # fmt: skip
    log = run.op("churn", "log_exactly_once")[0]
    print("%s: %s" % (path, [run.op("churn", op)[0] for op in ("produced", "group_consumed_all", "log_exactly_once")]))
    assert log["expected"] > 1000, log


def test_capture_contains_no_internal_address(net, kafka, gateway, capture, churn):
    scan_capture(capture, net, kafka, min_received=100000, gap=False)
