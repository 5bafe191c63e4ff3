"""The compatibility scenario: operations, topics and values, shared by the
harness (compat_matrix.py) and the Python driver (compat_client.py).

The kafkajs driver (kafkajs/compat_kafkajs.js) implements the same scenario;
the numbers it needs are passed to it on its command line (see
compat_matrix.driver_command), so this file stays the single source.

Every operation of one driver run uses its own topic, named "<tag>.<op>"
(see topic_for); the harness creates those topics before the run, with the
partition counts below, because tansu has no auto-creation and the mock has
no CreateTopics.
"""

# (operation, what it proves), in matrix order.
OPERATIONS = [
    ("metadata", "Metadata: every broker at a gateway address"),
    ("produce-acks0", "produce acks=0 (one request), then read back every value"),
    ("produce-acks1", "produce acks=1, every delivery acknowledged, read back"),
    ("produce-acksall", "produce acks=all, every delivery acknowledged, read back"),
    ("produce-idempotent", "idempotent producer (InitProducerId, acks=all), read back"),
    ("consume-beginning", "a fresh consumer reads a 3-partition topic from the beginning"),
    ("group-rebalance", "two members split 4 partitions; one leaves, the other takes all and resumes at the commits"),
    ("commit-restart", "commit after 10 of 20 records; a restarted consumer resumes at offset 10"),
    ("txn-commit-abort", "transactional producer: begin, produce, abort; begin, produce, commit"),
    ("txn-read-committed", "read_committed consumer sees the committed records and no aborted one"),
    ("compress-gzip", "produce gzip, read back"),
    ("compress-snappy", "produce snappy, read back"),
    ("compress-lz4", "produce lz4, read back"),
    ("compress-zstd", "produce zstd, read back"),
    ("admin-describe-cluster", "admin describe cluster: brokers and controller at gateway addresses"),
    ("admin-create-topic", "admin create topic (2 partitions), then seen in metadata"),
    ("admin-describe-configs", "admin describe configs of every broker (routed to that broker) and of a topic"),
]
OPERATION_NAMES = [op for op, _ in OPERATIONS]

# Records per produce step.
COUNT = 20

# Topic of each operation: (operation whose topic it uses, partitions).
# consume-beginning re-reads what produce-acksall wrote; txn-read-committed
# reads what txn-commit-abort wrote (one partition, so aborted records come
# before the committed ones and cannot be missed).
TOPICS = {
    # acks=0: one partition, and the records in one request.  The mock and tansu
    # answer acks=0 requests (the protocol sends no response); the gateway drops
    # such answers and keeps the connection (test_acks0.py pins that down); this
    # row checks the rest of the path.
    "produce-acks0": 1,
    "produce-acks1": 3,
    "produce-acksall": 3,
    "produce-idempotent": 3,
    "group-rebalance": 4,
    "commit-restart": 1,
    "txn-commit-abort": 1,
    "compress-gzip": 3,
    "compress-snappy": 3,
    "compress-lz4": 3,
    "compress-zstd": 3,
}
TOPIC_OF = {
    "consume-beginning": "produce-acksall",
    "txn-read-committed": "txn-commit-abort",
    "admin-describe-configs": "produce-acksall",
}
# admin-create-topic creates "<tag>.created" itself.
CREATED_TOPIC = "created"
CREATED_PARTITIONS = 2

# Consumer group timing per broker: (session.timeout.ms, max.poll.interval.ms
# = rebalance timeout, heartbeat.interval.ms).  The mock completes a
# rebalance only when every member rejoined or the rebalance timeout passed
# (shared TESTING.md), so short timeouts keep its group steps to seconds.
# tansu 0.6.0 keeps rebalancing a two-member group whose session timeout is
# 3 s (measured without a gateway too); 10 s is stable. Apache Kafka's classic
# groups rebalance when members join or leave (no initial delay in the tests'
# clusters); its session timeout must be at least 6 s
# (group.min.session.timeout.ms).
GROUP_TIMING = {
    "kafka": (10000, 10000, 500),
    "kafka39": (10000, 10000, 500),
    "mock": (3000, 3000, 500),
    "tansu": (10000, 10000, 500),
}

# Seconds each operation may take inside a driver (the harness adds a margin).
OP_DEADLINE = {"group-rebalance": 75, "commit-restart": 35}
DEFAULT_OP_DEADLINE = 25


def topic_for(tag, op):
    return "%s.%s" % (tag, TOPIC_OF.get(op, op))


def values_for(prefix, count=COUNT):
    """The values (and keys) a produce step sends: "<prefix>-000", ..."""
    return ["%s-%03d" % (prefix, i) for i in range(count)]


def deadline_of(op):
    return OP_DEADLINE.get(op, DEFAULT_OP_DEADLINE)
