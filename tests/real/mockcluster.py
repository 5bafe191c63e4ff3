#!/usr/bin/env python3
"""Run librdkafka's in-memory mock Kafka cluster as a standalone process.

The confluent-kafka wheel bundles librdkafka (2.16 for confluent-kafka 2.16.1),
and that shared library exports the experimental ``rd_kafka_mock_*`` API
(see librdkafka's ``src/rdkafka_mock.h``).  This script loads it through
ctypes, creates an N-broker mock cluster (node ids 1..N, each broker on its
own TCP port) and keeps it alive until SIGTERM/SIGINT.

Output protocol (stdout, line based, flushed after every line):

    <bootstrap servers>        first line, e.g. 127.0.0.1:40001,127.0.0.1:40002

Optional control protocol on stdin (one command per line), so a test harness
can create topics while the cluster runs (the mock has no CreateTopics API):

    topic NAME PARTITIONS      ->  "ok topic NAME" or "err topic NAME CODE"
    leader TOPIC PARTITION ID  ->  "ok leader TOPIC PARTITION ID" (move the partition's
                                   leader to broker ID; the old leader then answers
                                   NOT_LEADER_OR_FOLLOWER)
    errors APIKEY CODE COUNT   ->  "ok errors APIKEY" (the next COUNT requests with that
                                   API key, to any broker, fail with error CODE)

End of stdin is not a stop signal (so `python3 mockcluster.py --brokers 3`
works from a shell and under a supervisor with stdin at /dev/null); only a
signal stops the cluster.

Usage:
    python3 mockcluster.py --brokers 3 [--topic NAME:PARTITIONS ...]
                           [--controller-id 1] [--rebalance-delay-ms MS]
"""

import argparse
import ctypes
import glob
import os
import signal
import sys
import threading


def find_librdkafka():
    """Return the path of the librdkafka bundled in the confluent-kafka wheel."""
    override = os.environ.get("KAFKA_EDGE_LIBRDKAFKA")
    if override:
        return override
    import confluent_kafka  # noqa: F401  (only to locate site-packages)

    site = os.path.dirname(os.path.dirname(os.path.abspath(confluent_kafka.__file__)))
    candidates = sorted(glob.glob(os.path.join(site, "confluent_kafka.libs", "librdkafka-*.so.1")))
    if not candidates:
        raise SystemExit("mockcluster: no librdkafka-*.so.1 in %s/confluent_kafka.libs" % site)
    return candidates[0]


class MockCluster:
    """Thin ctypes wrapper around rd_kafka_mock_cluster_new() and friends."""

    RD_KAFKA_PRODUCER = 0  # rd_kafka_type_t
    RD_KAFKA_CONF_OK = 0  # rd_kafka_conf_res_t

    def __init__(self, libpath, broker_count):
        lib = ctypes.CDLL(libpath)
        self.lib = lib
        vp, cp = ctypes.c_void_p, ctypes.c_char_p

        # Declare every signature we use so that 64-bit pointers survive.
        lib.rd_kafka_conf_new.restype = vp
        lib.rd_kafka_conf_new.argtypes = []
        lib.rd_kafka_conf_set.restype = ctypes.c_int
        lib.rd_kafka_conf_set.argtypes = [vp, cp, cp, cp, ctypes.c_size_t]
        lib.rd_kafka_new.restype = vp
        lib.rd_kafka_new.argtypes = [ctypes.c_int, vp, cp, ctypes.c_size_t]
        lib.rd_kafka_destroy.restype = None
        lib.rd_kafka_destroy.argtypes = [vp]
        lib.rd_kafka_mock_cluster_new.restype = vp
        lib.rd_kafka_mock_cluster_new.argtypes = [vp, ctypes.c_int]
        lib.rd_kafka_mock_cluster_destroy.restype = None
        lib.rd_kafka_mock_cluster_destroy.argtypes = [vp]
        lib.rd_kafka_mock_cluster_bootstraps.restype = cp
        lib.rd_kafka_mock_cluster_bootstraps.argtypes = [vp]
        lib.rd_kafka_mock_topic_create.restype = ctypes.c_int
        lib.rd_kafka_mock_topic_create.argtypes = [vp, cp, ctypes.c_int, ctypes.c_int]
        lib.rd_kafka_mock_set_controller_id.restype = None
        lib.rd_kafka_mock_set_controller_id.argtypes = [vp, ctypes.c_int32]
        lib.rd_kafka_mock_group_initial_rebalance_delay_ms.restype = None
        lib.rd_kafka_mock_group_initial_rebalance_delay_ms.argtypes = [vp, ctypes.c_int32]
        lib.rd_kafka_mock_partition_set_leader.restype = ctypes.c_int
        lib.rd_kafka_mock_partition_set_leader.argtypes = [vp, cp, ctypes.c_int32, ctypes.c_int32]
        lib.rd_kafka_mock_push_request_errors_array.restype = None
        lib.rd_kafka_mock_push_request_errors_array.argtypes = [
            vp,
            ctypes.c_int16,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_int),
        ]
        lib.rd_kafka_err2str.restype = cp
        lib.rd_kafka_err2str.argtypes = [ctypes.c_int]

        errstr = ctypes.create_string_buffer(512)
        conf = lib.rd_kafka_conf_new()
        # The handle only hosts the mock cluster; keep its own logging quiet.
        for key, value in ((b"log_level", b"3"),):
            if lib.rd_kafka_conf_set(conf, key, value, errstr, len(errstr)) != self.RD_KAFKA_CONF_OK:
                raise SystemExit("mockcluster: conf %s: %s" % (key, errstr.value.decode()))
        # rd_kafka_new takes ownership of conf on success.
        self.rk = lib.rd_kafka_new(self.RD_KAFKA_PRODUCER, conf, errstr, len(errstr))
        if not self.rk:
            raise SystemExit("mockcluster: rd_kafka_new: %s" % errstr.value.decode())
        self.mcluster = lib.rd_kafka_mock_cluster_new(self.rk, broker_count)
        if not self.mcluster:
            raise SystemExit("mockcluster: rd_kafka_mock_cluster_new failed")

    def set_controller_id(self, node_id):
        """Node id reported as controller in Metadata/DescribeCluster.

        Without it the mock reports a controller id that is no broker, and
        librdkafka's DescribeCluster admin call waits for a controller forever.
        """
        self.lib.rd_kafka_mock_set_controller_id(self.mcluster, int(node_id))

    def set_initial_rebalance_delay_ms(self, delay_ms):
        """Broker setting group.initial.rebalance.delay.ms for all groups."""
        self.lib.rd_kafka_mock_group_initial_rebalance_delay_ms(self.mcluster, int(delay_ms))

    def bootstraps(self):
        return self.lib.rd_kafka_mock_cluster_bootstraps(self.mcluster).decode()

    def create_topic(self, name, partitions, replication_factor=1):
        """Create a topic; returns (error code, error string)."""
        err = self.lib.rd_kafka_mock_topic_create(
            self.mcluster, name.encode(), int(partitions), int(replication_factor)
        )
        return err, self.lib.rd_kafka_err2str(err).decode()

    def set_leader(self, topic, partition, broker_id):
        """Move a partition's leader; returns (error code, error string)."""
        err = self.lib.rd_kafka_mock_partition_set_leader(self.mcluster, topic.encode(), int(partition), int(broker_id))
        return err, self.lib.rd_kafka_err2str(err).decode()

    def push_request_errors(self, api_key, code, count):
        """The next `count` requests with `api_key` fail with error `code`."""
        errors = (ctypes.c_int * count)(*([int(code)] * count))
        self.lib.rd_kafka_mock_push_request_errors_array(self.mcluster, int(api_key), count, errors)

    def destroy(self):
        if self.mcluster:
            self.lib.rd_kafka_mock_cluster_destroy(self.mcluster)
            self.mcluster = None
        if self.rk:
            self.lib.rd_kafka_destroy(self.rk)
            self.rk = None


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def serve_stdin(cluster, lock):
    """Handle control commands from stdin until EOF (see module docstring)."""
    for raw in sys.stdin:
        parts = raw.split()
        if not parts:
            continue
        if parts[0] == "topic" and len(parts) == 3:
            with lock:
                err, text = cluster.create_topic(parts[1], int(parts[2]))
            if err == 0:
                say("ok topic %s" % parts[1])
            else:
                say("err topic %s %d %s" % (parts[1], err, text))
        elif parts[0] == "leader" and len(parts) == 4:
            with lock:
                err, text = cluster.set_leader(parts[1], int(parts[2]), int(parts[3]))
            say(("ok leader %s %s %s" % tuple(parts[1:])) if err == 0 else "err leader %d %s" % (err, text))
        elif parts[0] == "errors" and len(parts) == 4:
            with lock:
                cluster.push_request_errors(int(parts[1]), int(parts[2]), int(parts[3]))
            say("ok errors %s" % parts[1])
        else:
            say("err unknown command: %s" % raw.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brokers", type=int, default=3, help="number of brokers (node ids 1..N)")
    parser.add_argument(
        "--topic", action="append", default=[], metavar="NAME:PARTITIONS", help="topic to create at start"
    )
    parser.add_argument("--controller-id", type=int, default=1, help="controller node id to report")
    parser.add_argument(
        "--rebalance-delay-ms",
        type=int,
        default=None,
        help="group.initial.rebalance.delay.ms (default: the mock's own default)",
    )
    args = parser.parse_args()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    cluster = MockCluster(find_librdkafka(), args.brokers)
    lock = threading.Lock()
    try:
        cluster.set_controller_id(args.controller_id)
        if args.rebalance_delay_ms is not None:
            cluster.set_initial_rebalance_delay_ms(args.rebalance_delay_ms)
        for spec in args.topic:
            name, _, parts = spec.partition(":")
            err, text = cluster.create_topic(name, int(parts or 1))
            if err != 0:
                raise SystemExit("mockcluster: topic %s: %s" % (name, text))
        say(cluster.bootstraps())
        threading.Thread(target=serve_stdin, args=(cluster, lock), daemon=True).start()
        while not stop.wait(1.0):
            pass
    finally:
        with lock:
            cluster.destroy()


if __name__ == "__main__":
    main()
