#!/usr/bin/env python3
"""One Kafka client operation per process, result as JSON on stdout.

The tests run every client operation as a subprocess (with a hard timeout),
so that a client that hangs cannot hang the suite, and so that the same code
runs unchanged inside a network namespace (`ip netns exec NS python3 ...`).

    kclient.py LIB --bootstrap HOST:PORT [--api-version 2.3] [--deadline S] COMMAND ...

LIB is `confluent` (confluent-kafka / librdkafka) or `kafkapython` (kafka-python).

Commands (all print one JSON object as the last stdout line):
    metadata                         brokers from Metadata (and DescribeCluster)
    produce --topic T --prefix P --count N [--value-size B] [--compression C]
            [--transactional-id ID [--abort-first]]
                                     acks=all + idempotence; values P-00000 ...;
                                     exit 1 unless every message was acknowledged
    consume --topic T --count N [--group G]
                                     without --group: assign all partitions from
                                     the beginning; with --group: subscribe, consume,
                                     commit synchronously, read the commit back
    committed --topic T --group G    the group's committed offsets (OffsetFetch)
    describe-group --group G         the group's coordinator (DescribeGroups)

Exit code 0 means the operation fully succeeded; anything else is a failure
whose details are in the JSON ("error") and on stderr.
"""

import argparse
import hashlib
import json
import sys
import time
import traceback

# Consumer group settings that let the mock cluster's classic group protocol
# settle quickly (see TESTING.md); harmless for other brokers.
SESSION_TIMEOUT_MS = 6000
MAX_POLL_INTERVAL_MS = 8000
HEARTBEAT_INTERVAL_MS = 1000


def emit(obj, code=0):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()
    sys.exit(code)


def values_for(prefix, count, size=0):
    """The values a produce step sends: "P-00000", ... or, with size, padded to
    `size` bytes with hex digits that do not compress (so batches stay large)."""
    values = []
    for i in range(count):
        value = "%s-%05d" % (prefix, i)
        if size > len(value):
            pad, block = [], hashlib.sha256(value.encode()).hexdigest()
            need = size - len(value) - 1
            while sum(len(b) for b in pad) < need:
                pad.append(block)
                block = hashlib.sha256(block.encode()).hexdigest()
            value = value + "-" + "".join(pad)[:need]
        values.append(value)
    return values


# ---------------------------------------------------------------- confluent-kafka


class Confluent:
    def __init__(self, args):
        self.args = args
        self.base = {"bootstrap.servers": args.bootstrap}

    def _remaining(self, t_end):
        return max(0.1, t_end - time.monotonic())

    def metadata(self, t_end):
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(dict(self.base))
        md = admin.list_topics(timeout=self._remaining(t_end))
        brokers = [{"id": b.id, "host": b.host, "port": b.port} for b in md.brokers.values()]
        out = {"brokers": sorted(brokers, key=lambda b: b["id"]), "controller_id": md.controller_id}
        out["topics"] = {name: len(t.partitions) for name, t in md.topics.items()}
        # DescribeCluster (KIP-700) is a separate API carrying broker addresses.
        try:
            res = admin.describe_cluster(request_timeout=self._remaining(t_end)).result(timeout=self._remaining(t_end))
            out["describe_cluster"] = sorted(
                [{"id": n.id, "host": n.host, "port": n.port} for n in res.nodes], key=lambda b: b["id"]
            )
            if res.controller is not None:
                out["describe_cluster_controller"] = {
                    "id": res.controller.id,
                    "host": res.controller.host,
                    "port": res.controller.port,
                }
        except Exception as exc:  # reported, the test decides whether it matters
            out["describe_cluster_error"] = repr(exc)
        return out

    def produce(self, t_end):
        from confluent_kafka import Producer

        conf = dict(self.base)
        conf.update(
            {
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "compression.type": self.args.compression,
                # Bounded: a message that cannot be delivered fails instead of
                # being retried forever.
                "message.timeout.ms": int(max(1000, (t_end - time.monotonic()) * 1000 - 2000)),
            }
        )
        txn = self.args.transactional_id
        if txn:
            conf["transactional.id"] = txn
        producer = Producer(conf)
        delivered, errors, partitions = [], [], set()

        def on_delivery(err, msg):
            if err is not None:
                errors.append(str(err))
            else:
                delivered.append(msg.value().decode())
                partitions.add(msg.partition())

        def send(prefix):
            for value in values_for(prefix, self.args.count, self.args.value_size):
                producer.produce(self.args.topic, value=value.encode(), key=value.encode(), on_delivery=on_delivery)
                producer.poll(0)

        out = {}
        if txn:
            # Transactional: the transaction coordinator is found through
            # FindCoordinator(key_type=transaction).  With --abort-first an
            # aborted transaction of "ABORTED-..." values comes first, which a
            # read_committed consumer (librdkafka's default) must never see.
            producer.init_transactions(self._remaining(t_end))
            if self.args.abort_first:
                producer.begin_transaction()
                send("ABORTED")
                producer.flush(self._remaining(t_end))
                producer.abort_transaction(self._remaining(t_end))
                out["aborted"] = len(delivered)
                delivered.clear()
            producer.begin_transaction()
            send(self.args.prefix)
            producer.commit_transaction(self._remaining(t_end))
        else:
            send(self.args.prefix)
        left = producer.flush(self._remaining(t_end))
        out.update(
            {"delivered": len(delivered), "errors": errors[:5], "unflushed": left, "partitions": sorted(partitions)}
        )
        ok = len(delivered) == self.args.count and not errors and left == 0
        return out, ok

    def _consumer_conf(self, group):
        conf = dict(self.base)
        conf.update(
            {
                "group.id": group or "kclient-assign-only",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "max.poll.interval.ms": MAX_POLL_INTERVAL_MS,
                "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
            }
        )
        return conf

    def consume(self, t_end):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        args = self.args
        consumer = Consumer(self._consumer_conf(args.group))
        values, out = [], {}
        try:
            if args.group:
                consumer.subscribe([args.topic])
            else:
                md = consumer.list_topics(args.topic, timeout=self._remaining(t_end))
                parts = sorted(md.topics[args.topic].partitions)
                consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in parts])
            last_msgs = {}
            while len(values) < args.count and time.monotonic() < t_end:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    out.setdefault("poll_errors", []).append(str(msg.error()))
                    continue
                values.append(msg.value().decode())
                last_msgs[msg.partition()] = msg.offset()
            out["values"] = values
            if args.group and values:
                tps = [TopicPartition(args.topic, p, off + 1) for p, off in last_msgs.items()]
                consumer.commit(offsets=tps, asynchronous=False)
                got = consumer.committed(
                    [TopicPartition(args.topic, p) for p in last_msgs], timeout=self._remaining(t_end)
                )
                out["committed"] = {str(tp.partition): tp.offset for tp in got}
                out["expected_committed"] = {str(p): off + 1 for p, off in last_msgs.items()}
        finally:
            consumer.close()
        ok = len(values) == args.count
        if args.group:
            ok = ok and out.get("committed") == out.get("expected_committed")
        return out, ok

    def committed(self, t_end):
        """Committed offsets of --group for every partition of --topic (OffsetFetch)."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(self._consumer_conf(self.args.group))
        try:
            md = consumer.list_topics(self.args.topic, timeout=self._remaining(t_end))
            parts = sorted(md.topics[self.args.topic].partitions)
            got = consumer.committed(
                [TopicPartition(self.args.topic, p) for p in parts], timeout=self._remaining(t_end)
            )
            return {"committed": {str(tp.partition): tp.offset for tp in got}}
        finally:
            consumer.close()

    def describe_group(self, t_end):
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(dict(self.base))
        futs = admin.describe_consumer_groups([self.args.group], request_timeout=self._remaining(t_end))
        desc = futs[self.args.group].result(timeout=self._remaining(t_end))
        c = desc.coordinator
        return {"coordinator": {"id": c.id, "host": c.host, "port": c.port}, "state": str(desc.state)}


# ------------------------------------------------------------------ kafka-python


class KafkaPython:
    def __init__(self, args):
        self.args = args
        self.base = {"bootstrap_servers": args.bootstrap.split(",")}
        if args.api_version:
            self.base["api_version"] = tuple(int(x) for x in args.api_version.split("."))

    def metadata(self, t_end):
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(**self.base)
        try:
            cluster = admin.describe_cluster()
            brokers = [{"id": b["broker_id"], "host": b["host"], "port": b["port"]} for b in cluster["brokers"]]
            topics = admin.list_topics()
            return {
                "brokers": sorted(brokers, key=lambda b: b["id"]),
                "controller_id": cluster.get("controller_id"),
                "topics": {t: None for t in topics},
            }
        finally:
            admin.close()

    def produce(self, t_end):
        from kafka import KafkaProducer

        compression = None if self.args.compression == "none" else self.args.compression
        producer = KafkaProducer(
            acks="all", enable_idempotence=True, linger_ms=5, compression_type=compression, **self.base
        )
        delivered, errors, partitions = 0, [], set()
        try:
            futures = [
                producer.send(self.args.topic, value=v.encode(), key=v.encode())
                for v in values_for(self.args.prefix, self.args.count, self.args.value_size)
            ]
            producer.flush(timeout=max(0.1, t_end - time.monotonic()))
            for fut in futures:
                try:
                    md = fut.get(timeout=max(0.1, t_end - time.monotonic()))
                    delivered += 1
                    partitions.add(md.partition)
                except Exception as exc:
                    errors.append(repr(exc))
        finally:
            producer.close(timeout=5)
        out = {"delivered": delivered, "errors": errors[:5], "partitions": sorted(partitions)}
        return out, delivered == self.args.count and not errors

    def consume(self, t_end):
        from kafka import KafkaConsumer, TopicPartition
        from kafka.structs import OffsetAndMetadata

        args = self.args
        conf = dict(self.base)
        conf.update(
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        )
        out, values, last = {}, [], {}
        if args.group:
            consumer = KafkaConsumer(args.topic, group_id=args.group, **conf)
        else:
            consumer = KafkaConsumer(group_id=None, **conf)
        try:
            if not args.group:
                parts = None
                while parts is None and time.monotonic() < t_end:
                    parts = consumer.partitions_for_topic(args.topic)
                    if parts is None:
                        time.sleep(0.2)
                if not parts:
                    raise RuntimeError("no partitions for topic %s" % args.topic)
                tps = [TopicPartition(args.topic, p) for p in sorted(parts)]
                consumer.assign(tps)
                consumer.seek_to_beginning(*tps)
            while len(values) < args.count and time.monotonic() < t_end:
                batches = consumer.poll(timeout_ms=500)
                for tp, msgs in batches.items():
                    for m in msgs:
                        values.append(m.value.decode())
                        last[tp.partition] = m.offset
            out["values"] = values
            if args.group and values:
                offsets = {TopicPartition(args.topic, p): OffsetAndMetadata(off + 1, "", -1) for p, off in last.items()}
                consumer.commit(offsets)
                out["committed"] = {str(p): consumer.committed(TopicPartition(args.topic, p)) for p in last}
                out["expected_committed"] = {str(p): off + 1 for p, off in last.items()}
        finally:
            consumer.close()
        ok = len(values) == args.count
        if args.group:
            ok = ok and out.get("committed") == out.get("expected_committed")
        return out, ok

    def committed(self, t_end):
        raise NotImplementedError("committed is only implemented for confluent")

    def describe_group(self, t_end):
        raise NotImplementedError("describe-group is only implemented for confluent")


# ------------------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lib", choices=["confluent", "kafkapython"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--api-version", default=None, help="kafka-python api_version pin, e.g. 2.3")
    parser.add_argument("--deadline", type=float, default=30.0, help="seconds for the whole operation")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("metadata")
    p = sub.add_parser("produce")
    p.add_argument("--topic", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--value-size", type=int, default=0, help="pad values to this many bytes")
    p.add_argument("--compression", default="none", choices=["none", "gzip", "snappy", "lz4", "zstd"])
    p.add_argument("--transactional-id", default=None, help="confluent only: produce in a transaction")
    p.add_argument("--abort-first", action="store_true", help="with --transactional-id: abort one batch first")
    c = sub.add_parser("consume")
    c.add_argument("--topic", required=True)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--group", default=None)
    o = sub.add_parser("committed")
    o.add_argument("--topic", required=True)
    o.add_argument("--group", required=True)
    g = sub.add_parser("describe-group")
    g.add_argument("--group", required=True)
    args = parser.parse_args()

    t_end = time.monotonic() + args.deadline
    client = Confluent(args) if args.lib == "confluent" else KafkaPython(args)
    try:
        if args.cmd == "metadata":
            emit(client.metadata(t_end))
        elif args.cmd == "produce":
            out, ok = client.produce(t_end)
            emit(out, 0 if ok else 1)
        elif args.cmd == "consume":
            out, ok = client.consume(t_end)
            emit(out, 0 if ok else 1)
        elif args.cmd == "committed":
            emit(client.committed(t_end))
        elif args.cmd == "describe-group":
            emit(client.describe_group(t_end))
    except SystemExit:
        raise
    except Exception as exc:
        traceback.print_exc()
        emit({"error": repr(exc)}, 2)


if __name__ == "__main__":
    main()
