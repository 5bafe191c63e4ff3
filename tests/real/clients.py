"""One interface over the real clients the suite drives.

CLIENTS names every client variant:
  kcat-2.0.2   Debian's kcat with its librdkafka 2.0.2
  kcat-2.16    the same kcat on the confluent-kafka wheel's librdkafka 2.16
  confluent    confluent-kafka (librdkafka 2.16) via kclient.py
  kafkapython  kafka-python (pure Python) via kclient.py

Every operation runs as a subprocess with a timeout; `prefix` (e.g.
["ip", "netns", "exec", NS]) runs it inside a network namespace.
"""

from kclient import values_for
from realenv import describe, kclient

CLIENTS = ["kcat-2.0.2", "kcat-2.16", "confluent", "kafkapython"]


def make_values(prefix, count, size=0):
    """The exact values a produce step sends (the same function as kclient.py's)."""
    return values_for(prefix, count, size)


class Outcome:
    """Result of one client operation: ok flag, data and a failure description."""

    def __init__(self, ok, data, detail):
        self.ok, self.data, self.detail = ok, data, detail

    def __repr__(self):
        return "Outcome(ok=%s, data=%r)\n%s" % (self.ok, self.data, self.detail)


class Client:
    def __init__(self, name, kcats):
        self.name = name
        self.kcat = kcats[name.split("-", 1)[1]] if name.startswith("kcat-") else None

    def __repr__(self):
        return self.name

    # -------------------------------------------------------------- metadata

    def metadata(self, bootstrap, cluster, prefix=()):
        """Outcome.data = {"brokers": [...], ...}; detail includes raw output."""
        if self.kcat:
            brokers, res = self.kcat.brokers(bootstrap, prefix=prefix)
            return Outcome(brokers is not None, {"brokers": brokers, "raw": res.stdout}, describe(res))
        data, res = kclient(self.name, bootstrap, cluster, "metadata", prefix=prefix)
        ok = res.returncode == 0 and data is not None and "brokers" in data
        if data is not None:
            data["raw"] = res.stdout
        return Outcome(ok, data, describe(res))

    # -------------------------------------------------------------- produce

    def produce(
        self, bootstrap, cluster, topic, prefix_value, count, prefix=(), deadline=30, value_size=0, compression="none"
    ):
        """Produce make_values(prefix_value, count, value_size) with acks=all (+ idempotence)."""
        if self.kcat:
            res = self.kcat.produce(
                bootstrap,
                topic,
                make_values(prefix_value, count, value_size),
                compression=compression,
                prefix=prefix,
                timeout=deadline + 30,
                message_timeout_ms=deadline * 1000,
            )
            # kcat exits non-zero when a message was not delivered, but also
            # check stderr for delivery errors reported along the way.
            ok = res.returncode == 0 and "ERROR" not in res.stderr
            return Outcome(ok, None, describe(res))
        data, res = kclient(
            self.name,
            bootstrap,
            cluster,
            "produce",
            "--topic",
            topic,
            "--prefix",
            prefix_value,
            "--count",
            count,
            "--value-size",
            value_size,
            "--compression",
            compression,
            prefix=prefix,
            deadline=deadline,
            timeout=deadline + 30,
        )
        return Outcome(res.returncode == 0, data, describe(res))

    # -------------------------------------------------------------- consume

    def consume(self, bootstrap, cluster, topic, count, prefix=()):
        """Read `count` messages from the beginning of every partition (no group)."""
        if self.kcat:
            values, res = self.kcat.consume(bootstrap, topic, count, prefix=prefix)
            return Outcome(res.returncode == 0, values, describe(res))
        data, res = kclient(self.name, bootstrap, cluster, "consume", "--topic", topic, "--count", count, prefix=prefix)
        values = (data or {}).get("values")
        return Outcome(res.returncode == 0, values, describe(res))

    def consume_group(self, bootstrap, cluster, topic, group, count, prefix=()):
        """Subscribe with group.id, consume `count` messages, commit.

        Outcome.data = {"values": [...], "committed_total": N} where
        committed_total is the sum of the group's committed offsets read back
        from the broker afterwards (equal to `count` for a fresh topic).
        """
        if self.kcat:
            # kcat commits through auto-commit, which librdkafka flushes when
            # the consumer closes; read the commit back with confluent-kafka.
            values, res = self.kcat.consume_group(bootstrap, topic, group, count, prefix=prefix)
            detail = describe(res)
            data, res2 = kclient(
                "confluent", bootstrap, cluster, "committed", "--topic", topic, "--group", group, prefix=prefix
            )
            detail += "\n--- committed read-back ---\n" + describe(res2)
            committed = (data or {}).get("committed") or {}
            total = sum(o for o in committed.values() if o >= 0)
            ok = res.returncode == 0 and res2.returncode == 0
            return Outcome(ok, {"values": values, "committed_total": total}, detail)
        data, res = kclient(
            self.name,
            bootstrap,
            cluster,
            "consume",
            "--topic",
            topic,
            "--count",
            count,
            "--group",
            group,
            prefix=prefix,
        )
        data = data or {}
        committed = data.get("committed") or {}
        total = sum(o for o in committed.values() if isinstance(o, int) and o >= 0)
        return Outcome(res.returncode == 0, {"values": data.get("values"), "committed_total": total}, describe(res))
