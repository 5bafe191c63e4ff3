"""Apache Kafka itself (KRaft) in the cluster namespace: the primary broker of the real rings.

Jars come from ``scripts/kafka-fetch`` (pinned versions from Maven Central, cached).
Each node is one JVM in the cluster namespace of a ``netns.SeedNetwork``, on an
address of its own on the cluster net (``SeedNetwork.add_cluster_ip``), so every
broker is a distinct internal host, as in a Kubernetes StatefulSet. Layouts:

  * ``combined``: N nodes with process.roles=broker,controller (ids 1..N);
  * ``split``: 3 controllers (ids 101..103) and N brokers (ids 1..N), so that
    DescribeCluster's controller endpoints and DescribeQuorum have real answers.

Every node has a PLAINTEXT listener on 9092 (inter-broker, and what the suite's
own topic creation uses) and CONTROLLER on 9093. Optional listeners: SSL on
9094 (``tls=Pki``; mutual TLS required), and with ``sasl_users`` SASL_PLAINTEXT on 9096 (and
SASL_SSL on 9095 with ``tls``), each with PLAIN, SCRAM-SHA-256 and
SCRAM-SHA-512 (SCRAM credentials are written at format time, PLAIN ones in
the listener's JAAS line). ``hostnames`` makes brokers advertise
DNS names instead of IPs (written to /etc/netns/<ns>/hosts of the cluster and
edge namespaces only: the client namespace cannot resolve them).

``KafkaCluster.view(listener)`` is the ``realenv.Cluster`` of one listener
(bootstrap, advertised addresses), what a gateway is started against.

Readiness is polled (Metadata from inside the cluster namespace lists every
broker), never slept. Broker operations for fault tests: ``stop_node``,
``start_node``, ``restart_node``, ``add_broker``, ``unregister``,
``elect_leaders``, ``reassign``; topics through ``create_topic(s)``.

Run as a script inside a namespace (what the class does through ``ip netns exec``):
  kafkacluster.py wait --bootstrap H:P --brokers 1,2,3 --timeout S
  kafkacluster.py create-topics --bootstrap H:P NAME:PARTITIONS:RF ...
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

KAFKA_VERSION = "4.4.0"  # the newest Kafka Maven Central serves
KAFKA_OLD_VERSION = "3.9.2"  # the newest 3.9.x it serves
PLAIN_PORT = 9092
CONTROLLER_PORT = 9093
SSL_PORT = 9094
SASL_SSL_PORT = 9095
SASL_PLAIN_PORT = 9096
LISTENER_PORTS = {"PLAINTEXT": PLAIN_PORT, "SSL": SSL_PORT, "SASL_SSL": SASL_SSL_PORT, "SASL_PLAINTEXT": SASL_PLAIN_PORT}
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# JVM flags of every node. C1 only (TieredStopAtLevel=1): on 2 cores a broker
# listens after ~2.9 s instead of ~4.1 s (measured, 4.4.0, one combined node).
JVM_FLAGS = ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"]
LOG4J2 = """status = warn
appender.console.type = Console
appender.console.name = STDERR
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.console.ref = STDERR
"""


# ------------------------------------------------------------------ script side (inside a namespace)


def _metadata_brokers(host, port):
    import kprobe

    conn = kprobe.Conn(host, port, 5)
    try:
        return kprobe.metadata(conn, 12)["brokers"]
    finally:
        conn.close()


def _wait(bootstrap, brokers, timeout):
    """Poll Metadata v12 until it lists exactly `brokers`; print them; exit 1 on timeout."""
    host, _, port = bootstrap.rpartition(":")
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            got = _metadata_brokers(host, int(port))
            if sorted(b["id"] for b in got) == sorted(brokers):
                print(json.dumps(got))
                return 0
            last = got
        except (OSError, ValueError) as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            print("not ready after %.0f s: %s" % (timeout, last), file=sys.stderr)
            return 1
        time.sleep(0.2)


def _create_topics(bootstrap, specs, timeout):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = []
    for spec in specs:
        name, partitions, rf = spec.rsplit(":", 2)
        new.append(NewTopic(name, int(partitions), int(rf)))
    failed = []
    for name, fut in admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout).items():
        try:
            fut.result(timeout)
        except Exception as exc:  # noqa: BLE001 - reported, and the exit code says it failed
            failed.append("%s: %s" % (name, exc))
    # Wait until every partition has a leader in the metadata (CreateTopics
    # answers before the brokers learned of the topic).
    deadline = time.monotonic() + timeout
    names = [t.topic for t in new]
    while not failed:
        md = admin.list_topics(timeout=timeout)
        ready = all(
            n in md.topics and md.topics[n].partitions and all(p.leader >= 0 for p in md.topics[n].partitions.values())
            for n in names
        )
        if ready:
            break
        if time.monotonic() > deadline:
            failed.append("topics without leaders after %.0f s" % timeout)
        time.sleep(0.1)
    if failed:
        print("\n".join(failed), file=sys.stderr)
        return 1
    print(json.dumps(names))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--bootstrap", required=True)
    w.add_argument("--brokers", required=True)
    w.add_argument("--timeout", type=float, default=90)
    c = sub.add_parser("create-topics")
    c.add_argument("--bootstrap", required=True)
    c.add_argument("--timeout", type=float, default=30)
    c.add_argument("specs", nargs="+")
    args = parser.parse_args()
    if args.cmd == "wait":
        return _wait(args.bootstrap, [int(b) for b in args.brokers.split(",")], args.timeout)
    return _create_topics(args.bootstrap, args.specs, args.timeout)


if __name__ == "__main__":
    sys.exit(main())


# ------------------------------------------------------------------ test side

import shutil  # noqa: E402
import uuid  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import pytest  # noqa: E402

from realenv import PYTHON, REPO_ROOT, Cluster, ManagedProc, describe, require_tool, run  # noqa: E402

KAFKA_FETCH = os.path.join(REPO_ROOT, "scripts", "kafka-fetch")
SELF = os.path.abspath(__file__)


def kafka_libs(version):
    """The libs/ directory of a Kafka version (scripts/kafka-fetch: cached, or fetched now)."""
    res = run([KAFKA_FETCH, version], timeout=600)
    if res.returncode != 0:
        pytest.fail("scripts/kafka-fetch %s failed\n%s" % (version, describe(res)), pytrace=False)
    line = res.stdout.strip().splitlines()[-1]
    got, directory = line.split(" ", 1)
    assert got == version, line
    return os.path.join(directory, "libs")


def java_binary():
    """java, version 17 or newer (the broker's own requirement)."""
    java = require_tool("java")
    res = run([java, "-version"], timeout=30)
    text = res.stderr + res.stdout
    major = text.split('"')[1].split(".")[0] if '"' in text else ""
    if not major.isdigit() or int(major) < 17:
        pytest.fail("java 17+ needed, found: %s" % text.strip(), pytrace=False)
    return java


def log4j2_config(workdir):
    path = os.path.join(workdir, "log4j2-kafka.properties")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(LOG4J2)
    return path


class KafkaTools:
    """Kafka's own JVM programs (broker, storage tool, kafka-tools classes) of one version."""

    def __init__(self, version, workdir):
        self.version = version
        self.libs = kafka_libs(version)
        self.java = java_binary()
        self.log4j2 = log4j2_config(workdir)

    def command(self, main_class, args, heap="-Xmx256m", jvm=()):
        return (
            [self.java, "-Xms64m", heap, "-XX:TieredStopAtLevel=1", "-Dlog4j2.configurationFile=" + self.log4j2]
            + list(jvm)
            + ["-cp", os.path.join(self.libs, "*"), main_class]
            + [str(a) for a in args]
        )

    def run(self, main_class, args, prefix=(), timeout=120, input_text=None, check=False):
        """One tool run to completion (`prefix` puts it in a namespace)."""
        return run(list(prefix) + self.command(main_class, args), timeout=timeout, input_text=input_text, check=check)


class KafkaNode:
    """One KRaft node: its configuration, data directory and JVM."""

    def __init__(self, cluster, node_id, roles, ip, host):
        self.cluster = cluster
        self.node_id = node_id
        self.roles = roles  # "broker", "controller" or "broker,controller"
        self.ip = ip  # the address it binds
        self.host = host  # what it advertises (ip, or a DNS name)
        self.dir = os.path.join(cluster.dir, "node-%d" % node_id)
        self.config = os.path.join(self.dir, "server.properties")
        self.proc = None

    @property
    def is_broker(self):
        return "broker" in self.roles

    @property
    def is_controller(self):
        return "controller" in self.roles

    def properties(self):
        c = self.cluster
        listeners, advertised, protocols = [], [], ["CONTROLLER:PLAINTEXT"]
        if self.is_broker:
            for name in c.listener_names:
                port = LISTENER_PORTS[name]
                listeners.append("%s://%s:%d" % (name, self.ip, port))
                advertised.append("%s://%s:%d" % (name, self.host, port))
                protocols.append("%s:%s" % (name, name))
        if self.is_controller:
            listeners.append("CONTROLLER://%s:%d" % (self.ip, CONTROLLER_PORT))
            if not self.is_broker:
                protocols.append("PLAINTEXT:PLAINTEXT")
        props = {
            "process.roles": self.roles,
            "node.id": self.node_id,
            "listeners": ",".join(listeners),
            "listener.security.protocol.map": ",".join(protocols),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.quorum.voters": c.voters(),
            "log.dirs": os.path.join(self.dir, "data"),
            "num.partitions": 3,
            "default.replication.factor": min(3, len(c.broker_ids())),
            "min.insync.replicas": 1,
            "offsets.topic.replication.factor": min(3, len(c.broker_ids())),
            "offsets.topic.num.partitions": 6,
            "transaction.state.log.replication.factor": min(3, len(c.broker_ids())),
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 6,
            "share.coordinator.state.topic.replication.factor": min(3, len(c.broker_ids())),
            "share.coordinator.state.topic.min.isr": 1,
            "share.coordinator.state.topic.num.partitions": 6,
            "group.initial.rebalance.delay.ms": 0,
            "auto.create.topics.enable": "false",
            "num.network.threads": 2,
            "num.io.threads": 4,
            "log.segment.bytes": 16 * 1024 * 1024,
        }
        if advertised:
            props["advertised.listeners"] = ",".join(advertised)
        props.update(c.security_properties() if self.is_broker else {})
        props.update(c.extra)
        return props

    def write_config(self):
        os.makedirs(self.dir, exist_ok=True)
        with open(self.config, "w") as f:
            for k, v in self.properties().items():
                f.write("%s=%s\n" % (k, v))

    def format(self):
        c = self.cluster
        args = ["format", "-t", c.cluster_id, "-c", self.config]
        for feature in c.features:
            args += ["--feature", feature]
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            for user, password in c.sasl_users.items():
                args += ["--add-scram", "%s=[name=%s,password=%s]" % (mech, user, password)]
        c.tools.run("kafka.tools.StorageTool", args, timeout=120, check=True)

    def start(self):
        assert self.proc is None or not self.proc.alive(), "node %d already runs" % self.node_id
        c = self.cluster
        cmd = c.prefix + c.tools.command("kafka.Kafka", [self.config], heap=c.heap, jvm=JVM_FLAGS[2:])
        self.proc = ManagedProc("%s-%d" % (c.name, self.node_id), cmd, c.workdir)

    def stop(self, graceful=True, timeout=60):
        """SIGTERM (controlled shutdown) and wait, or SIGKILL."""
        if self.proc is None:
            return None
        import signal

        rc = self.proc.stop(signal.SIGTERM if graceful else signal.SIGKILL, grace=timeout)
        return rc

    def alive(self):
        return self.proc is not None and self.proc.alive()


class KafkaCluster:
    """A KRaft cluster of one Kafka version in the cluster namespace of `net`."""

    kind = "kafka"

    def __init__(
        self,
        net,
        workdir,
        name,
        version=KAFKA_VERSION,
        layout="combined",
        brokers=3,
        tls=None,
        sasl_users=None,
        hostnames=None,
        extra=None,
        features=(),
        heap="-Xmx512m",
    ):
        """`hostnames`: {node id: DNS name} the brokers advertise (resolved in cluster and edge ns only);
        `extra`: more server properties; `features`: "name=level" finalized at format time."""
        self.net = net
        self.workdir = workdir
        self.name = name
        self.version = version
        self.layout = layout
        self.dir = os.path.join(workdir, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.tools = KafkaTools(version, workdir)
        self.prefix = net.prefix(net.ns_cluster)
        self.tls = tls
        self.sasl_users = dict(sasl_users or {})
        self.listener_names = ["PLAINTEXT"] + (["SSL"] if tls else [])
        self.listener_names += (["SASL_PLAINTEXT"] + (["SASL_SSL"] if tls else [])) if sasl_users else []
        self.extra = dict(extra or {})
        self.features = list(features)
        self.heap = heap
        self.hostnames = dict(hostnames or {})
        self.cluster_id = self.tools.run("kafka.tools.StorageTool", ["random-uuid"], timeout=60, check=True).stdout.strip()
        self.nodes = {}
        if layout == "combined":
            for i in range(1, brokers + 1):
                self._add_node(i, "broker,controller")
        elif layout == "split":
            for i in (101, 102, 103):
                self._add_node(i, "controller")
            for i in range(1, brokers + 1):
                self._add_node(i, "broker")
        else:
            raise ValueError("layout %r" % layout)
        self.hosts_files = []
        if self.hostnames:
            from tlsenv import NetnsHosts

            entries = [(self.nodes[i].ip, [h]) for i, h in sorted(self.hostnames.items())]
            for ns in (net.ns_cluster, net.ns_edge):
                self.hosts_files.append(NetnsHosts(ns, entries).write())
        self.controller_ids = sorted(i for i, n in self.nodes.items() if n.is_controller)
        try:
            for node in self.nodes.values():
                node.write_config()
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                list(pool.map(lambda n: n.format(), self.nodes.values()))
            for node in self.nodes.values():
                node.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def _add_node(self, node_id, roles):
        ip = self.net.add_cluster_ip()
        self.nodes[node_id] = KafkaNode(self, node_id, roles, ip, self.hostnames.get(node_id, ip))

    # ---------------------------------------------------------- configuration

    def broker_ids(self):
        return sorted(i for i, n in self.nodes.items() if n.is_broker)

    def voters(self):
        return ",".join(
            "%d@%s:%d" % (i, n.ip, CONTROLLER_PORT) for i, n in sorted(self.nodes.items()) if n.is_controller
        )

    def security_properties(self):
        props = {}
        if self.tls:
            props.update(
                {
                    "ssl.keystore.type": "PEM",
                    "ssl.keystore.certificate.chain": _pem_value(self.tls.server_cert),
                    "ssl.keystore.key": _pem_value(self.tls.server_key),
                    "ssl.truststore.type": "PEM",
                    "ssl.truststore.certificates": _pem_value(self.tls.ca),
                    # The SSL listener requires mutual TLS; SASL_SSL authenticates by SASL.
                    "ssl.client.auth": "none",
                    "listener.name.ssl.ssl.client.auth": "required",
                }
            )
        if self.sasl_users:
            plain = " ".join('user_%s="%s"' % (u, p) for u, p in sorted(self.sasl_users.items()))
            props["sasl.enabled.mechanisms"] = ",".join(SASL_MECHANISMS)
            for listener in ("sasl_plaintext", "sasl_ssl"):
                stem = "listener.name.%s." % listener
                props[stem + "plain.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.plain.PlainLoginModule required %s;" % plain
                )
                for mech in ("scram-sha-256", "scram-sha-512"):
                    props[stem + mech + ".sasl.jaas.config"] = (
                        "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                    )
        return props

    # ---------------------------------------------------------- views

    def view(self, listener="PLAINTEXT"):
        """The realenv.Cluster of one listener: bootstrap and advertised (host, port) per broker."""
        port = LISTENER_PORTS[listener]
        brokers = [self.nodes[i] for i in self.broker_ids()]
        advertised = {n.node_id: (n.host, port) for n in brokers}
        view = KafkaView(["%s:%d" % (n.host, port) for n in brokers], list(advertised), advertised)
        view.cluster = self
        view.listener = listener
        return view

    def internal_bootstrap(self):
        """PLAINTEXT host:port list by IP (what the suite's own tools use in the cluster ns)."""
        return ",".join("%s:%d" % (self.nodes[i].ip, PLAIN_PORT) for i in self.broker_ids())

    def internal_strings(self):
        """Every address and name of this cluster that must never reach a client."""
        out = set()
        for n in self.nodes.values():
            out.add(n.ip)
            out.add(n.host)
            for port in list(LISTENER_PORTS.values()) + [CONTROLLER_PORT]:
                out.add("%s:%d" % (n.host, port))
        return sorted(out)

    # ---------------------------------------------------------- readiness

    def wait_ready(self, timeout=120, brokers=None):
        """Until Metadata (asked of each running broker in turn) lists exactly the running brokers."""
        want = brokers or [i for i in self.broker_ids() if self.nodes[i].alive()]
        start = time.monotonic()
        any_broker = self.nodes[want[0]]
        cmd = self.prefix + [PYTHON, SELF, "wait", "--bootstrap", "%s:%d" % (any_broker.ip, PLAIN_PORT)]
        cmd += ["--brokers", ",".join(map(str, want)), "--timeout", str(timeout)]
        res = run(cmd, timeout=timeout + 30)
        dead = [n.proc.excerpt(40) for n in self.nodes.values() if n.proc is not None and not n.alive()]
        if res.returncode != 0 or dead:
            raise AssertionError(
                "Kafka %s cluster %s not ready\n%s\n%s" % (self.version, self.name, describe(res), "\n".join(dead))
            )
        self.ready_seconds = time.monotonic() - start
        return json.loads(res.stdout.strip().splitlines()[-1])

    # ---------------------------------------------------------- topics

    def create_topic(self, name, partitions, replication=None):
        self.create_topics([(name, partitions, replication)])

    def create_topics(self, topics):
        """[(name, partitions, replication factor or None = min(3, brokers))], leaders elected on return."""
        rf_default = min(3, len(self.broker_ids()))
        specs = ["%s:%d:%d" % (n, p, r or rf_default) for n, p, r in topics]
        live = [i for i in self.broker_ids() if self.nodes[i].alive()]
        bootstrap = ",".join("%s:%d" % (self.nodes[i].ip, PLAIN_PORT) for i in live)
        res = run(self.prefix + [PYTHON, SELF, "create-topics", "--bootstrap", bootstrap] + specs, timeout=90)
        assert res.returncode == 0, "create topics %s\n%s" % (specs, describe(res))

    # ---------------------------------------------------------- tools

    def tool(self, main_class, args, timeout=120, check=True):
        """A kafka-tools class, run in the cluster ns against the PLAINTEXT listener by IP."""
        args = [a.replace("{bootstrap}", self.internal_bootstrap()) if isinstance(a, str) else a for a in args]
        return self.tools.run(main_class, args, prefix=self.prefix, timeout=timeout, check=check)

    # ---------------------------------------------------------- broker operations

    def stop_node(self, node_id, graceful=True):
        return self.nodes[node_id].stop(graceful=graceful)

    def start_node(self, node_id, wait=True):
        self.nodes[node_id].start()
        if wait and self.nodes[node_id].is_broker:
            self.wait_ready()

    def restart_node(self, node_id):
        self.stop_node(node_id)
        self.start_node(node_id)

    def add_broker(self, node_id):
        """A new broker-only node (its own internal IP), started and registered."""
        self._add_node(node_id, "broker")
        node = self.nodes[node_id]
        node.write_config()
        node.format()
        node.start()
        self.wait_ready()
        return node

    def unregister(self, node_id):
        """Stop a broker and unregister it from the cluster (kafka-cluster unregister)."""
        self.stop_node(node_id)
        self.tool("org.apache.kafka.tools.ClusterTool", ["unregister", "--bootstrap-server", "{bootstrap}", "--id", node_id])
        del self.nodes[node_id]
        self.wait_ready()

    def elect_leaders(self, topic=None, kind="preferred"):
        args = ["--bootstrap-server", "{bootstrap}", "--election-type", kind]
        args += ["--topic", topic, "--all-topic-partitions"] if topic else ["--all-topic-partitions"]
        # The tool exits non-zero when no election was needed; its output says which.
        return self.tool("org.apache.kafka.tools.LeaderElectionCommand", args, check=False)

    def reassign(self, assignments, timeout=120):
        """{(topic, partition): [replica ids]}: execute, then wait until --verify reports it complete."""
        plan = {
            "version": 1,
            "partitions": [{"topic": t, "partition": p, "replicas": r} for (t, p), r in sorted(assignments.items())],
        }
        path = os.path.join(self.dir, "reassign-%s.json" % uuid.uuid4().hex[:8])
        with open(path, "w") as f:
            json.dump(plan, f)
        cmd = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
        self.tool(cmd, ["--bootstrap-server", "{bootstrap}", "--reassignment-json-file", path, "--execute"])
        deadline = time.monotonic() + timeout
        while True:
            res = self.tool(cmd, ["--bootstrap-server", "{bootstrap}", "--reassignment-json-file", path, "--verify"])
            if "is still in progress" not in res.stdout:
                return res
            assert time.monotonic() < deadline, describe(res)
            time.sleep(0.5)

    def stop(self):
        """SIGKILL every node (the data is thrown away) and remove the hosts files."""
        for node in self.nodes.values():
            node.stop(graceful=False)
        for hosts in self.hosts_files:
            hosts.remove()

    def excerpt(self, lines=30):
        return "\n".join(n.proc.excerpt(lines) for n in self.nodes.values() if n.proc is not None)


class KafkaView(Cluster):
    """One listener of a KafkaCluster, as the realenv.Cluster the gateway and clients take."""

    kind = "kafka"

    def create_topic(self, name, partitions):
        self.cluster.create_topic(name, partitions)

    def create_topics(self, topics):
        """[(name, partitions)], in one Admin call."""
        self.cluster.create_topics([(name, partitions, None) for name, partitions in topics])

    def upstream_strings(self):
        return sorted(set(super().upstream_strings()) | set(self.cluster.internal_strings()))


def _pem_value(path):
    """A PEM file as one properties value (Kafka's PEM keystore settings take the text itself)."""
    with open(path) as f:
        text = f.read().strip()
    return text.replace("\n", "\\n\\\n")
