#!/usr/bin/env python3
"""One client library runs the compatibility scenario (compat_spec.py).

    compat_client.py LIB --bootstrap HOST:PORT --tag TAG --ops OP[,OP...]
                     [--api-version 2.3] [--kcat-libdir DIR]
    compat_client.py LIB --versions

LIB is confluent (confluent-kafka), kafkapython (kafka-python), aiokafka, or
kcat (Debian's kcat binary; with --kcat-libdir, on the librdkafka found
there).  Each operation runs with its own deadline and prints one JSON line:

    {"op": OP, "ok": true|false, "error": "...", "data": {...}, "seconds": S}

"ok" is this driver's own verdict (every value read back exactly, every call
answered without error); the harness adds the checks that need to know the
cluster (which addresses the brokers must have).  An exception fails that
operation only; the next one still runs.  Topics "<TAG>.<op>" must exist
(the harness creates them).
"""

import argparse
import asyncio
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from compat_spec import (  # noqa: E402
    COUNT,
    CREATED_PARTITIONS,
    CREATED_TOPIC,
    deadline_of,
    topic_for,
    values_for,
)

PRODUCE = {
    # op: (acks, idempotence, compression)
    "produce-acks0": ("0", False, "none"),
    "produce-acks1": ("1", False, "none"),
    "produce-acksall": ("all", False, "none"),
    "produce-idempotent": ("all", True, "none"),
    "compress-gzip": ("all", False, "gzip"),
    "compress-snappy": ("all", False, "snappy"),
    "compress-lz4": ("all", False, "lz4"),
    "compress-zstd": ("all", False, "zstd"),
}


class OpFailed(Exception):
    """The operation ran but its result is wrong; the message says how."""


def expect_values(got, want, what):
    if sorted(got) != sorted(want):
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        raise OpFailed(
            "%s: %d values, expected %d; missing %s; unexpected %s"
            % (what, len(got), len(want), missing[:5], extra[:5])
        )


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self, floor=0.1):
        return max(floor, self.end - time.monotonic())

    def passed(self):
        return time.monotonic() >= self.end


class Driver:
    """Shared scenario logic; subclasses provide the client calls."""

    def __init__(self, args):
        self.args = args
        self.tag = args.tag
        self.session_ms, self.max_poll_ms, self.heartbeat_ms = (int(x) for x in args.group_timing.split(","))

    def topic(self, op):
        return topic_for(self.tag, op)

    # Each produce-like operation: produce, then read back from the beginning
    # while the producer is still connected.  (A fire-and-forget producer is a
    # long-lived one: tansu 0.6.0 drops acks=0 requests still queued when their
    # connection closes, with or without a gateway.)
    def run_produce(self, op, dl):
        acks, idempotence, compression = PRODUCE[op]
        values = values_for(op)
        topic = self.topic(op)
        got = []
        data = self.produce(
            topic,
            values,
            dl,
            acks=acks,
            idempotence=idempotence,
            compression=compression,
            while_open=lambda: got.extend(self.read_back(topic, len(values), dl)),
            # acks=0: all records in one request (see compat_spec.TOPICS).
            linger_ms=200 if acks == "0" else 5,
        )
        expect_values(got, values, "read back")
        return data

    def op_consume_beginning(self, dl):
        got = self.read_back(self.topic("consume-beginning"), COUNT, dl)
        expect_values(got, values_for("produce-acksall"), "consumed from the beginning")
        return {"values": len(got)}

    def op_txn_read_committed(self, dl):
        committed = values_for("txn-committed", COUNT // 2)
        got = self.read_back(self.topic("txn-read-committed"), len(committed), dl, read_committed=True)
        aborted = [v for v in got if v.startswith("txn-aborted")]
        if aborted:
            raise OpFailed("read_committed consumer received %d aborted records, e.g. %s" % (len(aborted), aborted[:3]))
        expect_values(got, committed, "read_committed")
        return {"values": len(got)}

    def hung(self, op, rest):
        """Watchdog: the client library did not return; report and exit."""
        log = getattr(self, "client_log", [])
        lines = [{"op": op, "ok": False, "error": "client hung past the deadline; client log: %s" % "; ".join(log[-3:])}]
        lines += [{"op": o, "ok": False, "error": "not run: %s hung" % op} for o in rest]
        sys.stdout.write("".join(json.dumps(x, sort_keys=True) + "\n" for x in lines))
        sys.stdout.flush()
        os._exit(3)

    def check_group_phase1(self, seen, values1, split):
        """Both members consumed, each only from its own partitions, together everything."""
        for name in ("A", "B"):
            outside = sorted({p for p, _ in seen[name]} - set(split[name]))
            if outside:
                raise OpFailed("member %s consumed partitions %s outside its assignment %s" % (name, outside, split))
            if not seen[name]:
                raise OpFailed(
                    "member %s consumed nothing of the first batch (by partition: %s)"
                    % (name, {n: sorted({p for p, _ in seen[n]}) for n in seen})
                )
        expect_values([v for _, v in seen["A"] + seen["B"]], values1, "first batch over both members")

    def run(self, ops):
        failed = {}
        for i, op in enumerate(ops):
            t0 = time.monotonic()
            dl = Deadline(deadline_of(op))
            out = {"op": op}
            watchdog = threading.Timer(deadline_of(op) + 15, self.hung, args=(op, ops[i + 1 :]))
            watchdog.daemon = True
            watchdog.start()
            try:
                if op == "txn-read-committed" and "txn-commit-abort" in failed:
                    # Nothing committed to read: report why instead of waiting.
                    raise OpFailed("not run: txn-commit-abort failed: %s" % failed["txn-commit-abort"])
                if op in PRODUCE:
                    data = self.run_produce(op, dl)
                else:
                    data = getattr(self, "op_" + op.replace("-", "_"))(dl)
                out.update(ok=True, data=data or {})
            except OpFailed as exc:
                out.update(ok=False, error=str(exc))
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # the client library's own error (asyncio.CancelledError too)
                traceback.print_exc()
                out.update(ok=False, error="%s: %s" % (type(exc).__name__, exc))
            watchdog.cancel()
            tail = getattr(self, "last_stderr", "")
            if not out["ok"] and tail.strip():
                # kcat's distinct error lines (librdkafka repeats them with new timestamps)
                lines, seen_lines = [], set()
                for line in tail.strip().splitlines():
                    key = re.sub(r"^%\d\|[\d.]+\|", "", line)
                    if ("FAIL" in line or "ERROR" in line) and key not in seen_lines:
                        seen_lines.add(key)
                        lines.append(line)
                out["error"] += " | kcat stderr: %s" % " / ".join(lines[-3:] or tail.strip().splitlines()[-2:])[-900:]
            if hasattr(self, "last_stderr"):
                self.last_stderr = ""
            if not out["ok"]:
                failed[op] = out["error"]
            out["seconds"] = round(time.monotonic() - t0, 2)
            sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
            sys.stdout.flush()


# ---------------------------------------------------------------- confluent-kafka


class Confluent(Driver):
    def conf(self, **extra):
        conf = {"bootstrap.servers": self.args.bootstrap}
        conf.update(extra)
        return conf

    def versions(self):
        import confluent_kafka

        version = confluent_kafka.version()
        version = version[0] if isinstance(version, tuple) else version
        return {"confluent-kafka": version, "librdkafka": confluent_kafka.libversion()[0]}

    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient(self.conf())

    def op_metadata(self, dl):
        md = self.admin().list_topics(timeout=dl.left())
        brokers = [{"id": b.id, "host": b.host, "port": b.port} for b in md.brokers.values()]
        return {"brokers": brokers, "controller_id": md.controller_id}

    def produce(
        self, topic, values, dl, acks, idempotence, compression, while_open=None, one_per_batch=False, linger_ms=5
    ):
        from confluent_kafka import Producer

        conf = self.conf(
            **{
                "acks": acks,
                "enable.idempotence": idempotence,
                "compression.type": compression,
                "linger.ms": linger_ms,
                "message.timeout.ms": int(dl.left() * 1000) - 1000,
            }
        )
        if one_per_batch:
            conf["batch.num.messages"] = 1
        producer = Producer(conf)
        errors, acked = [], []

        def report(err, msg):
            if err is not None:
                errors.append(str(err))
            else:
                acked.append(msg.value().decode())

        for v in values:
            producer.produce(topic, key=v.encode(), value=v.encode(), on_delivery=report)
            producer.poll(0)
        left = producer.flush(dl.left())
        if left or errors:
            raise OpFailed("%d undelivered, delivery errors %s" % (left, errors[:3]))
        if acks != "0" and sorted(acked) != sorted(values):
            raise OpFailed("%d of %d deliveries acknowledged" % (len(acked), len(values)))
        if while_open:
            while_open()
        del producer  # disconnects
        return {"acknowledged": len(acked)}

    def partitions(self, consumer, topic, dl):
        md = consumer.list_topics(topic, timeout=dl.left())
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            raise OpFailed("topic %s not in metadata: %s" % (topic, t and t.error))
        return sorted(t.partitions)

    def consumer(self, group=None, **extra):
        from confluent_kafka import Consumer

        conf = self.conf(
            **{
                "group.id": group or "compat-assign-only",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": self.session_ms,
                "max.poll.interval.ms": self.max_poll_ms,
                "heartbeat.interval.ms": self.heartbeat_ms,
            }
        )
        conf.update(extra)
        return Consumer(conf)

    def read_back(self, topic, count, dl, read_committed=False):
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        iso = "read_committed" if read_committed else "read_uncommitted"
        consumer = self.consumer(**{"isolation.level": iso})
        got = []
        try:
            parts = self.partitions(consumer, topic, dl)
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
            while len(got) < count and not dl.passed():
                msg = consumer.poll(0.2)
                if msg is None or msg.error():
                    continue
                got.append(msg.value().decode())
        finally:
            consumer.close()
        return got

    def op_group_rebalance(self, dl):
        from confluent_kafka import TopicPartition

        topic, group = self.topic("group-rebalance"), self.topic("group-rebalance") + ".g"
        members = {name: self.consumer(group) for name in ("A", "B")}
        assigned = {"A": [], "B": []}
        seen = {"A": [], "B": []}

        def on_assign(name):
            def cb(consumer, parts):
                assigned[name] = sorted(p.partition for p in parts)

            return cb

        def on_revoke(name):
            def cb(consumer, parts):
                assigned[name] = []

            return cb

        def poll(name):
            msg = members[name].poll(0.1)
            if msg is not None and not msg.error():
                seen[name].append((msg.partition(), msg.value().decode()))

        try:
            for name, c in members.items():
                c.subscribe([topic], on_assign=on_assign(name), on_revoke=on_revoke(name))
            while not (assigned["A"] and assigned["B"] and sorted(assigned["A"] + assigned["B"]) == [0, 1, 2, 3]):
                if dl.passed():
                    raise OpFailed("two members never split the 4 partitions: %s" % assigned)
                poll("A")
                poll("B")
            split = dict(assigned)
            values1 = values_for("group-1")
            self.produce(topic, values1, dl, acks="all", idempotence=False, compression="none")
            while len(seen["A"]) + len(seen["B"]) < len(values1) and not dl.passed():
                poll("A")
                poll("B")
            self.check_group_phase1(seen, values1, split)
            for c in members.values():
                c.commit(asynchronous=False)  # the positions reached
            members.pop("B").close()  # LeaveGroup
            assigned["B"] = []
            while assigned["A"] != [0, 1, 2, 3]:
                if dl.passed():
                    raise OpFailed("remaining member never took all partitions: %s" % assigned["A"])
                poll("A")
            committed = members["A"].committed([TopicPartition(topic, p) for p in range(4)], timeout=dl.left())
            seen["A"] = []
            values2 = values_for("group-2")
            self.produce(topic, values2, dl, acks="all", idempotence=False, compression="none")
            while len(seen["A"]) < len(values2) and not dl.passed():
                poll("A")
            expect_values([v for _, v in seen["A"]], values2, "after the rebalance (resumed at the commits)")
            return {"split": split, "committed_total": sum(tp.offset for tp in committed)}
        finally:
            for c in members.values():
                c.close()

    def op_commit_restart(self, dl):
        from confluent_kafka import TopicPartition

        topic, group = self.topic("commit-restart"), self.topic("commit-restart") + ".g"
        values = values_for("commit")
        self.produce(topic, values, dl, acks="all", idempotence=False, compression="none", one_per_batch=True)
        first = self.consumer(group)
        got1 = []
        try:
            first.subscribe([topic])
            while len(got1) < 10 and not dl.passed():
                msg = first.poll(0.2)
                if msg is not None and not msg.error():
                    got1.append(msg.value().decode())
            if got1 != values[:10]:
                raise OpFailed("first consumer read %s" % got1)
            first.commit(offsets=[TopicPartition(topic, 0, 10)], asynchronous=False)
        finally:
            first.close()
        second = self.consumer(group)
        got2 = []
        try:
            committed = second.committed([TopicPartition(topic, 0)], timeout=dl.left())[0].offset
            if committed != 10:
                raise OpFailed("committed offset read back as %s, expected 10" % committed)
            second.subscribe([topic])
            while len(got2) < 10 and not dl.passed():
                msg = second.poll(0.2)
                if msg is not None and not msg.error():
                    got2.append(msg.value().decode())
        finally:
            second.close()
        if got2 != values[10:]:
            raise OpFailed("restarted consumer read %s, expected %s..." % (got2[:3], values[10:13]))
        return {"committed": committed}

    def op_txn_commit_abort(self, dl):
        from confluent_kafka import Producer

        topic = self.topic("txn-commit-abort")
        producer = Producer(self.conf(**{"transactional.id": topic + ".tx", "linger.ms": 5}))
        errors = []

        def report(err, msg):
            if err is not None:
                errors.append(str(err))

        def send(values):
            for v in values:
                producer.produce(topic, key=v.encode(), value=v.encode(), on_delivery=report)
                producer.poll(0)

        producer.init_transactions(dl.left())
        producer.begin_transaction()
        send(values_for("txn-aborted", COUNT // 2))
        producer.flush(dl.left())
        producer.abort_transaction(dl.left())
        producer.begin_transaction()
        send(values_for("txn-committed", COUNT // 2))
        producer.commit_transaction(dl.left())
        if errors:
            raise OpFailed("delivery errors %s" % errors[:3])
        return {}

    def op_admin_describe_cluster(self, dl):
        admin = self.admin()  # keep the handle alive until the result is in
        res = admin.describe_cluster(request_timeout=dl.left()).result(timeout=dl.left())
        out = {"brokers": [{"id": n.id, "host": n.host, "port": n.port} for n in res.nodes]}
        if res.controller is not None:
            c = res.controller
            out["controller"] = {"id": c.id, "host": c.host, "port": c.port}
        return out

    def op_admin_create_topic(self, dl):
        from confluent_kafka.admin import NewTopic

        admin = self.admin()
        name = "%s.%s" % (self.tag, CREATED_TOPIC)
        futures = admin.create_topics([NewTopic(name, CREATED_PARTITIONS, 1)], request_timeout=dl.left())
        futures[name].result(timeout=dl.left())
        while True:
            t = admin.list_topics(name, timeout=dl.left()).topics.get(name)
            if t is not None and t.error is None and len(t.partitions) == CREATED_PARTITIONS:
                return {"partitions": len(t.partitions)}
            if dl.passed():
                raise OpFailed("created topic not in metadata: %s" % (t and t.error))
            time.sleep(0.2)

    def op_admin_describe_configs(self, dl):
        from confluent_kafka.admin import ConfigResource, ResourceType

        admin = self.admin()
        ids = sorted(admin.list_topics(timeout=dl.left()).brokers)
        # librdkafka allows one BROKER resource per call (each goes to that broker).
        calls = [[ConfigResource(ResourceType.BROKER, str(i))] for i in ids]
        calls.append([ConfigResource(ResourceType.TOPIC, self.topic("admin-describe-configs"))])
        out = {}
        for resources in calls:
            for res, fut in admin.describe_configs(resources, request_timeout=dl.left()).items():
                entries = fut.result(timeout=dl.left())
                out["%s:%s" % (res.restype.name.lower(), res.name)] = len(entries)
        return {"entries": out}


# ------------------------------------------------------------------ kafka-python


class KafkaPython(Driver):
    def __init__(self, args):
        super().__init__(args)
        import logging

        logging.basicConfig(level=logging.WARNING)  # its group and connection warnings, for failures

    def base(self):
        base = {"bootstrap_servers": self.args.bootstrap.split(",")}
        if self.args.api_version:
            base["api_version"] = tuple(int(x) for x in self.args.api_version.split("."))
        return base

    def versions(self):
        import kafka

        return {"kafka-python": kafka.__version__}

    def admin(self):
        from kafka import KafkaAdminClient

        return KafkaAdminClient(**self.base())

    def op_metadata(self, dl):
        admin = self.admin()
        try:
            # The Metadata request as the admin client sends it (describe_cluster
            # below prefers DescribeCluster where the broker has it).
            md = admin._manager.run(admin._get_cluster_metadata, [])
            brokers = [{"id": b["node_id"], "host": b["host"], "port": b["port"]} for b in md["brokers"]]
            return {"brokers": brokers, "controller_id": md.get("controller_id")}
        finally:
            admin.close()

    def produce(
        self, topic, values, dl, acks, idempotence, compression, while_open=None, one_per_batch=False, linger_ms=5
    ):
        from kafka import KafkaProducer

        producer = KafkaProducer(
            acks=acks if acks == "all" else int(acks),
            enable_idempotence=idempotence,
            compression_type=None if compression == "none" else compression,
            linger_ms=linger_ms,
            **self.base(),
        )
        try:
            futures = []
            for v in values:
                futures.append(producer.send(topic, key=v.encode(), value=v.encode()))
                if one_per_batch:
                    producer.flush(timeout=dl.left())
            producer.flush(timeout=dl.left())
            acked = 0
            for fut in futures:
                fut.get(timeout=dl.left())
                acked += 1
            if while_open:
                while_open()
        finally:
            producer.close(timeout=5)
        return {"acknowledged": acked}

    def consumer(self, *topics, group=None, **extra):
        from kafka import KafkaConsumer

        conf = dict(self.base())
        conf.update(
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=self.session_ms,
            max_poll_interval_ms=self.max_poll_ms,
            heartbeat_interval_ms=self.heartbeat_ms,
        )
        conf.update(extra)
        return KafkaConsumer(*topics, **conf)

    def read_back(self, topic, count, dl, read_committed=False):
        from kafka import TopicPartition

        iso = "read_committed" if read_committed else "read_uncommitted"
        consumer = self.consumer(isolation_level=iso)
        got = []
        try:
            parts = None
            while not parts and not dl.passed():
                parts = consumer.partitions_for_topic(topic)
                if not parts:
                    time.sleep(0.2)
            if not parts:
                raise OpFailed("topic %s not in metadata" % topic)
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            while len(got) < count and not dl.passed():
                for msgs in consumer.poll(timeout_ms=200).values():
                    got.extend(m.value.decode() for m in msgs)
        finally:
            consumer.close()
        return got

    def op_group_rebalance(self, dl):
        from kafka import ConsumerRebalanceListener

        topic, group = self.topic("group-rebalance"), self.topic("group-rebalance") + ".g"
        driver = self

        class Member(ConsumerRebalanceListener):
            """One member in its own thread: kafka-python joins the group inside
            poll(), so two members polled in turn on one thread would wait for
            each other's JoinGroup until the rebalance timeout."""

            def __init__(self):
                self.assigned, self.seen, self.errors = [], [], []
                self.commands = queue.Queue()
                self.thread = threading.Thread(target=self._run, daemon=True)
                self.thread.start()

            def on_partitions_revoked(self, revoked):
                self.assigned = []

            def on_partitions_assigned(self, parts):
                self.assigned = sorted(tp.partition for tp in parts)

            def _run(self):
                consumer = driver.consumer(group=group)
                consumer.subscribe([topic], listener=self)
                while True:
                    try:
                        command, done = self.commands.get_nowait()
                    except queue.Empty:
                        command = None
                    if command is not None:
                        try:
                            if command == "commit":
                                consumer.commit()  # synchronous, the positions reached
                            if command == "close":
                                consumer.close()  # LeaveGroup
                                return
                        except Exception as exc:
                            self.errors.append("%s: %r" % (command, exc))
                        finally:
                            done.set()
                    try:
                        for tp, msgs in consumer.poll(timeout_ms=100).items():
                            self.seen.extend((tp.partition, m.value.decode()) for m in msgs)
                    except Exception as exc:  # the library rejoins on its own
                        self.errors.append("poll: %r" % exc)
                        time.sleep(0.1)

            def call(self, command):
                done = threading.Event()
                self.commands.put((command, done))
                if not done.wait(dl.left()):
                    raise OpFailed("member did not %s in time" % command)

        members = {"A": Member(), "B": Member()}
        try:
            while True:
                a, b = members["A"].assigned, members["B"].assigned
                if a and b and sorted(a + b) == [0, 1, 2, 3]:
                    break
                if dl.passed():
                    raise OpFailed("two members never split the 4 partitions: A=%s B=%s" % (a, b))
                time.sleep(0.05)
            split = {n: list(m.assigned) for n, m in members.items()}
            values1 = values_for("group-1")
            self.produce(topic, values1, dl, acks="all", idempotence=False, compression="none")
            while sum(len(m.seen) for m in members.values()) < len(values1) and not dl.passed():
                time.sleep(0.05)
            self.check_group_phase1({n: list(m.seen) for n, m in members.items()}, values1, split)
            for m in members.values():
                m.call("commit")
            members.pop("B").call("close")
            while members["A"].assigned != [0, 1, 2, 3]:
                if dl.passed():
                    raise OpFailed("remaining member never took all partitions: %s" % members["A"].assigned)
                time.sleep(0.05)
            members["A"].seen = []
            values2 = values_for("group-2")
            self.produce(topic, values2, dl, acks="all", idempotence=False, compression="none")
            while len(members["A"].seen) < len(values2) and not dl.passed():
                time.sleep(0.05)
            expect_values([v for _, v in members["A"].seen], values2, "after the rebalance (resumed at the commits)")
            return {"split": split, "client_errors": [e for m in members.values() for e in m.errors][:5]}
        finally:
            for m in members.values():
                m.call("close")

    def op_commit_restart(self, dl):
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        topic, group = self.topic("commit-restart"), self.topic("commit-restart") + ".g"
        tp = TopicPartition(topic, 0)
        values = values_for("commit")
        self.produce(topic, values, dl, acks="all", idempotence=False, compression="none", one_per_batch=True)

        def consume(consumer, n):
            got = []
            while len(got) < n and not dl.passed():
                for msgs in consumer.poll(timeout_ms=200, max_records=n - len(got)).values():
                    got.extend(m.value.decode() for m in msgs)
            return got

        first = self.consumer(topic, group=group)
        try:
            got1 = consume(first, 10)
            if got1 != values[:10]:
                raise OpFailed("first consumer read %s" % got1)
            first.commit({tp: OffsetAndMetadata(10, "", -1)})
        finally:
            first.close()
        second = self.consumer(topic, group=group)
        try:
            committed = second.committed(tp)
            if committed != 10:
                raise OpFailed("committed offset read back as %s, expected 10" % committed)
            got2 = consume(second, 10)
        finally:
            second.close()
        if got2 != values[10:]:
            raise OpFailed("restarted consumer read %s, expected %s..." % (got2[:3], values[10:13]))
        return {"committed": committed}

    def op_txn_commit_abort(self, dl):
        from kafka import KafkaProducer

        topic = self.topic("txn-commit-abort")
        producer = KafkaProducer(transactional_id=topic + ".tx", linger_ms=5, **self.base())
        try:
            producer.init_transactions()
            producer.begin_transaction()
            for v in values_for("txn-aborted", COUNT // 2):
                producer.send(topic, key=v.encode(), value=v.encode())
            producer.flush(timeout=dl.left())
            producer.abort_transaction()
            producer.begin_transaction()
            futures = [producer.send(topic, key=v.encode(), value=v.encode()) for v in values_for("txn-committed", COUNT // 2)]
            producer.commit_transaction()
            for fut in futures:
                fut.get(timeout=dl.left())
        finally:
            producer.close(timeout=5)
        return {}

    def op_admin_describe_cluster(self, dl):
        admin = self.admin()
        try:
            res = admin.describe_cluster()
        finally:
            admin.close()
        brokers = [{"id": b.get("broker_id", b.get("node_id")), "host": b["host"], "port": b["port"]} for b in res["brokers"]]
        return {"brokers": brokers, "controller_id": res.get("controller_id")}

    def op_admin_create_topic(self, dl):
        admin = self.admin()
        name = "%s.%s" % (self.tag, CREATED_TOPIC)
        try:
            admin.create_topics({name: {"num_partitions": CREATED_PARTITIONS, "replication_factor": 1}})
            while True:
                topics = admin.describe_topics([name])
                if topics and topics[0].get("error_code", 0) == 0 and len(topics[0]["partitions"]) == CREATED_PARTITIONS:
                    return {"partitions": CREATED_PARTITIONS}
                if dl.passed():
                    raise OpFailed("created topic not in metadata: %s" % topics)
                time.sleep(0.2)
        finally:
            admin.close()

    def op_admin_describe_configs(self, dl):
        from kafka.admin import ConfigResource, ConfigResourceType

        admin = self.admin()
        try:
            md = admin._manager.run(admin._get_cluster_metadata, [])
            ids = sorted(b["node_id"] for b in md["brokers"])
            resources = [ConfigResource(ConfigResourceType.BROKER, str(i)) for i in ids]
            resources.append(ConfigResource(ConfigResourceType.TOPIC, self.topic("admin-describe-configs")))
            res = admin.describe_configs(resources, config_filter="all")
        finally:
            admin.close()
        out = {}
        for rtype, by_name in res.items():
            for name, entries in by_name.items():
                out["%s:%s" % (str(rtype).lower(), name)] = len(entries)
        if len(out) != len(resources):
            raise OpFailed("described %s of %d resources" % (sorted(out), len(resources)))
        return {"entries": out}


# ---------------------------------------------------------------------- aiokafka


def run_async(coro_fn):
    """Decorator: an async op_ method runs in its own event loop."""

    def wrapper(self, dl):
        return asyncio.run(asyncio.wait_for(coro_fn(self, dl), dl.left() + 5))

    return wrapper


class AioKafka(Driver):
    def __init__(self, args):
        super().__init__(args)
        # aiokafka reports group protocol errors only in its log: keep them
        # for the failure message.
        import logging

        self.client_log = []
        driver = self

        class Keep(logging.Handler):
            def emit(self, record):
                driver.client_log.append(record.getMessage())

        handler = Keep(logging.WARNING)
        logging.getLogger("aiokafka").addHandler(handler)
        logging.basicConfig(level=logging.WARNING)

    def base(self):
        return {"bootstrap_servers": self.args.bootstrap}

    def versions(self):
        import aiokafka

        return {"aiokafka": aiokafka.__version__}

    @run_async
    async def op_metadata(self, dl):
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(**self.base())
        await producer.start()
        try:
            await producer.partitions_for(self.topic("produce-acksall"))
            cluster = producer.client.cluster
            brokers = [{"id": b.nodeId, "host": b.host, "port": b.port} for b in cluster.brokers()]
            controller = cluster.controller
            return {"brokers": brokers, "controller_id": controller.nodeId if controller else None}
        finally:
            await producer.stop()

    def produce(
        self, topic, values, dl, acks, idempotence, compression, while_open=None, one_per_batch=False, linger_ms=5
    ):
        async def main():
            data = await self.aproduce(
                topic, values, dl, acks, idempotence, compression, keep_open=True, linger_ms=linger_ms
            )
            try:
                # read_back runs its own event loop: run it in a thread.
                await asyncio.get_running_loop().run_in_executor(None, while_open)
            finally:
                await data.pop("producer").stop()
            return data

        return asyncio.run(main())

    async def aproduce(
        self, topic, values, dl, acks, idempotence, compression, keep_open=False, one_per_batch=False, linger_ms=5
    ):
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            acks=acks if acks == "all" else int(acks),
            enable_idempotence=idempotence,
            compression_type=None if compression == "none" else compression,
            linger_ms=linger_ms,
            request_timeout_ms=int(dl.left() * 1000),
            **self.base(),
        )
        await producer.start()
        try:
            futures = []
            for v in values:
                futures.append(await producer.send(topic, key=v.encode(), value=v.encode()))
                if one_per_batch:
                    await futures[-1]
            await asyncio.wait_for(asyncio.gather(*futures), dl.left())
        except BaseException:
            await producer.stop()
            raise
        if keep_open:
            return {"acknowledged": len(futures), "producer": producer}
        await producer.stop()
        return {"acknowledged": len(futures)}

    def consumer(self, *topics, group=None, **extra):
        from aiokafka import AIOKafkaConsumer

        conf = dict(self.base())
        conf.update(
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=self.session_ms,
            max_poll_interval_ms=self.max_poll_ms,
            rebalance_timeout_ms=self.max_poll_ms,
            heartbeat_interval_ms=self.heartbeat_ms,
        )
        conf.update(extra)
        return AIOKafkaConsumer(*topics, **conf)

    def read_back(self, topic, count, dl, read_committed=False):
        return asyncio.run(asyncio.wait_for(self.aread_back(topic, count, dl, read_committed), dl.left() + 5))

    async def aread_back(self, topic, count, dl, read_committed):
        from aiokafka import TopicPartition

        iso = "read_committed" if read_committed else "read_uncommitted"
        consumer = self.consumer(isolation_level=iso)
        await consumer.start()
        got = []
        try:
            parts = None
            while not parts and not dl.passed():
                parts = consumer.partitions_for_topic(topic)
                if not parts:
                    await consumer._client.force_metadata_update()
                    parts = consumer.partitions_for_topic(topic)
                if not parts:
                    await asyncio.sleep(0.2)
            if not parts:
                raise OpFailed("topic %s not in metadata" % topic)
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while len(got) < count and not dl.passed():
                batches = await consumer.getmany(timeout_ms=200)
                for msgs in batches.values():
                    got.extend(m.value.decode() for m in msgs)
        finally:
            await consumer.stop()
        return got

    def op_group_rebalance(self, dl):
        from aiokafka import ConsumerRebalanceListener

        topic, group = self.topic("group-rebalance"), self.topic("group-rebalance") + ".g"
        driver = self

        class Member(ConsumerRebalanceListener):
            """One member in its own thread and event loop, as two applications
            would run.  (In one loop the leader's SyncGroup always goes out
            before the follower's, and the mock answers a follower's SyncGroup
            that arrives after the leader's with INVALID_REQUEST.)"""

            def __init__(self):
                self.assigned, self.seen, self.errors = [], [], []
                self.commands = queue.Queue()
                self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
                self.thread.start()

            async def on_partitions_revoked(self, revoked):
                self.assigned = []

            async def on_partitions_assigned(self, parts):
                self.assigned = sorted(tp.partition for tp in parts)

            async def _run(self):
                consumer = driver.consumer(group=group)
                consumer.subscribe([topic], listener=self)
                try:
                    await consumer.start()
                except Exception as exc:
                    self.errors.append("start: %r" % exc)
                while True:
                    try:
                        command, done = self.commands.get_nowait()
                    except queue.Empty:
                        command = None
                    if command is not None:
                        try:
                            if command == "commit":
                                await consumer.commit()  # the positions reached
                            if command == "close":
                                await asyncio.wait_for(consumer.stop(), 10)  # LeaveGroup
                                return
                        except Exception as exc:
                            self.errors.append("%s: %r" % (command, exc))
                            if command == "close":
                                return
                        finally:
                            done.set()
                    try:
                        batches = await asyncio.wait_for(consumer.getmany(timeout_ms=100), 5)
                        for tp, msgs in batches.items():
                            self.seen.extend((tp.partition, m.value.decode()) for m in msgs)
                    except Exception as exc:
                        self.errors.append("poll: %r" % exc)
                        await asyncio.sleep(0.2)

            def call(self, command):
                done = threading.Event()
                self.commands.put((command, done))
                if not done.wait(dl.left() + 10):
                    raise OpFailed("member did not %s in time" % command)

        members = {"A": Member(), "B": Member()}
        t0, phases = time.monotonic(), {}

        def mark(name):
            phases[name] = round(time.monotonic() - t0, 2)

        def failure(text):
            errors = [e for m in members.values() for e in m.errors]
            return OpFailed("%s; client errors: %s; client log: %s" % (text, errors[-3:], "; ".join(self.client_log[-3:])))

        try:
            while True:
                a, b = members["A"].assigned, members["B"].assigned
                if a and b and sorted(a + b) == [0, 1, 2, 3]:
                    break
                if dl.passed():
                    raise failure("two members never split the 4 partitions: A=%s B=%s" % (a, b))
                time.sleep(0.05)
            split = {n: list(m.assigned) for n, m in members.items()}
            mark("split")
            values1 = values_for("group-1")
            asyncio.run(self.aproduce(topic, values1, dl, "all", False, "none"))
            while sum(len(m.seen) for m in members.values()) < len(values1) and not dl.passed():
                time.sleep(0.05)
            self.check_group_phase1({n: list(m.seen) for n, m in members.items()}, values1, split)
            for m in members.values():
                m.call("commit")
            mark("phase1")
            members.pop("B").call("close")
            mark("left")
            while members["A"].assigned != [0, 1, 2, 3]:
                if dl.passed():
                    raise failure("remaining member never took all partitions: %s" % members["A"].assigned)
                time.sleep(0.05)
            mark("taken-over")
            members["A"].seen = []
            values2 = values_for("group-2")
            asyncio.run(self.aproduce(topic, values2, dl, "all", False, "none"))
            while len(members["A"].seen) < len(values2) and not dl.passed():
                time.sleep(0.05)
            expect_values([v for _, v in members["A"].seen], values2, "after the rebalance (resumed at the commits)")
            mark("phase2")
            errors = [e for m in members.values() for e in m.errors][:5]
            return {"split": split, "client_errors": errors, "phases": phases}
        finally:
            for m in members.values():
                m.call("close")

    @run_async
    async def op_commit_restart(self, dl):
        from aiokafka import TopicPartition

        topic, group = self.topic("commit-restart"), self.topic("commit-restart") + ".g"
        tp = TopicPartition(topic, 0)
        values = values_for("commit")
        await self.aproduce(topic, values, dl, "all", False, "none", one_per_batch=True)

        async def consume(consumer, n):
            got = []
            while len(got) < n and not dl.passed():
                batches = await consumer.getmany(timeout_ms=200, max_records=n - len(got))
                for msgs in batches.values():
                    got.extend(m.value.decode() for m in msgs)
            return got

        first = self.consumer(topic, group=group)
        await first.start()
        try:
            got1 = await consume(first, 10)
            if got1 != values[:10]:
                raise OpFailed("first consumer read %s" % got1)
            await first.commit({tp: 10})
        finally:
            await first.stop()
        second = self.consumer(topic, group=group)
        await second.start()
        try:
            committed = await second.committed(tp)
            if committed != 10:
                raise OpFailed("committed offset read back as %s, expected 10" % committed)
            got2 = await consume(second, 10)
        finally:
            await second.stop()
        if got2 != values[10:]:
            raise OpFailed("restarted consumer read %s, expected %s..." % (got2[:3], values[10:13]))
        return {"committed": committed}

    @run_async
    async def op_txn_commit_abort(self, dl):
        from aiokafka import AIOKafkaProducer

        topic = self.topic("txn-commit-abort")
        producer = AIOKafkaProducer(transactional_id=topic + ".tx", linger_ms=5, **self.base())
        await producer.start()  # InitProducerId with the transactional id
        try:
            await producer.begin_transaction()
            for v in values_for("txn-aborted", COUNT // 2):
                await producer.send(topic, key=v.encode(), value=v.encode())
            await producer.abort_transaction()
            await producer.begin_transaction()
            futures = [
                await producer.send(topic, key=v.encode(), value=v.encode())
                for v in values_for("txn-committed", COUNT // 2)
            ]
            await producer.commit_transaction()
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        return {}

    async def aadmin(self):
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(**self.base())
        await admin.start()
        return admin

    @run_async
    async def op_admin_describe_cluster(self, dl):
        admin = await self.aadmin()
        try:
            res = await admin.describe_cluster()
        finally:
            await admin.close()
        brokers = [{"id": b["node_id"], "host": b["host"], "port": b["port"]} for b in res["brokers"]]
        return {"brokers": brokers, "controller_id": res.get("controller_id")}

    @run_async
    async def op_admin_create_topic(self, dl):
        from aiokafka.admin import NewTopic

        admin = await self.aadmin()
        name = "%s.%s" % (self.tag, CREATED_TOPIC)
        try:
            resp = await admin.create_topics([NewTopic(name, CREATED_PARTITIONS, 1)])
            errors = [(t[0], t[1]) for t in resp.topic_errors if t[1] != 0]
            if errors:
                raise OpFailed("CreateTopics errors %s" % errors)
            while True:
                topics = await admin.describe_topics([name])
                t = topics[0] if topics else {}
                if t.get("error_code", 0) == 0 and len(t.get("partitions", [])) == CREATED_PARTITIONS:
                    return {"partitions": CREATED_PARTITIONS}
                if dl.passed():
                    raise OpFailed("created topic not in metadata: %s" % topics)
                await asyncio.sleep(0.2)
        finally:
            await admin.close()

    @run_async
    async def op_admin_describe_configs(self, dl):
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        admin = await self.aadmin()
        try:
            cluster = await admin.describe_cluster()
            ids = sorted(b["node_id"] for b in cluster["brokers"])
            resources = [ConfigResource(ConfigResourceType.BROKER, str(i)) for i in ids]
            resources.append(ConfigResource(ConfigResourceType.TOPIC, self.topic("admin-describe-configs")))
            responses = await admin.describe_configs(resources)
        finally:
            await admin.close()
        out, errors = {}, []
        for resp in responses:
            for res in resp.resources:
                code, _msg, rtype, name, entries = res[0], res[1], res[2], res[3], res[4]
                if code != 0:
                    errors.append((rtype, name, code, _msg))
                out["%s:%s" % (rtype, name)] = len(entries)
        if errors or len(out) != len(resources):
            raise OpFailed("DescribeConfigs errors %s, described %s" % (errors, sorted(out)))
        return {"entries": out}


# -------------------------------------------------------------------------- kcat


class LineReader:
    """Collects a pipe's lines in a thread (so reading never blocks the driver)."""

    def __init__(self, stream):
        self.lines = queue.Queue()
        self.all = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def drain(self):
        out = []
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            self.all.append(line)
            out.append(line)
        return out


class KcatMember:
    """`kcat -G`: one consumer group member as a process.

    stdout: "<partition> <value>" per record; stderr: librdkafka's rebalance
    notes ("% Group G rebalanced ... assigned: T [0], T [1]").
    """

    ASSIGNED = re.compile(r"rebalanced .*assigned: (.*)$")

    def __init__(self, kcat, group, topic):
        self.topic, self.kcat = topic, kcat
        self.proc = subprocess.Popen(
            kcat.cmd(
                [
                    "-G",
                    group,
                    "-X",
                    "auto.offset.reset=earliest",
                    "-X",
                    "session.timeout.ms=%d" % kcat.session_ms,
                    "-X",
                    "max.poll.interval.ms=%d" % kcat.max_poll_ms,
                    "-X",
                    "heartbeat.interval.ms=%d" % kcat.heartbeat_ms,
                    "-X",
                    "auto.commit.interval.ms=200",
                    "-u",  # unbuffered: each record as it comes
                    "-f",
                    "%p %s\\n",
                    topic,
                ]
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=kcat.env,
        )
        self.out, self.err = LineReader(self.proc.stdout), LineReader(self.proc.stderr)
        self.assigned = []
        self.seen = []

    def poll(self):
        exited = self.proc.poll() is not None and self.proc.returncode != 0
        if exited:
            time.sleep(0.2)  # let the reader threads take its last lines
        for line in self.err.drain():
            sys.stderr.write("[kcat] %s\n" % line)
            self.kcat.last_stderr = (self.kcat.last_stderr + line + "\n")[-2000:]
            if "rebalanced" in line and "revoked" in line:
                self.assigned = []
            m = self.ASSIGNED.search(line)
            if m:
                self.assigned = sorted(int(p) for p in re.findall(r"\[(\d+)\]", m.group(1)))
        for line in self.out.drain():
            part, _, value = line.partition(" ")
            self.seen.append((int(part), value))
        if exited:
            raise OpFailed("kcat -G exited rc=%d" % self.proc.returncode)

    def stop(self):
        """SIGINT: kcat closes the consumer (final commit, LeaveGroup)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        time.sleep(0.1)
        self.poll()


class Kcat(Driver):
    def __init__(self, args):
        super().__init__(args)
        self.path = shutil.which("kcat")
        if self.path is None:
            raise SystemExit("compat_client: kcat not found on PATH")
        self.last_stderr = ""
        self.env = dict(os.environ)
        if args.kcat_libdir:
            self.env["LD_LIBRARY_PATH"] = args.kcat_libdir

    def cmd(self, args):
        return [self.path, "-b", self.args.bootstrap] + list(args)

    def run_kcat(self, args, dl, input_text=None):
        try:
            res = subprocess.run(
                self.cmd(args), input=input_text, capture_output=True, text=True, env=self.env, timeout=dl.left()
            )
        except subprocess.TimeoutExpired as exc:
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            self.last_stderr = err
            raise OpFailed("kcat timed out: %s" % err[-500:])
        sys.stderr.write(res.stderr)
        if res.stderr.strip():
            self.last_stderr = res.stderr
        return res

    def versions(self):
        res = subprocess.run([self.path, "-V"], capture_output=True, text=True, env=self.env, timeout=10)
        text = res.stdout + res.stderr
        kcat = re.search(r"^Version (\S+)", text, re.M)
        lib = re.search(r"librdkafka (?:version )?(\S+)", text)
        return {"kcat": kcat.group(1) if kcat else "?", "librdkafka": lib.group(1) if lib else "?"}

    def op_metadata(self, dl):
        res = self.run_kcat(["-L", "-J", "-m", str(int(dl.left()))], dl)
        if res.returncode != 0:
            raise OpFailed("kcat -L rc=%d: %s" % (res.returncode, res.stderr.strip()[-400:]))
        data = json.loads(res.stdout)
        brokers = []
        for b in data["brokers"]:
            host, port = b["name"].rsplit(":", 1)
            brokers.append({"id": b["id"], "host": host, "port": int(port)})
        return {"brokers": brokers, "controller_id": data.get("controllerid")}

    def produce(
        self, topic, values, dl, acks, idempotence, compression, while_open=None, one_per_batch=False, linger_ms=5
    ):
        args = ["-P", "-t", topic, "-K", "\t", "-X", "acks=%s" % acks, "-X", "linger.ms=%d" % linger_ms]
        args += ["-X", "enable.idempotence=%s" % str(idempotence).lower(), "-z", compression]
        args += ["-X", "message.timeout.ms=%d" % int(dl.left() * 1000 - 1000)]
        if one_per_batch:
            args += ["-X", "batch.num.messages=1"]
        # kcat reads stdin to its end before it produces, so it cannot stay
        # connected while the records are read back: it exits first.
        res = self.run_kcat(args, dl, input_text="".join("%s\t%s\n" % (v, v) for v in values))
        # kcat exits non-zero when a message is not delivered; delivery errors
        # along the way are "% ERROR" lines.
        # With acks=0 nothing is acknowledged: the read-back is the judge.
        if res.returncode != 0 or ("ERROR" in res.stderr and acks != "0"):
            raise OpFailed("kcat -P rc=%d: %s" % (res.returncode, res.stderr.strip()[-400:]))
        if while_open:
            while_open()
        return {}

    def read_back(self, topic, count, dl, read_committed=False):
        args = ["-C", "-t", topic, "-o", "beginning", "-e", "-c", str(count), "-q", "-f", "%s\\n"]
        if read_committed:
            args += ["-X", "isolation.level=read_committed"]
        got = []
        while True:
            try:
                res = self.run_kcat(args, Deadline(min(dl.left(), 10)))
            except OpFailed:
                return got
            got = res.stdout.splitlines()
            # rc != 0: kcat gave up (no broker usable), retrying will not help.
            if res.returncode != 0 or len(got) >= count or dl.passed():
                return got
            time.sleep(0.3)

    def op_group_rebalance(self, dl):
        topic, group = self.topic("group-rebalance"), self.topic("group-rebalance") + ".g"
        members = {name: KcatMember(self, group, topic) for name in ("A", "B")}

        def poll():
            for m in members.values():
                m.poll()
            time.sleep(0.05)

        try:
            while True:
                poll()
                a, b = members["A"].assigned, members["B"].assigned
                if a and b and sorted(a + b) == [0, 1, 2, 3]:
                    break
                if dl.passed():
                    raise OpFailed("two members never split the 4 partitions: A=%s B=%s" % (a, b))
            split = {n: m.assigned for n, m in members.items()}
            values1 = values_for("group-1")
            self.produce(topic, values1, dl, "all", False, "none")
            while sum(len(m.seen) for m in members.values()) < len(values1) and not dl.passed():
                poll()
            self.check_group_phase1({n: m.seen for n, m in members.items()}, values1, split)
            # kcat commits by auto-commit only (every 200 ms here): let both
            # members commit what they consumed before one leaves.
            deadline_commit = time.monotonic() + 1.0
            while time.monotonic() < deadline_commit:
                poll()
            members.pop("B").stop()  # final commit, LeaveGroup
            while members["A"].assigned != [0, 1, 2, 3]:
                if dl.passed():
                    raise OpFailed("remaining member never took all partitions: %s" % members["A"].assigned)
                poll()
            members["A"].seen = []
            values2 = values_for("group-2")
            self.produce(topic, values2, dl, "all", False, "none")
            got2 = lambda: {v for _, v in members["A"].seen}  # noqa: E731
            while not set(values2) <= got2() and not dl.passed():
                poll()
            # kcat only auto-commits, and the mock refuses the commit a member
            # sends while the group rebalances (measured without kafka-edge
            # too), so kcat is at-least-once here: every new record, and
            # nothing that was never produced.
            missing = sorted(set(values2) - got2())
            unknown = sorted(got2() - set(values1) - set(values2))
            if missing or unknown:
                raise OpFailed("after the rebalance: missing %s, unknown %s" % (missing[:5], unknown[:5]))
            return {"split": split, "redelivered": len(got2() & set(values1))}
        finally:
            for m in members.values():
                m.stop()

    def op_commit_restart(self, dl):
        topic, group = self.topic("commit-restart"), self.topic("commit-restart") + ".g"
        values = values_for("commit")
        self.produce(topic, values, dl, "all", False, "none", one_per_batch=True)
        args = ["-G", group, "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=%d" % self.session_ms]
        args += ["-X", "max.poll.interval.ms=%d" % self.max_poll_ms, "-c", "10", "-q", "-f", "%s\\n", topic]
        # -c 10: stop after 10 records; closing commits the offsets consumed.
        first = self.run_kcat(args, dl)
        got1 = first.stdout.splitlines()
        if first.returncode != 0 or got1 != values[:10]:
            raise OpFailed("first kcat consumer rc=%d read %s" % (first.returncode, got1))
        second = self.run_kcat(args, dl)
        got2 = second.stdout.splitlines()
        if second.returncode != 0 or got2 != values[10:]:
            raise OpFailed("restarted kcat consumer rc=%d read %s, expected %s..." % (second.returncode, got2[:3], values[10:13]))
        return {}


# ------------------------------------------------------------------------- main

DRIVERS = {"confluent": Confluent, "kafkapython": KafkaPython, "aiokafka": AioKafka, "kcat": Kcat}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lib", choices=sorted(DRIVERS))
    parser.add_argument("--bootstrap", default="")
    parser.add_argument("--tag", default="compat")
    parser.add_argument("--ops", default="")
    parser.add_argument(
        "--group-timing", default="3000,3000,500", help="session.timeout.ms,max.poll.interval.ms,heartbeat.interval.ms"
    )
    parser.add_argument("--api-version", default=None, help="kafka-python api_version pin, e.g. 2.3")
    parser.add_argument("--kcat-libdir", default=None, help="kcat: directory put on LD_LIBRARY_PATH")
    parser.add_argument("--versions", action="store_true", help="print the library versions and exit")
    args = parser.parse_args()
    driver = DRIVERS[args.lib](args)
    if args.versions:
        print(json.dumps(driver.versions(), sort_keys=True))
        return
    driver.run([op for op in args.ops.split(",") if op])


if __name__ == "__main__":
    main()
