"""The JSON-line real clients from Python: build, run, parse what they print.

Two programs print one JSON line per operation, {"client", "scenario", "op",
"ok", ...}, the last one of each scenario being op "scenario" (or a failure
that ended it):
  * the Java client (tests/real/java): ``java_classpath(version)`` builds it
    and the classpath of one kafka-clients version (scripts/kafka-java-client,
    cached); ``JavaRun`` runs scenarios in one JVM;
  * the Go client (tests/real/go: franz-go, sarama, segmentio/kafka-go):
    ``go_binary()`` builds it (scripts/kafka-go-client, cached); ``GoRun``.
Both run optionally inside a namespace (`prefix`). ``CLIENTS`` names every
client variant and the scenarios it has.
"""

import functools
import json
import os
import threading

import pytest

from kafkacluster import java_binary
from realenv import REPO_ROOT, describe, run

from kafkacluster import KAFKA_OLD_VERSION, KAFKA_VERSION

KAFKA_JAVA_CLIENT = os.path.join(REPO_ROOT, "scripts", "kafka-java-client")
KAFKA_GO_CLIENT = os.path.join(REPO_ROOT, "scripts", "kafka-go-client")
JAVA_SCENARIOS = ("produce", "txn", "group-classic", "group-consumer", "admin", "share", "streams")
# {client: scenarios it has}. The share consumer (KIP-932) does not exist before kafka-clients 4.0.
CLIENTS = {
    "java-" + KAFKA_VERSION: JAVA_SCENARIOS,
    "java-" + KAFKA_OLD_VERSION: tuple(s for s in JAVA_SCENARIOS if s != "share"),
    "franz": ("produce", "txn", "group-classic", "group-consumer", "admin"),
    "sarama": ("produce", "group-classic", "admin"),
    "segmentio": ("produce", "group-classic", "admin"),
}
JVM = ["-Xms64m", "-Xmx384m", "-XX:TieredStopAtLevel=1"]


# The client runs of a module start in parallel threads: each build happens once.
BUILD_LOCK = threading.Lock()


def built_once(fn):
    cached = functools.lru_cache(maxsize=None)(fn)

    @functools.wraps(fn)
    def locked(*args):
        with BUILD_LOCK:
            return cached(*args)

    return locked


@built_once
def java_classpath(version):
    res = run([KAFKA_JAVA_CLIENT, version], timeout=900)
    if res.returncode != 0:
        pytest.fail("scripts/kafka-java-client %s failed\n%s" % (version, describe(res)), pytrace=False)
    got, classpath = res.stdout.strip().splitlines()[-1].split(" ", 1)
    assert got == version, res.stdout
    return classpath


@built_once
def go_binary():
    res = run([KAFKA_GO_CLIENT], timeout=900)
    if res.returncode != 0:
        pytest.fail("scripts/kafka-go-client failed\n%s" % describe(res), pytrace=False)
    return res.stdout.strip().splitlines()[-1]


def client_run(client, bootstrap, scenarios, topic_prefix, prefix=()):
    """Run `scenarios` of one client of CLIENTS (JavaRun or GoRun)."""
    if client.startswith("java-"):
        return JavaRun(client[len("java-") :], bootstrap, scenarios, topic_prefix, prefix=prefix)
    return GoRun(client, bootstrap, scenarios, topic_prefix, prefix=prefix)


class ClientRun:
    """One finished run of a JSON-line client; .scenario(name) -> [lines]."""

    def __init__(self, cmd, timeout):
        self.result = run(cmd, timeout=timeout)
        self.lines = []
        for line in self.result.stdout.splitlines():
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass

    def scenario(self, name):
        return [line for line in self.lines if line.get("scenario") == name]

    def failures(self, name):
        """The failed operations of one scenario ([] when it passed; a scenario that printed nothing fails)."""
        lines = self.scenario(name)
        if not any(line["op"] == "scenario" for line in lines):
            return [{"op": "scenario", "ok": False, "error": "no result line"}]
        return [line for line in lines if not line["ok"]]

    def op(self, scenario, op):
        """Lines of one operation of one scenario."""
        return [line for line in self.scenario(scenario) if line["op"] == op]

    def detail(self, name=None):
        lines = self.scenario(name) if name else self.lines
        return "%s\n--- lines ---\n%s" % (describe(self.result, limit=4000), "\n".join(json.dumps(x) for x in lines))


class JavaRun(ClientRun):
    """One JVM running `scenarios` of the Java client with kafka-clients `version`."""

    def __init__(self, version, bootstrap, scenarios, topic_prefix, prefix=(), config=None, timeout=400, seconds=None,
                 properties=None):  # fmt: skip
        """`seconds`: how long the churn scenario produces; `properties`: JVM system properties."""
        sysprops = ["-D%s=%s" % kv for kv in sorted((properties or {}).items())]
        cmd = list(prefix) + [java_binary()] + JVM + sysprops + ["-cp", java_classpath(version), "kafkaedge.Main"]
        cmd += ["--bootstrap", bootstrap, "--prefix", topic_prefix]
        if seconds is not None:
            cmd += ["--seconds", str(seconds)]
        for k, v in sorted((config or {}).items()):
            cmd += ["--config", "%s=%s" % (k, v)]
        super().__init__(cmd + list(scenarios), timeout)


class GoRun(ClientRun):
    """The Go client running `scenarios` with one library (franz, sarama, segmentio)."""

    def __init__(self, library, bootstrap, scenarios, topic_prefix, prefix=(), timeout=400, flags=()):
        """`flags`: more flags of the Go client (its SASL login: -sasl, -user, -password-file, -token-file)."""
        cmd = list(prefix) + [go_binary(), "-client", library, "-bootstrap", bootstrap, "-prefix", topic_prefix]
        cmd += list(flags)
        super().__init__(cmd + list(scenarios), timeout)
