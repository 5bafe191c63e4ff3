#!/usr/bin/env python3
"""A producer and a consumer running while partition leaders move (test_leader_change.py).

    churn_client.py --bootstrap HOST:PORT --topic T --count N --rate R [--deadline S]

One process, confluent-kafka (librdkafka 2.16, a KIP-951-aware client): an
idempotent acks=all producer sends N values ("churn-00000", ...) at R per
second while a consumer (all partitions assigned from the beginning) reads
them back.  Both report librdkafka statistics every 100 ms and log Metadata
handling (debug=metadata) to stderr, so that everything the clients learned
about brokers and leaders is in the output.

Prints "started" once both clients exist, then one JSON object:
  delivered, delivery_errors, consumed (distinct values), duplicates, missing
  (not consumed), missing_from_log (delivered, yet not in the log read again), nodenames (every broker address either client knew), leaders (per
  partition: the leader ids the clients saw, in order), final_leaders.
"""

import argparse
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--deadline", type=float, default=60.0)
    args = parser.parse_args()
    t_end = time.monotonic() + args.deadline

    nodenames, leaders, final_leaders = set(), {}, {}

    def on_stats(text):
        stats = json.loads(text)
        for b in stats.get("brokers", {}).values():
            if b.get("nodeid", -1) >= 0:
                nodenames.add("%s/%d" % (b["nodename"], b["nodeid"]))
        for p, part in stats.get("topics", {}).get(args.topic, {}).get("partitions", {}).items():
            if int(p) < 0:
                continue
            seq = leaders.setdefault(p, [])
            if part["leader"] >= 0 and (not seq or seq[-1] != part["leader"]):
                seq.append(part["leader"])
            final_leaders[p] = part["leader"]

    common = {
        "bootstrap.servers": args.bootstrap,
        "statistics.interval.ms": 100,
        "stats_cb": on_stats,
        "debug": "metadata,topic",
        "topic.metadata.refresh.interval.ms": 1000,
    }
    producer = Producer(
        dict(
            common,
            **{
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": int(args.deadline * 1000),
            },
        )
    )
    consumer = Consumer(dict(common, **{"group.id": "churn-reader", "enable.auto.commit": False}))
    md = consumer.list_topics(args.topic, timeout=10)
    parts = sorted(md.topics[args.topic].partitions)
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in parts])
    print("started", flush=True)

    delivered, errors = [], []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append(msg.value().decode())

    values = ["churn-%05d" % i for i in range(args.count)]
    consumed, duplicates = set(), 0
    t0, sent = time.monotonic(), 0
    while time.monotonic() < t_end and (sent < len(values) or len(consumed) < len(values)):
        due = min(len(values), int((time.monotonic() - t0) * args.rate) + 1)
        while sent < due:
            producer.produce(args.topic, key=values[sent].encode(), value=values[sent].encode(), on_delivery=on_delivery)
            sent += 1
        producer.poll(0)
        msg = consumer.poll(0.01)
        if msg is not None and not msg.error():
            v = msg.value().decode()
            duplicates += v in consumed
            consumed.add(v)
    producer.flush(max(0.1, t_end - time.monotonic()))
    # One more statistics round, so the final leaders are the clients' latest view.
    t_stats = time.monotonic() + 0.5
    while time.monotonic() < t_stats:
        producer.poll(0.05)
        consumer.poll(0.05)
    consumer.close()
    in_log = reread(args.bootstrap, args.topic, parts, set(delivered), max(5.0, t_end - time.monotonic()))
    json.dump(
        {
            "sent": sent,
            "delivered": len(delivered),
            "delivery_errors": errors[:5],
            "consumed": len(consumed),
            "duplicates": duplicates,
            "missing": sorted(set(values) - consumed),
            "missing_from_log": sorted(set(delivered) - in_log),
            "nodenames": sorted(nodenames),
            "leaders": leaders,
            "final_leaders": final_leaders,
        },
        sys.stdout,
        sort_keys=True,
    )
    sys.stdout.write("\n")


def reread(bootstrap, topic, parts, wanted, timeout):
    """The topic read again from the beginning by a fresh consumer once the moves are over:
    the values the log holds. A delivered value missing here was lost by the cluster (or
    acknowledged wrongly); one missing only from the live consumer was skipped by it."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "churn-reread", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    found, t_end = set(), time.monotonic() + timeout
    while time.monotonic() < t_end and not wanted <= found:
        msg = consumer.poll(0.1)
        if msg is not None and not msg.error():
            found.add(msg.value().decode())
    consumer.close()
    return found


if __name__ == "__main__":
    main()
