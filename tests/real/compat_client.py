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
    HEARTBEAT_INTERVAL_MS,
    MAX_POLL_INTERVAL_MS,
    SESSION_TIMEOUT_MS,
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

    def topic(self, op):
        return topic_for(self.tag, op)

    # Each produce-like operation: produce, then read back from the beginning.
    def run_produce(self, op, dl):
        acks, idempotence, compression = PRODUCE[op]
        values = values_for(op)
        data = self.produce(self.topic(op), values, dl, acks=acks, idempotence=idempotence, compression=compression)
        got = self.read_back(self.topic(op), len(values), dl)
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

    def check_group_phase1(self, seen, values1):
        """Both members consumed, each only from its own partitions, together everything."""
        for name in ("A", "B"):
            if not seen[name]:
                raise OpFailed("member %s consumed nothing of the first batch" % name)
        expect_values([v for _, v in seen["A"] + seen["B"]], values1, "first batch over both members")

    def run(self, ops):
        for op in ops:
            t0 = time.monotonic()
            dl = Deadline(deadline_of(op))
            out = {"op": op}
            try:
                if op in PRODUCE:
                    data = self.run_produce(op, dl)
                else:
                    data = getattr(self, "op_" + op.replace("-", "_"))(dl)
                out.update(ok=True, data=data or {})
            except OpFailed as exc:
                out.update(ok=False, error=str(exc))
            except Exception as exc:  # the client library's own error
                traceback.print_exc()
                out.update(ok=False, error="%s: %s" % (type(exc).__name__, exc))
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

        return {"confluent-kafka": confluent_kafka.version()[0], "librdkafka": confluent_kafka.libversion()[0]}

    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient(self.conf())

    def op_metadata(self, dl):
        md = self.admin().list_topics(timeout=dl.left())
        brokers = [{"id": b.id, "host": b.host, "port": b.port} for b in md.brokers.values()]
        return {"brokers": brokers, "controller_id": md.controller_id}

    def produce(self, topic, values, dl, acks, idempotence, compression, transactional_id=None):
        from confluent_kafka import Producer

        conf = self.conf(
            **{
                "acks": acks,
                "enable.idempotence": idempotence,
                "compression.type": compression,
                "linger.ms": 5,
                "message.timeout.ms": int(dl.left() * 1000) - 1000,
            }
        )
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
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "max.poll.interval.ms": MAX_POLL_INTERVAL_MS,
                "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
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
                if msg.partition() not in assigned[name]:
                    raise OpFailed("member %s got partition %d outside %s" % (name, msg.partition(), assigned[name]))
                seen[name].append((msg.partition(), msg.value().decode()))
                members[name].commit(message=msg, asynchronous=False)

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
            self.check_group_phase1(seen, values1)
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
        self.produce(topic, values, dl, acks="all", idempotence=False, compression="none")
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
                out["%s:%s" % (res.restype_name.lower(), res.name)] = len(entries)
        return {"entries": out}


# ------------------------------------------------------------------ kafka-python


class KafkaPython(Driver):
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

    def produce(self, topic, values, dl, acks, idempotence, compression, transactional_id=None):
        from kafka import KafkaProducer

        producer = KafkaProducer(
            acks=acks if acks == "all" else int(acks),
            enable_idempotence=idempotence,
            compression_type=None if compression == "none" else compression,
            linger_ms=5,
            **self.base(),
        )
        try:
            futures = [producer.send(topic, key=v.encode(), value=v.encode()) for v in values]
            producer.flush(timeout=dl.left())
            acked = 0
            for fut in futures:
                fut.get(timeout=dl.left())
                acked += 1
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
            session_timeout_ms=SESSION_TIMEOUT_MS,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
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
        from kafka import ConsumerRebalanceListener, TopicPartition
        from kafka.structs import OffsetAndMetadata

        topic, group = self.topic("group-rebalance"), self.topic("group-rebalance") + ".g"
        assigned = {"A": [], "B": []}
        seen = {"A": [], "B": []}

        class Listener(ConsumerRebalanceListener):
            def __init__(self, name):
                self.name = name

            def on_partitions_revoked(self, revoked):
                assigned[self.name] = []

            def on_partitions_assigned(self, parts):
                assigned[self.name] = sorted(tp.partition for tp in parts)

        members = {}
        for name in ("A", "B"):
            members[name] = self.consumer(group=group)
            members[name].subscribe([topic], listener=Listener(name))

        def poll(name):
            c = members[name]
            for tp, msgs in c.poll(timeout_ms=100).items():
                for m in msgs:
                    if tp.partition not in assigned[name]:
                        raise OpFailed("member %s got partition %d outside %s" % (name, tp.partition, assigned[name]))
                    seen[name].append((tp.partition, m.value.decode()))
                if msgs:
                    c.commit({tp: OffsetAndMetadata(msgs[-1].offset + 1, "", -1)})

        try:
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
            self.check_group_phase1(seen, values1)
            members.pop("B").close()  # LeaveGroup
            assigned["B"] = []
            while assigned["A"] != [0, 1, 2, 3]:
                if dl.passed():
                    raise OpFailed("remaining member never took all partitions: %s" % assigned["A"])
                poll("A")
            seen["A"] = []
            values2 = values_for("group-2")
            self.produce(topic, values2, dl, acks="all", idempotence=False, compression="none")
            while len(seen["A"]) < len(values2) and not dl.passed():
                poll("A")
            expect_values([v for _, v in seen["A"]], values2, "after the rebalance (resumed at the commits)")
            committed = sum(members["A"].committed(TopicPartition(topic, p)) or 0 for p in range(4))
            return {"split": split, "committed_total": committed}
        finally:
            for c in members.values():
                c.close()

    def op_commit_restart(self, dl):
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        topic, group = self.topic("commit-restart"), self.topic("commit-restart") + ".g"
        tp = TopicPartition(topic, 0)
        values = values_for("commit")
        self.produce(topic, values, dl, acks="all", idempotence=False, compression="none")

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
            producer.abort_transaction(timeout_ms=int(dl.left() * 1000))
            producer.begin_transaction()
            futures = [producer.send(topic, key=v.encode(), value=v.encode()) for v in values_for("txn-committed", COUNT // 2)]
            producer.commit_transaction(timeout_ms=int(dl.left() * 1000))
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

    def produce(self, topic, values, dl, acks, idempotence, compression):
        return asyncio.run(self.aproduce(topic, values, dl, acks, idempotence, compression))

    async def aproduce(self, topic, values, dl, acks, idempotence, compression):
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            acks=acks if acks == "all" else int(acks),
            enable_idempotence=idempotence,
            compression_type=None if compression == "none" else compression,
            linger_ms=5,
            request_timeout_ms=int(dl.left() * 1000),
            **self.base(),
        )
        await producer.start()
        try:
            futures = [await producer.send(topic, key=v.encode(), value=v.encode()) for v in values]
            await asyncio.wait_for(asyncio.gather(*futures), dl.left())
        finally:
            await producer.stop()
        return {"acknowledged": len(futures)}

    def consumer(self, *topics, group=None, **extra):
        from aiokafka import AIOKafkaConsumer

        conf = dict(self.base())
        conf.update(
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
            rebalance_timeout_ms=MAX_POLL_INTERVAL_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
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

    @run_async
    async def op_group_rebalance(self, dl):
        from aiokafka import ConsumerRebalanceListener

        topic, group = self.topic("group-rebalance"), self.topic("group-rebalance") + ".g"
        assigned = {"A": [], "B": []}
        seen = {"A": [], "B": []}

        class Listener(ConsumerRebalanceListener):
            def __init__(self, name):
                self.name = name

            async def on_partitions_revoked(self, revoked):
                assigned[self.name] = []

            async def on_partitions_assigned(self, parts):
                assigned[self.name] = sorted(tp.partition for tp in parts)

        members = {}
        for name in ("A", "B"):
            members[name] = self.consumer(group=group)
            members[name].subscribe([topic], listener=Listener(name))
            await members[name].start()

        async def poll(name):
            c = members[name]
            batches = await c.getmany(timeout_ms=100)
            for tp, msgs in batches.items():
                for m in msgs:
                    if tp.partition not in assigned[name]:
                        raise OpFailed("member %s got partition %d outside %s" % (name, tp.partition, assigned[name]))
                    seen[name].append((tp.partition, m.value.decode()))
                if msgs:
                    await c.commit({tp: msgs[-1].offset + 1})

        try:
            while not (assigned["A"] and assigned["B"] and sorted(assigned["A"] + assigned["B"]) == [0, 1, 2, 3]):
                if dl.passed():
                    raise OpFailed("two members never split the 4 partitions: %s" % assigned)
                await asyncio.gather(poll("A"), poll("B"))
            split = dict(assigned)
            values1 = values_for("group-1")
            await self.aproduce(topic, values1, dl, "all", False, "none")
            while len(seen["A"]) + len(seen["B"]) < len(values1) and not dl.passed():
                await asyncio.gather(poll("A"), poll("B"))
            self.check_group_phase1(seen, values1)
            await members.pop("B").stop()  # LeaveGroup
            assigned["B"] = []
            while assigned["A"] != [0, 1, 2, 3]:
                if dl.passed():
                    raise OpFailed("remaining member never took all partitions: %s" % assigned["A"])
                await poll("A")
            seen["A"] = []
            values2 = values_for("group-2")
            await self.aproduce(topic, values2, dl, "all", False, "none")
            while len(seen["A"]) < len(values2) and not dl.passed():
                await poll("A")
            expect_values([v for _, v in seen["A"]], values2, "after the rebalance (resumed at the commits)")
            return {"split": split}
        finally:
            for c in members.values():
                await c.stop()

    @run_async
    async def op_commit_restart(self, dl):
        from aiokafka import TopicPartition

        topic, group = self.topic("commit-restart"), self.topic("commit-restart") + ".g"
        tp = TopicPartition(topic, 0)
        values = values_for("commit")
        await self.aproduce(topic, values, dl, "all", False, "none")

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
        from aiokafka.admin import ConfigResource, ConfigResourceType

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
        self.topic = topic
        self.proc = subprocess.Popen(
            kcat.cmd(
                [
                    "-G",
                    group,
                    "-X",
                    "auto.offset.reset=earliest",
                    "-X",
                    "session.timeout.ms=%d" % SESSION_TIMEOUT_MS,
                    "-X",
                    "max.poll.interval.ms=%d" % MAX_POLL_INTERVAL_MS,
                    "-X",
                    "heartbeat.interval.ms=%d" % HEARTBEAT_INTERVAL_MS,
                    "-X",
                    "auto.commit.interval.ms=200",
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
        for line in self.err.drain():
            sys.stderr.write("[kcat] %s\n" % line)
            if "rebalanced" in line and "revoked" in line:
                self.assigned = []
            m = self.ASSIGNED.search(line)
            if m:
                self.assigned = sorted(int(p) for p in re.findall(r"\[(\d+)\]", m.group(1)))
        for line in self.out.drain():
            part, _, value = line.partition(" ")
            if int(part) not in self.assigned:
                raise OpFailed("kcat member got partition %s outside %s" % (part, self.assigned))
            self.seen.append((int(part), value))

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
            raise OpFailed("kcat timed out: %s" % ((exc.stderr or b"")[-500:],))
        sys.stderr.write(res.stderr)
        return res

    def versions(self):
        res = subprocess.run([self.path, "-V"], capture_output=True, text=True, env=self.env, timeout=10)
        text = res.stdout + res.stderr
        kcat = re.search(r"kcat - .*? version (\S+)", text)
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

    def produce(self, topic, values, dl, acks, idempotence, compression):
        args = ["-P", "-t", topic, "-K", "\t", "-X", "acks=%s" % acks, "-X", "linger.ms=5"]
        args += ["-X", "enable.idempotence=%s" % str(idempotence).lower(), "-z", compression]
        args += ["-X", "message.timeout.ms=%d" % int(dl.left() * 1000 - 1000)]
        res = self.run_kcat(args, dl, input_text="".join("%s\t%s\n" % (v, v) for v in values))
        # kcat exits non-zero when a message is not delivered; delivery errors
        # along the way are "% ERROR" lines.
        if res.returncode != 0 or "ERROR" in res.stderr:
            raise OpFailed("kcat -P rc=%d: %s" % (res.returncode, res.stderr.strip()[-400:]))
        return {}

    def read_back(self, topic, count, dl, read_committed=False):
        args = ["-C", "-t", topic, "-o", "beginning", "-e", "-c", str(count), "-q", "-f", "%s\\n"]
        if read_committed:
            args += ["-X", "isolation.level=read_committed"]
        while True:
            res = self.run_kcat(args, dl)
            got = res.stdout.splitlines()
            if res.returncode == 0 and len(got) >= count:
                return got
            if dl.passed():
                raise OpFailed("kcat -C rc=%d read %d of %d: %s" % (res.returncode, len(got), count, res.stderr[-400:]))
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
            self.check_group_phase1({n: m.seen for n, m in members.items()}, values1)
            members.pop("B").stop()  # final commit, LeaveGroup
            while members["A"].assigned != [0, 1, 2, 3]:
                if dl.passed():
                    raise OpFailed("remaining member never took all partitions: %s" % members["A"].assigned)
                poll()
            members["A"].seen = []
            values2 = values_for("group-2")
            self.produce(topic, values2, dl, "all", False, "none")
            while len(members["A"].seen) < len(values2) and not dl.passed():
                poll()
            expect_values([v for _, v in members["A"].seen], values2, "after the rebalance (resumed at the commits)")
            return {"split": split}
        finally:
            for m in members.values():
                m.stop()

    def op_commit_restart(self, dl):
        topic, group = self.topic("commit-restart"), self.topic("commit-restart") + ".g"
        values = values_for("commit")
        self.produce(topic, values, dl, "all", False, "none")
        args = ["-G", group, "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=%d" % SESSION_TIMEOUT_MS]
        args += ["-X", "max.poll.interval.ms=%d" % MAX_POLL_INTERVAL_MS, "-c", "10", "-q", "-f", "%s\\n", topic]
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
