#!/usr/bin/env python3
"""The compatibility matrix: every client x every broker x every operation.

Each client library runs the scenario of compat_spec.py (compat_client.py for
kcat and the Python clients, kafkajs/compat_kafkajs.js for kafkajs) through
kafka-edge in front of Apache Kafka 4.4.0 (3 KRaft nodes) and 3.9.2 (one
node), librdkafka's mock cluster (3 brokers) and tansu (node 111).  A cell
is one of:

  pass      the operation worked through kafka-edge (and every address the
            client was given is a gateway address);
  external  it cannot work for a reason outside kafka-edge: the client fails
            with the measured reason through kafka-edge, and fails the same
            way straight against the broker (that direct run is part of the
            check, every time);
  n/a       the client has no such API;
  FAIL      anything else (the test suite fails).

It runs in three network namespaces (netns.SeedNetwork, see namespace_env):
the brokers on an internal address in "cluster", one kafka-edge per broker
in "edge" (advertising its client-side address), and every run through
kafka-edge in "client", which reaches only the edge; the direct runs go from
"cluster".  Besides checking what each client printed for upstream
addresses, a tcpdump capture in "client" records everything the clients
exchanged during the whole run, and no internal address or upstream
host:port may appear in any byte of it (capture_scan).  So it needs root,
like the rest of tests/real.

The rdkafka crate (librdkafka 2.12 inside `cargo test`) is covered by
tests/real_rdkafka.rs; its tests are run here and recorded as rows (their
clusters and gateways are their own, on loopback).

    python3 tests/real/compat_matrix.py                  # run, print the matrix (as root)
    python3 tests/real/compat_matrix.py --write-docs     # run, then regenerate docs/compatibility.md's matrix
    python3 tests/real/compat_matrix.py --from results.json --write-docs

The pytest suite (test_compat.py) runs the same matrix, fails on any FAIL
cell or leak, and fails when docs/compatibility.md's generated section differs
from what the run produced.
"""

import argparse
import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from compat_spec import (  # noqa: E402
    COUNT,
    GROUP_TIMING,
    OPERATION_NAMES,
    OPERATIONS,
    TOPIC_OF,
    TOPICS,
    DEFAULT_OP_DEADLINE,
    OP_DEADLINE,
    deadline_of,
)

REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
DOCS = os.path.join(REPO_ROOT, "docs", "compatibility.md")
START_MARK = "<!-- compat-matrix:start -->"
END_MARK = "<!-- compat-matrix:end -->"
PYTHON = sys.executable
COMPAT_CLIENT = os.path.join(HERE, "compat_client.py")
KAFKAJS_DIR = os.path.join(HERE, "kafkajs")
KAFKAJS_DRIVER = os.path.join(KAFKAJS_DIR, "compat_kafkajs.js")

BROKERS = ["kafka", "kafka39", "mock", "tansu"]
BROKER_HEADER = {"kafka": "Kafka 4.4", "kafka39": "Kafka 3.9", "mock": "mock", "tansu": "tansu"}

# (name, driver, column header)
CLIENTS = [
    ("kcat-2.0.2", "kcat", "kcat (librdkafka 2.0.2)"),
    ("kcat-2.16", "kcat", "kcat (librdkafka 2.16)"),
    ("confluent", "confluent", "confluent-kafka"),
    ("kafka-python", "kafkapython", "kafka-python"),
    ("aiokafka", "aiokafka", "aiokafka"),
    ("kafkajs", "kafkajs", "kafkajs"),
]
CLIENT_NAMES = [c for c, _, _ in CLIENTS]
DRIVER = {c: d for c, d, _ in CLIENTS}
HEADER = {c: h for c, _, h in CLIENTS}

KCAT_NO = "kcat has no transactional producer and no admin API (its -L is the metadata row)"
NOT_APPLICABLE = {
    (client, op): KCAT_NO
    for client in ("kcat-2.0.2", "kcat-2.16")
    for op in ("txn-commit-abort", "txn-read-committed", "admin-describe-cluster", "admin-create-topic",
               "admin-describe-configs")
}


class Reason:
    """A measured cause outside kafka-edge, and how each client reports it."""

    def __init__(self, key, text, patterns):
        self.key, self.text, self.patterns = key, text, patterns

    def matches(self, client, error):
        pattern = self.patterns.get(client) or self.patterns.get("*")
        return bool(pattern and error and re.search(pattern, error))


MOCK_NO_CREATE_TOPICS = Reason(
    "mock-no-create-topics",
    "the librdkafka mock has no CreateTopics API",
    {
        "confluent": r"Topic Admin API \(KIP-4\) not supported by broker",
        "kafka-python": r"KafkaConnectionError|IncompatibleBrokerVersion",
        "aiokafka": r"CreateTopicsRequest cannot be used if the API version is unknown",
        "kafkajs": r"does not support the requested API version",
    },
)
MOCK_NO_DESCRIBE_CONFIGS = Reason(
    "mock-no-describe-configs",
    "the librdkafka mock has no DescribeConfigs API",
    {
        "confluent": r"DescribeConfigs \(KIP-133\) not supported by broker",
        "kafka-python": r"KafkaConnectionError|IncompatibleBrokerVersion",
        "aiokafka": r"DescribeConfigs|IncompatibleBrokerVersion|KafkaConnectionError",
        "kafkajs": r"does not support the requested API version",
    },
)
MOCK_NO_ABORT_FILTER = Reason(
    "mock-read-committed",
    "the librdkafka mock returns aborted records to a read_committed consumer (no aborted-transaction list in Fetch)",
    {"*": r"read_committed consumer received \d+ aborted records"},
)
TANSU_NO_END_TXN = Reason(
    "tansu-no-endtxn",
    "tansu 0.6.0 has no EndTxn API, so no transactions",
    {
        "confluent": r"EndTxnRequest \(KIP-98\) not supported by broker",
        "kafka-python": r"does not support the 'EndTxnRequest'",
    },
)
TANSU_OLD_INIT_PRODUCER_ID = Reason(
    "tansu-initproducerid-v0",
    "tansu 0.6.0 answers InitProducerId v0-v2 (no ProducerId/ProducerEpoch fields) with UNKNOWN_SERVER_ERROR; "
    "aiokafka 0.14 sends v0, kafkajs 2.2.4 v0-v1",
    {
        "aiokafka": r"UnknownError: \[Error -1\]",
        "kafkajs": r"The server experienced an unexpected error when processing the request",
    },
)
TANSU_NO_TXN_TO_READ = Reason(
    "tansu-no-txn-to-read",
    "nothing to read: the transactions of the row above cannot run on tansu 0.6.0",
    {"*": r"not run: txn-commit-abort failed: .*(EndTxn|UnknownError|unexpected error)"},
)


KAFKAJS_LZ4_DEPENDENT_BLOCKS = Reason(
    "kafkajs-lz4js-kafka",
    "kafkajs's LZ4 codec (lz4js 0.2.0) writes frames of dependent blocks, which Apache Kafka refuses "
    "(\"Dependent block stream is unsupported\" in the broker's log; UNKNOWN_SERVER_ERROR to the client)",
    {"kafkajs": r"KafkaJSProtocolError: The server experienced an unexpected error when processing the request"},
)

KCAT_202_TANSU = Reason(
    "kcat-2.0.2-tansu",
    "librdkafka 2.0.2 cannot read tansu 0.6.0's answer to its ApiVersions v3 request (\"Read underflow\"), so "
    "Debian's kcat cannot use tansu at all",
    # kcat -q prints only the consequence ("Failed to query metadata ... Broker transport failure").
    {"*": r"ApiVersionRequest failed: Local: Read underflow|Failed to query metadata .*Broker transport failure"},
)


def external_reason(client, broker, op):
    """The Reason a cell is expected to fail for, or None (expected to pass)."""
    if client == "kcat-2.0.2" and broker == "tansu":
        return KCAT_202_TANSU
    if broker in ("kafka", "kafka39") and client == "kafkajs" and op == "compress-lz4":
        return KAFKAJS_LZ4_DEPENDENT_BLOCKS
    if broker == "mock":
        if op == "admin-create-topic":
            return MOCK_NO_CREATE_TOPICS
        if op == "admin-describe-configs":
            return MOCK_NO_DESCRIBE_CONFIGS
        if op == "txn-read-committed":
            return MOCK_NO_ABORT_FILTER
    if broker == "tansu":
        if op == "txn-commit-abort":
            return TANSU_OLD_INIT_PRODUCER_ID if client in ("aiokafka", "kafkajs") else TANSU_NO_END_TXN
        if op == "txn-read-committed":
            return TANSU_NO_TXN_TO_READ
        if op == "produce-idempotent" and client in ("aiokafka", "kafkajs"):
            return TANSU_OLD_INIT_PRODUCER_ID
    return None


def cells():
    """Every (client, broker, op) of the matrix, in order."""
    return [(c, b, op) for c in CLIENT_NAMES for b in BROKERS for op in OPERATION_NAMES]


# ------------------------------------------------------------------ running


class Env:
    """What a matrix run needs: clusters, gateways (by broker), a work dir,
    and the directory holding the librdkafka 2.16 for kcat-2.16.

    gateway_prefix runs the drivers that go through kafka-edge (in the
    namespace setup: `ip netns exec <client ns>`, which reaches only the
    edge); direct_prefix runs the "direct" and "diagnosis" drivers, which go
    straight to the brokers (there: the cluster ns).  internal lists further
    addresses no client output through kafka-edge may name (the edge's
    cluster-side address), besides each cluster's own.
    """

    def __init__(self, clusters, gateways, workdir, kcat_libdir, gateway_prefix=(), direct_prefix=(), internal=()):
        self.clusters, self.gateways = clusters, gateways
        self.workdir, self.kcat_libdir = workdir, kcat_libdir
        self.gateway_prefix, self.direct_prefix = list(gateway_prefix), list(direct_prefix)
        self.internal = list(internal)


def driver_command(client, bootstrap, broker, tag, ops, env):
    timing = ",".join(str(x) for x in GROUP_TIMING[broker])
    if client == "kafkajs":
        node = shutil.which("node")
        if node is None:
            raise AssertionError("node not found on PATH (install it: see .ci/run)")
        deadlines = {"deadlines": OP_DEADLINE, "defaultDeadline": DEFAULT_OP_DEADLINE}
        return [node, KAFKAJS_DRIVER, "--bootstrap", bootstrap, "--tag", tag, "--ops", ",".join(ops),
                "--count", str(COUNT), "--group-timing", timing, "--deadlines", json.dumps(deadlines)]
    cmd = [PYTHON, COMPAT_CLIENT, DRIVER[client], "--bootstrap", bootstrap, "--tag", tag, "--ops", ",".join(ops),
           "--group-timing", timing]
    if client == "kafka-python" and broker == "mock":
        cmd += ["--api-version", "2.3"]  # TESTING.md: its ApiVersions v3+ probe fails against the mock
    if client == "kcat-2.16":
        cmd += ["--kcat-libdir", env.kcat_libdir]
    return cmd


class Run:
    """One driver process: a client against one broker, through kafka-edge or direct."""

    def __init__(self, client, broker, via, ops):
        self.client, self.broker, self.via, self.ops = client, broker, via, ops
        self.results, self.stdout, self.stderr, self.returncode, self.seconds = {}, "", "", None, 0.0

    @property
    def name(self):
        return "%s-%s-%s" % (self.client, self.broker, self.via)

    def execute(self, env, run_id):
        tag = "cx%s-%s" % (run_id, self.name)
        cluster = env.clusters[self.broker]
        topics = [
            ("%s.%s" % (tag, op), partitions)
            for op, partitions in TOPICS.items()
            if op in self.ops or any(TOPIC_OF.get(o) == op for o in self.ops)
        ]
        if hasattr(cluster, "create_topics"):  # Apache Kafka: one Admin call for all of them
            cluster.create_topics(topics)
        else:
            for name, partitions in topics:
                cluster.create_topic(name, partitions)
        if self.via in ("gateway", "second"):
            bootstrap, prefix = env.gateways[self.broker].bootstrap, env.gateway_prefix
        else:
            bootstrap, prefix = cluster.bootstrap[0], env.direct_prefix
        cmd = prefix + driver_command(self.client, bootstrap, self.broker, tag, self.ops, env)
        timeout = sum(deadline_of(op) + 10 for op in self.ops) + 30
        t0 = time.monotonic()
        from realenv import _die_with_parent

        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=HERE, start_new_session=True, preexec_fn=_die_with_parent)
        try:
            self.stdout, self.stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            self.stdout, self.stderr = proc.communicate()
            self.stderr += "\n[compat_matrix: driver killed after %d s]" % timeout
        self.returncode = proc.returncode
        self.seconds = time.monotonic() - t0
        for line in self.stdout.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("op") in self.ops:
                self.results[rec["op"]] = rec
        for op in self.ops:
            self.results.setdefault(
                op, {"op": op, "ok": False, "error": "no result (driver rc=%s): %s" % (
                    self.returncode, self.stderr.strip()[-300:])}
            )
        with open(os.path.join(env.workdir, "compat-%s.log" % self.name), "w") as f:
            f.write("$ %s\n--- stdout ---\n%s\n--- stderr ---\n%s\n" % (" ".join(cmd), self.stdout, self.stderr))
        return self


def plan():
    """Gateway runs for every client x broker; direct runs for the expected externals."""
    runs = []
    for client in CLIENT_NAMES:
        for broker in BROKERS:
            ops = [op for op in OPERATION_NAMES if (client, op) not in NOT_APPLICABLE]
            runs.append(Run(client, broker, "gateway", ops))
            direct = [op for op in ops if external_reason(client, broker, op)]
            if direct:
                # txn-read-committed needs its txn-commit-abort before it.
                if "txn-read-committed" in direct and "txn-commit-abort" not in direct:
                    direct.insert(direct.index("txn-read-committed"), "txn-commit-abort")
                # consume-beginning and describe-configs read produce-acksall's topic.
                runs.append(Run(client, broker, "direct", [op for op in ops if op in direct]))
    return runs


def check_brokers(data, gw, what):
    """Brokers reported through kafka-edge: exactly node ids at advertised-host:base+id."""
    expected = sorted((b["id"], b["host"], b["port"]) for b in gw.expected_brokers())
    got = sorted((b["id"], b["host"], b["port"]) for b in data.get("brokers") or [])
    if got != expected:
        return "%s: brokers %s, expected %s" % (what, got, expected)
    ctrl = data.get("controller")
    if ctrl is not None and (ctrl["host"], ctrl["port"]) != (gw.host, gw.port_base + ctrl["id"]):
        return "%s: controller %s is not a gateway address" % (what, ctrl)
    cid = data.get("controller_id", ctrl and ctrl["id"])
    if cid is not None and cid not in gw.cluster.node_ids:
        return "%s: controller id %s is no broker" % (what, cid)
    return None


def leak_findings(run, gw, internal=()):
    """Upstream addresses (and `internal` ones) in anything a client printed through kafka-edge."""
    text = run.stdout + run.stderr
    found = [hp for hp in gw.cluster.upstream_strings() if hp in text]
    hosts = ({h for h, _ in gw.cluster.advertised.values()} | set(internal)) - {gw.host}
    found += [h for h in sorted(hosts) if h in text]
    return found


def judge(client, broker, op, gw_run, direct_run, gw):
    """(verdict, detail) of one cell."""
    if (client, op) in NOT_APPLICABLE:
        return "n/a", NOT_APPLICABLE[(client, op)]
    res = gw_run.results[op]
    reason = external_reason(client, broker, op)
    if reason is None:
        if not res["ok"]:
            return "FAIL", "through kafka-edge: %s" % res.get("error")
        if op in ("metadata", "admin-describe-cluster"):
            problem = check_brokers(res.get("data") or {}, gw, op)
            if problem:
                return "FAIL", problem
        return "pass", ""
    # Expected to fail for `reason`, through kafka-edge and directly alike.
    if res["ok"]:
        return "FAIL", "expected to fail (%s) but passed through kafka-edge: stale expectation" % reason.text
    if not reason.matches(client, res.get("error")):
        return "FAIL", "through kafka-edge it failed otherwise than %s: %s" % (reason.key, res.get("error"))
    d = direct_run.results.get(op) if direct_run else None
    if d is None:
        return "FAIL", "no direct run for an expected external failure"
    if d["ok"]:
        return "FAIL", "fails through kafka-edge (%s) but works without it" % res.get("error")
    if not reason.matches(client, d.get("error")):
        return "FAIL", "without kafka-edge it failed otherwise than %s: %s" % (reason.key, d.get("error"))
    return "external", reason.key


def run_rdkafka_tests(workdir, timeout=900):
    """tests/real_rdkafka.rs through cargo: [(test name, "ok"|"FAILED"|...)], raw output."""
    cargo = shutil.which("cargo") or os.path.expanduser("~/.cargo/bin/cargo")
    env = dict(os.environ)
    env.setdefault("KAFKA_EDGE_BIN", os.path.join(REPO_ROOT, "target/debug/kafka-edge"))
    try:
        res = subprocess.run([cargo, "test", "--test", "real_rdkafka", "--", "--test-threads", "1"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=timeout, env=env)
        out, rc = res.stdout + res.stderr, res.returncode
    except (OSError, subprocess.TimeoutExpired) as exc:
        out, rc = "cargo test --test real_rdkafka: %r" % exc, -1
    with open(os.path.join(workdir, "compat-rdkafka.log"), "w") as f:
        f.write(out)
    rows = re.findall(r"^test (\S+) \.\.\. (ok|FAILED|ignored)$", out, re.M)
    if not rows:
        rows = [("cargo test --test real_rdkafka", "FAILED (rc=%s, no test ran)" % rc)]
    return rows


def versions(env):
    """Client and broker versions, as the installed software reports them."""
    out = {}
    for client in CLIENT_NAMES:
        if client == "kafkajs":
            cmd = [shutil.which("node") or "node", KAFKAJS_DRIVER, "--versions"]
        else:
            cmd = [PYTHON, COMPAT_CLIENT, DRIVER[client], "--versions"]
            if client == "kcat-2.16":
                cmd += ["--kcat-libdir", env.kcat_libdir]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=HERE)
            out[client] = json.loads(res.stdout.strip().splitlines()[-1])
        except Exception as exc:  # reported as a version, and the docs check catches it
            out[client] = {"error": repr(exc)}
    tansu = shutil.which("tansu") or os.path.expanduser("~/.cargo/bin/tansu")
    try:
        out["tansu"] = subprocess.run([tansu, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError as exc:
        out["tansu"] = repr(exc)
    out["mock"] = "librdkafka %s (confluent-kafka wheel)" % out.get("confluent", {}).get("librdkafka", "?")
    for broker in ("kafka", "kafka39"):
        out[broker] = env.clusters[broker].cluster.version
    lock = open(os.path.join(REPO_ROOT, "Cargo.lock")).read()
    m = re.search(r'name = "rdkafka"\nversion = "([^"]+)"', lock)
    s = re.search(r'name = "rdkafka-sys"\nversion = "[^"+]+\+([^"]+)"', lock)
    out["rdkafka"] = {"rdkafka": m.group(1) if m else "?", "librdkafka": s.group(1) if s else "?"}
    return out


def run_matrix(env, workers=4, with_rdkafka=True):
    """Run everything; returns a JSON-able dict (see render())."""
    run_id = "%x" % (os.getpid() % 0xFFFF)
    t0 = time.monotonic()
    info = {"versions": versions(env)}
    runs = plan()
    # Longest first, so that the slow runs overlap.
    order = sorted(runs, key=lambda r: -sum(deadline_of(op) for op in r.ops))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda r: r.execute(env, run_id), order))
    by_key = {(r.client, r.broker, r.via): r for r in runs}
    # A cell expected to pass that failed: run it without kafka-edge too, so
    # that the report says whether kafka-edge is what breaks it, and through
    # kafka-edge a second time beside that run.  The first runs overlap four
    # drivers and three clusters on two cores; the mock's 3-second group
    # timing then loses a rebalance now and again, through kafka-edge or not.
    # A cell passes on its second attempt only, and the detail says so.
    diagnose = []
    for r in runs:
        if r.via != "gateway":
            continue
        ops = [op for op in r.ops if not r.results[op]["ok"] and external_reason(r.client, r.broker, op) is None]
        if ops:
            for op in list(ops):
                need = TOPIC_OF.get(op)
                if need and need not in ops and need in r.ops:
                    ops.insert(0, need)
            diagnose.append(Run(r.client, r.broker, "diagnosis", [op for op in r.ops if op in ops]))
            diagnose.append(Run(r.client, r.broker, "second", [op for op in r.ops if op in ops]))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda r: r.execute(env, run_id), diagnose))
    diagnosis = {(r.client, r.broker): r for r in diagnose if r.via == "diagnosis"}
    second = {(r.client, r.broker): r for r in diagnose if r.via == "second"}
    table = []
    for client, broker, op in cells():
        gw_run = by_key[(client, broker, "gateway")]
        direct_run = by_key.get((client, broker, "direct"))
        verdict, detail = judge(client, broker, op, gw_run, direct_run, env.gateways[broker])
        diag = diagnosis.get((client, broker))
        if verdict == "FAIL" and diag and op in diag.results:
            d = diag.results[op]
            detail += " || without kafka-edge: %s" % ("it works" if d["ok"] else "it fails too: %s" % d.get("error"))
        again = second.get((client, broker))
        if verdict == "FAIL" and again and op in again.results:
            verdict2, detail2 = judge(client, broker, op, again, direct_run, env.gateways[broker])
            if verdict2 == "pass":
                verdict, detail = "pass", "passed on the second attempt; the first: %s" % detail
                info.setdefault("second_attempts", []).append("%s x %s x %s: %s" % (client, broker, op, detail))
            else:
                detail += " || second attempt: %s" % detail2
        res = gw_run.results.get(op, {})
        table.append({"client": client, "broker": broker, "op": op, "verdict": verdict, "detail": detail,
                      "error": res.get("error"), "seconds": res.get("seconds"),
                      "direct_error": (direct_run.results.get(op) or {}).get("error") if direct_run else None})
    leaks = {}
    for r in runs + diagnose:
        if r.via in ("gateway", "second"):
            found = leak_findings(r, env.gateways[r.broker], env.internal)
            if found:
                leaks.setdefault("%s-%s-gateway" % (r.client, r.broker), []).extend(found)
    info.update(
        cells=table,
        leaks=leaks,
        runs={r.name: {"seconds": round(r.seconds, 1), "rc": r.returncode} for r in runs},
        rdkafka=run_rdkafka_tests(env.workdir) if with_rdkafka else [],
        seconds=round(time.monotonic() - t0, 1),
    )
    return info


# ------------------------------------------------------------------ rendering

REASONS = {
    r.key: r
    for r in (
        KCAT_202_TANSU, KAFKAJS_LZ4_DEPENDENT_BLOCKS, MOCK_NO_CREATE_TOPICS, MOCK_NO_DESCRIBE_CONFIGS,
        MOCK_NO_ABORT_FILTER, TANSU_NO_END_TXN, TANSU_OLD_INIT_PRODUCER_ID, TANSU_NO_TXN_TO_READ,
    )
}  # fmt: skip


def render(info):
    """The generated section of docs/compatibility.md (Markdown), a pure function of the run's results."""
    v = info["versions"]
    cell = {(c["client"], c["broker"], c["op"]): c for c in info["cells"]}
    notes = []

    def mark(c):
        if c["verdict"] == "pass":
            return "✅"
        if c["verdict"] == "n/a":
            return "–"
        if c["verdict"] == "external":
            key = c["detail"]
            if key not in notes:
                notes.append(key)
            return "⛔%d" % (notes.index(key) + 1)
        return "❌"

    lines = [
        "Generated by `python3 tests/real/compat_matrix.py --write-docs` from a run of the",
        "compatibility suite (`tests/real/test_compat.py`, part of `scripts/test`), which fails when",
        "this section differs from what it measured. Every client runs the same scenario",
        "(`tests/real/compat_spec.py`) through kafka-edge, against each broker.",
        "",
        "| software | version |",
        "|---|---|",
        "| kcat | %s (Debian), on librdkafka %s and on librdkafka %s |" % (
            v["kcat-2.0.2"].get("kcat", "?"), v["kcat-2.0.2"].get("librdkafka", "?"), v["kcat-2.16"].get(
                "librdkafka", "?")),
        "| confluent-kafka (Python) | %s, librdkafka %s |" % (v["confluent"].get("confluent-kafka", "?"),
                                                             v["confluent"].get("librdkafka", "?")),
        "| kafka-python | %s (pinned to `api_version=(2, 3)` against the mock) |" % v["kafka-python"].get(
            "kafka-python", "?"),
        "| aiokafka | %s |" % v["aiokafka"].get("aiokafka", "?"),
        "| kafkajs (Node.js) | %s (snappy, lz4, zstd through pure-JS codecs) |" % v["kafkajs"].get("kafkajs", "?"),
        "| rdkafka (Rust crate) | %s, librdkafka %s |" % (v["rdkafka"]["rdkafka"], v["rdkafka"]["librdkafka"]),
        "| broker: Apache Kafka | %s, 3 KRaft nodes (broker and controller, ids 1-3) |" % v["kafka"],
        "| broker: Apache Kafka | %s, one KRaft node (broker and controller, id 1) |" % v["kafka39"],
        "| broker: librdkafka mock cluster | %s, 3 brokers (ids 1-3) |" % v["mock"],
        "| broker: tansu | %s, one broker (id 111), in-memory storage |" % v["tansu"],
        "",
        "Each cell: **%s**. ✅ works through kafka-edge (and every broker address the" % " / ".join(
            BROKER_HEADER[b] for b in BROKERS),
        "client saw was a gateway address); ⛔n does not work for the numbered reason outside",
        "kafka-edge, and the suite checks every run that it fails the same way without kafka-edge;",
        "– the client has no such API; ❌ a failure (the suite fails).",
        "",
        "| operation | " + " | ".join(HEADER[c] for c in CLIENT_NAMES) + " |",
        "|---|" + "---|" * len(CLIENT_NAMES),
    ]
    for op, what in OPERATIONS:
        row = ["`%s`" % op]
        for client in CLIENT_NAMES:
            row.append(" / ".join(mark(cell[(client, b, op)]) for b in BROKERS))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for i, key in enumerate(notes, 1):
        lines.append("%d. %s." % (i, REASONS[key].text))
    lines += ["", "Operations:", ""]
    lines += ["- `%s`: %s." % (op, what) for op, what in OPERATIONS]
    lines += ["", "rdkafka (Rust) is driven by `tests/real_rdkafka.rs` (`cargo test --test real_rdkafka`,",
              "the gateway binary in front of the mock and tansu); its tests as run:", "",
              "| test | result |", "|---|---|"]
    lines += ["| `%s` | %s |" % (name, "✅" if result == "ok" else "❌ " + result) for name, result in info["rdkafka"]]
    return "\n".join(lines) + "\n"


def render_long(info):
    """The matrix as printed: one line per cell."""
    width = max(len(c) for c in CLIENT_NAMES)
    out = ["%-*s  %-7s %-24s  %s" % (width, "client", "broker", "operation", "result")]
    for c in info["cells"]:
        if c["verdict"] == "external":
            result = "external: %s" % REASONS[c["detail"]].text
        elif c["verdict"] == "FAIL":
            result = "FAIL: %s" % c["detail"]
        elif c["verdict"] == "n/a":
            result = "n/a: %s" % c["detail"]
        else:
            result = "pass (%s)" % c["detail"] if c["detail"] else "pass"
        out.append("%-*s  %-7s %-24s  %s" % (width, c["client"], c["broker"], c["op"], result))
    for name, result in info["rdkafka"]:
        out.append("%-*s  %-7s %s  %s" % (width, "rdkafka", "tansu" if "tansu" in name else "mock", name,
                                         "pass" if result == "ok" else "FAIL: " + result))
    for run, found in sorted(info["leaks"].items()):
        out.append("LEAK %s: upstream address(es) %s in the client's output" % (run, found))
    if info.get("capture"):
        out.append("client capture: %s" % info["capture"]["summary"])
    out.append("matrix run: %.0f s" % info["seconds"])
    return "\n".join(out)


def docs_section(text=None):
    text = open(DOCS).read() if text is None else text
    if START_MARK not in text or END_MARK not in text:
        return None
    return text.split(START_MARK, 1)[1].split(END_MARK, 1)[0].strip("\n") + "\n"


def write_docs(section):
    text = open(DOCS).read()
    if START_MARK not in text:
        raise SystemExit("docs/compatibility.md has no %s marker" % START_MARK)
    head, rest = text.split(START_MARK, 1)
    _, tail = rest.split(END_MARK, 1)
    with open(DOCS, "w") as f:
        f.write(head + START_MARK + "\n" + section + END_MARK + tail)


# ------------------------------------------------------------------ where it runs

# Fixed ports: the namespaces are fresh, and free ones cannot be picked from
# the root namespace.  The mock brokers take ephemeral ports (32768+).
TANSU_PORT = 9092  # tansu on the cluster's internal address
# kafka-edge per broker, on the edge's client-side address: (bootstrap port,
# port base); broker N listens at base + N (tansu's 111 at 20111). The Kafka
# nodes listen on addresses of their own (kafkacluster.py).
GATEWAY_PORTS = {"kafka": (9094, 21000), "kafka39": (9095, 22000), "mock": (9092, 19000), "tansu": (9093, 20000)}


@contextlib.contextmanager
def namespace_env(workdir):
    """The matrix's setup in network namespaces; yields (Env, netns.SeedNetwork, netns.Capture).

    cluster ns: Apache Kafka 4.4.0 (3 nodes) and 3.9.2 (one node), each node
    on an address of its own; the mock cluster (3 brokers) and tansu, on the
    internal address; the "direct" and "diagnosis" runs execute here.  edge ns: one
    kafka-edge per broker, listening on and advertising the edge's
    client-side address.  client ns (reaches only the edge): a tcpdump
    capture, running from before the gateways start, and every run through
    kafka-edge.  On exit everything is stopped and the namespaces deleted.
    """
    from kafkacluster import KAFKA_OLD_VERSION, KAFKA_VERSION, KafkaCluster
    from netns import seed_network
    from realenv import make_kcat_libdir, stop_gateway

    with seed_network() as net, contextlib.ExitStack() as stack:
        kafka = KafkaCluster(net, workdir, "kafka-compat", version=KAFKA_VERSION)
        stack.callback(kafka.stop)
        kafka39 = KafkaCluster(net, workdir, "kafka39-compat", version=KAFKA_OLD_VERSION, brokers=1)
        stack.callback(kafka39.stop)
        mock = net.start_mock_cluster(workdir, "mockcluster-compat")
        stack.callback(mock.stop)
        tansu = net.start_tansu(workdir, TANSU_PORT, "tansu-compat")
        stack.callback(tansu.stop)
        capture = net.capture(workdir, "tcpdump-compat-client")
        stack.callback(capture.close)
        clusters = {"kafka": kafka.view(), "kafka39": kafka39.view(), "mock": mock, "tansu": tansu}
        gateways = {}
        for broker, (port, base) in GATEWAY_PORTS.items():
            gw = net.start_gateway(clusters[broker], workdir, "kafka-edge-compat-%s" % broker, port, base)
            stack.callback(stop_gateway, gw)
            gateways[broker] = gw
        env = Env(
            clusters,
            gateways,
            workdir,
            make_kcat_libdir(workdir),
            gateway_prefix=net.prefix(net.ns_client),
            direct_prefix=net.prefix(net.ns_cluster),
            internal=net.internal_ips(),
        )
        yield env, net, capture


# Payload bytes the clients must have received in the client ns's capture of
# a whole matrix run (measured: about 1.45 MB from 12 client runs); far less
# means the capture missed the traffic.
CAPTURE_MIN_RECEIVED = 500000


def capture_scan(env, net, capture):
    """Stop the capture and run netns.leak_scan on it: the gateways' address
    reached the client, no internal address and no upstream host:port of
    either cluster did (AssertionError otherwise).  Returns figures for info."""
    from netns import leak_scan

    upstream = sorted({hp for cluster in env.clusters.values() for hp in cluster.upstream_strings()})
    scan = leak_scan(
        capture, net, forbidden=upstream, must_receive=[net.edge_client_ip], min_received=CAPTURE_MIN_RECEIVED
    )
    return {"packets": len(scan.packets), "streams": len(scan.streams), "received": scan.received,
            "sent": scan.sent, "tcpdump": capture.stats, "summary": scan.summary}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--write-docs", action="store_true", help="replace the compat-matrix section of docs/compatibility.md"
    )
    parser.add_argument("--from", dest="from_json", help="render a results JSON saved by a run instead of running")
    parser.add_argument("--json", help="save the results here")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    if args.from_json:
        info = json.load(open(args.from_json))
    else:
        import tempfile

        workdir = args.workdir or tempfile.mkdtemp(prefix="kafka-edge-compat-")
        with namespace_env(workdir) as (env, net, capture):
            info = run_matrix(env)
            try:
                info["capture"] = capture_scan(env, net, capture)
            except AssertionError as exc:
                info["leaks"]["client capture"] = [str(exc)]
        print("logs in %s" % workdir)
    if args.json:
        json.dump(info, open(args.json, "w"), indent=1)
    print(render_long(info))
    failed = [c for c in info["cells"] if c["verdict"] == "FAIL"]
    if args.write_docs:
        if failed or info["leaks"]:
            print("not writing docs/compatibility.md: %d failed cell(s), leaks %s" % (len(failed), info["leaks"]))
            return 1
        write_docs(render(info))
        print("docs/compatibility.md compat-matrix section written")
    return 1 if failed or info["leaks"] else 0


if __name__ == "__main__":
    sys.exit(main())
