"""The Java real-client (tests/real/java) from Python: build, run, parse its JSON lines.

``java_classpath(version)`` builds the client and the classpath of one
kafka-clients version (scripts/kafka-java-client, cached); ``JavaRun`` runs
scenarios in one JVM (optionally inside a namespace) and groups the printed
lines per scenario. Each line is {"client", "scenario", "op", "ok", ...}; the
last one of each scenario is op "scenario" (or a failure that ended it).
"""

import json
import os

import pytest

from kafkacluster import java_binary
from realenv import REPO_ROOT, describe, run

KAFKA_JAVA_CLIENT = os.path.join(REPO_ROOT, "scripts", "kafka-java-client")
SCENARIOS = ("produce", "txn", "group-classic", "group-consumer", "admin", "share", "streams")
# The share consumer (KIP-932) does not exist before kafka-clients 4.0.
SCENARIOS_3X = tuple(s for s in SCENARIOS if s != "share")
JVM = ["-Xms64m", "-Xmx384m", "-XX:TieredStopAtLevel=1"]


def java_classpath(version):
    res = run([KAFKA_JAVA_CLIENT, version], timeout=900)
    if res.returncode != 0:
        pytest.fail("scripts/kafka-java-client %s failed\n%s" % (version, describe(res)), pytrace=False)
    got, classpath = res.stdout.strip().splitlines()[-1].split(" ", 1)
    assert got == version, res.stdout
    return classpath


class JavaRun:
    """One JVM running `scenarios` against `bootstrap`; .scenario(name) -> [lines]."""

    def __init__(self, version, bootstrap, scenarios, topic_prefix, prefix=(), config=None, timeout=400):
        cmd = list(prefix) + [java_binary()] + JVM + ["-cp", java_classpath(version), "kafkaedge.Main"]
        cmd += ["--bootstrap", bootstrap, "--prefix", topic_prefix]
        for k, v in sorted((config or {}).items()):
            cmd += ["--config", "%s=%s" % (k, v)]
        self.version = version
        self.result = run(cmd + list(scenarios), timeout=timeout)
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
