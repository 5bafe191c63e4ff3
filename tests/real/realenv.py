"""Building blocks of the real-client suite: processes, ports, clusters, gateway, netns.

Everything here is deliberately explicit and bounded:
  * every subprocess runs with a timeout (``run``) or is a ``ManagedProc`` that
    the owning fixture stops (SIGTERM, then SIGKILL of its own process group);
  * every wait loop has a deadline and fails with the relevant log excerpt;
  * a missing tool is a test failure (``require_tool``), never a skip.
"""

import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
PYTHON = sys.executable
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
KCLIENT = os.path.join(HERE, "kclient.py")
KPROBE = os.path.join(HERE, "kprobe.py")
MOCKCLUSTER = os.path.join(HERE, "mockcluster.py")
TCPFORWARD = os.path.join(HERE, "tcpforward.py")


# ------------------------------------------------------------------ tools


def require_tool(name):
    """Absolute path of an executable, or fail the test (never skip)."""
    path = shutil.which(name)
    if path is None and name == "tansu":
        candidate = os.path.expanduser("~/.cargo/bin/tansu")
        path = candidate if os.access(candidate, os.X_OK) else None
    if path is None:
        pytest.fail("required tool %r not found on PATH (install it: see .ci/run)" % name, pytrace=False)
    return path


def gateway_binary():
    """The kafka-edge binary: $KAFKA_EDGE_BIN or target/debug/kafka-edge."""
    path = os.environ.get("KAFKA_EDGE_BIN", "target/debug/kafka-edge")
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    if not os.access(path, os.X_OK):
        pytest.fail("kafka-edge binary not found at %s (build it, or set KAFKA_EDGE_BIN)" % path, pytrace=False)
    return path


def wheel_librdkafka():
    """The librdkafka bundled in the confluent-kafka wheel (2.16 for 2.16.1)."""
    import confluent_kafka

    site = os.path.dirname(os.path.dirname(os.path.abspath(confluent_kafka.__file__)))
    libs = sorted(glob.glob(os.path.join(site, "confluent_kafka.libs", "librdkafka-*.so.1")))
    if not libs:
        pytest.fail("confluent-kafka wheel has no bundled librdkafka in %s" % site, pytrace=False)
    return libs[0]


# ------------------------------------------------------------------ processes


def run(cmd, timeout, input_text=None, env=None, check=False):
    """Run a command to completion with a hard timeout.

    Returns a CompletedProcess; on timeout the whole process group is killed
    and returncode is set to -999 with a note in stderr, so callers can assert
    on it like on any other failure.
    """
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    try:
        out, err = proc.communicate(input_text, timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        rc = -999
        err = (err or "") + "\n[realenv.run: killed after %.0f s timeout]" % timeout
    result = subprocess.CompletedProcess(cmd, rc, out, err)
    if check and rc != 0:
        raise AssertionError("command failed (rc=%s): %s\n%s" % (rc, " ".join(cmd), describe(result)))
    return result


def describe(result, limit=3000):
    """Human-readable summary of a CompletedProcess for assertion messages."""
    return "rc=%s\ncmd: %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
        result.returncode,
        " ".join(result.args),
        (result.stdout or "")[-limit:],
        (result.stderr or "")[-limit:],
    )


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL if the test process dies (PR_SET_PDEATHSIG).

    Fixture teardown stops everything normally; this covers a pytest that was
    itself killed, so no broker or gateway outlives it.
    """
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _kill_group(proc, sig=signal.SIGKILL):
    """Signal the process group of a process we started with start_new_session."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


class ManagedProc:
    """A long-running process with its output in a log file.

    Started in its own session so that stop() can signal exactly the process
    group this suite created.
    """

    def __init__(self, name, cmd, logdir, env=None, stdin_pipe=False, stdout_pipe=False):
        self.name = name
        self.cmd = cmd
        self.log_path = os.path.join(logdir, "%s.log" % name)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._log,
            stderr=self._log,
            text=True,
            bufsize=1,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return ANSI_ESCAPE.sub("", f.read())
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def excerpt(self, lines=60):
        state = "running" if self.alive() else "exited rc=%s" % self.proc.returncode
        return "--- %s (%s), log %s, last %d lines ---\n%s" % (
            self.name,
            state,
            self.log_path,
            lines,
            self.log_tail(lines),
        )

    def stop(self, sig=signal.SIGTERM, grace=5.0):
        """Stop politely, then forcefully; always reaps the process."""
        if self.proc.poll() is None:
            _kill_group(self.proc, sig)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc, signal.SIGKILL)
                self.proc.wait(5)
        else:
            # The leader is gone; make sure no child of its group lingers.
            _kill_group(self.proc, signal.SIGKILL)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                try:
                    stream.close()
                except OSError:
                    pass
        self._log.close()
        return self.proc.returncode


def read_line(proc, timeout, what):
    """Read one stdout line from a ManagedProc started with stdout_pipe=True."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise AssertionError("timeout (%.0f s) waiting for %s\n%s" % (timeout, what, proc.excerpt()))
        line = proc.proc.stdout.readline()
    finally:
        sel.close()
    if not line:
        raise AssertionError("%s: stdout closed while waiting for %s\n%s" % (proc.name, what, proc.excerpt()))
    return line.strip()


# ------------------------------------------------------------------ ports


def port_is_free(ip, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, port))
            return True
        except OSError:
            return False


def free_port(ip="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def pick_port_base(ip, node_ids, avoid=()):
    """A base B such that B+id is free on ip for every node id.

    Chosen so that the base rule's whole block of ports (B to B+9999 by
    default, which the gateway checks against its own listen and admin ports
    at startup) stays below the kernel's ephemeral range (32768+), where the
    mock brokers' ports and the gateways' own listen ports come from.
    """
    top = max(node_ids)
    for _ in range(200):
        base = random.randrange(12000, 22700 - top)
        ports = [base + n for n in node_ids]
        if any(p in avoid for p in ports):
            continue
        if all(port_is_free(ip, p) for p in ports):
            return base
    raise AssertionError("no free port base on %s for node ids %s" % (ip, node_ids))


def can_connect(ip, port, timeout=0.5):
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# ------------------------------------------------------------------ clusters


class Cluster:
    """What the tests need to know about an upstream cluster."""

    kind = None
    # kafka-python api_version pin (None = let it negotiate).
    kafkapython_api_version = None

    def __init__(self, bootstrap, node_ids, advertised):
        self.bootstrap = bootstrap  # list of "host:port"
        self.node_ids = sorted(node_ids)
        # {node id: (host, port)} as the cluster itself advertises them.
        self.advertised = advertised

    def upstream_strings(self):
        """Textual host:port forms that must never reach a gateway client."""
        return sorted({"%s:%d" % hp for hp in self.advertised.values()} | set(self.bootstrap))

    def create_topic(self, name, partitions):
        raise NotImplementedError


class MockClusterProc(Cluster):
    """librdkafka's mock cluster via mockcluster.py (optionally in a netns)."""

    kind = "mock"
    # TESTING.md: kafka-python cannot decode the mock's ApiVersions v3 answer.
    kafkapython_api_version = "2.3"

    def __init__(self, logdir, brokers=3, prefix=(), env=None, name="mockcluster"):
        cmd = list(prefix) + [
            PYTHON,
            MOCKCLUSTER,
            "--brokers",
            str(brokers),
            "--controller-id",
            "1",
            # Elect a group leader as soon as the (single) member joined.
            "--rebalance-delay-ms",
            "0",
        ]
        self.proc = ManagedProc(name, cmd, logdir, env=env, stdin_pipe=True, stdout_pipe=True)
        self._control_lock = threading.Lock()
        line = read_line(self.proc, 20, "mock cluster bootstrap line")
        bootstrap = line.split(",")
        if len(bootstrap) != brokers:
            raise AssertionError("unexpected bootstrap line %r\n%s" % (line, self.proc.excerpt()))
        advertised = {}
        for i, hp in enumerate(bootstrap, start=1):  # mock node ids are 1..N in bootstrap order
            host, port = hp.rsplit(":", 1)
            advertised[i] = (host, int(port))
        super().__init__(bootstrap, list(advertised), advertised)

    def create_topic(self, name, partitions):
        self.control("topic %s %d" % (name, partitions), "ok topic %s" % name)

    def control(self, command, expect):
        """One command on mockcluster.py's stdin channel; its reply must be `expect`.

        Serialized: the compatibility matrix creates topics from several threads.
        """
        with self._control_lock:
            self.proc.proc.stdin.write(command + "\n")
            self.proc.proc.stdin.flush()
            reply = read_line(self.proc, 10, "reply to %r" % command)
        if reply != expect:
            raise AssertionError("mock cluster: %r answered %r" % (command, reply))

    def stop(self):
        return self.proc.stop()


class TansuProc(Cluster):
    """A single tansu broker (node id 111) with in-memory storage.

    On loopback by default (a free port on `host`); in a network namespace,
    `prefix` runs it (and its topic creation) there, on a fixed `port`, and
    `connect_check(ip, port)` probes readiness from inside.
    """

    kind = "tansu"
    NODE_ID = 111

    def __init__(self, logdir, host="127.0.0.1", port=None, prefix=(), connect_check=None, name="tansu"):
        self.tansu = require_tool("tansu")
        self.prefix = list(prefix)
        if port is None:
            port = free_port(host)
        url = "tcp://%s:%d" % (host, port)
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        self.proc = ManagedProc(
            name,
            self.prefix
            + [
                self.tansu,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            logdir,
            env=env,
        )
        self.url = url
        check = connect_check or can_connect
        if not wait_for(lambda: not self.proc.alive() or check(host, port), 30, 0.2):
            self.proc.stop()
            raise AssertionError("tansu did not listen on %s\n%s" % (url, self.proc.excerpt()))
        if not self.proc.alive():
            raise AssertionError("tansu exited\n%s" % self.proc.excerpt())
        hp = "%s:%d" % (host, port)
        super().__init__([hp], [self.NODE_ID], {self.NODE_ID: (host, port)})

    def create_topic(self, name, partitions):
        run(
            self.prefix
            + [self.tansu, "topic", "create", name, "--broker", self.url, "--partitions", str(partitions)],
            timeout=30,
            check=True,
        )

    def stop(self):
        return self.proc.stop()


# ------------------------------------------------------------------ gateway


class Gateway:
    """kafka-edge in front of a cluster (optionally inside a netns)."""

    def __init__(
        self, cluster, logdir, listen_ip, advertised_host, port_base, listen_port, prefix=(), name="kafka-edge"
    ):
        self.cluster = cluster
        self.listen_ip = listen_ip
        self.host = advertised_host
        self.port_base = port_base
        self.listen_port = listen_port
        cmd = list(prefix) + [gateway_binary()]
        for b in cluster.bootstrap:
            cmd += ["--bootstrap-server", b]
        cmd += [
            "--listen",
            "%s:%d" % (listen_ip, listen_port),
            "--advertised-host",
            advertised_host,
            "--broker-port-base",
            str(port_base),
        ]
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")  # plain log text (tracing-subscriber honours it)
        self.proc = ManagedProc(name, cmd, logdir, env=env)

    @property
    def bootstrap(self):
        return "%s:%d" % (self.listen_ip, self.listen_port)

    def expected_brokers(self):
        """[{id, host, port}] every client must see through the gateway."""
        return [{"id": n, "host": self.host, "port": self.port_base + n} for n in self.cluster.node_ids]

    def broker_endpoints(self):
        return ["%s:%d" % (self.listen_ip, self.port_base + n) for n in self.cluster.node_ids]

    def wait_ready(self, connect_check=None, timeout=30):
        """Bootstrap port accepting, then (softly) every broker port.

        connect_check(ip, port) -> bool lets a netns caller probe from inside
        the right namespace.  Broker listeners may legitimately appear only
        after cluster discovery, so a missing one is recorded, not fatal here:
        the client tests then fail with the log excerpt.
        """
        check = connect_check or can_connect
        ok = wait_for(lambda: not self.proc.alive() or check(self.listen_ip, self.listen_port), timeout, 0.2)
        if not ok or not self.proc.alive():
            raise AssertionError("kafka-edge not accepting on %s\n%s" % (self.bootstrap, self.proc.excerpt()))
        ports = [self.port_base + n for n in self.cluster.node_ids]
        self.broker_ports_ready = wait_for(lambda: all(check(self.listen_ip, p) for p in ports), 15, 0.2)

    def excerpt(self, lines=80):
        return self.proc.excerpt(lines)

    def stop(self):
        return self.proc.stop(signal.SIGTERM)


# Gateway listeners in the loopback tests: a loopback address other than the
# brokers' 127.0.0.1, so an upstream address leaking through is visible.
GATEWAY_IP = os.environ.get("KAFKA_EDGE_TEST_IP", "127.0.0.2")

# Gateways currently running, for failure reports and liveness checks.
RUNNING_GATEWAYS = []


def start_gateway(
    cluster, logdir, name, listen_ip=GATEWAY_IP, prefix=(), connect_check=None, port_base=None, listen_port=None
):
    """Start kafka-edge for `cluster` and wait until it accepts connections.

    Without explicit ports, free ones are picked on listen_ip in this
    namespace (a fresh network namespace can pass fixed ones).
    """
    base = port_base if port_base is not None else pick_port_base(listen_ip, cluster.node_ids)
    broker_ports = {base + n for n in cluster.node_ids}
    if listen_port is None:
        listen_port = free_port(listen_ip)
        while listen_port in broker_ports:
            listen_port = free_port(listen_ip)
    gw = Gateway(cluster, logdir, listen_ip, listen_ip, base, listen_port, prefix=prefix, name=name)
    return register_gateway(gw, connect_check=connect_check)


def register_gateway(gw, **wait):
    """Records a started gateway for failure reports and liveness checks, then waits (wait_ready
    with `wait`) until it accepts connections; stops it if it never does."""
    RUNNING_GATEWAYS.append(gw)
    try:
        gw.wait_ready(**wait)
    except BaseException:
        stop_gateway(gw)
        raise
    return gw


def stop_gateway(gw):
    if gw in RUNNING_GATEWAYS:
        RUNNING_GATEWAYS.remove(gw)
    return gw.stop()


# ------------------------------------------------------------------ clients


def kclient(lib, bootstrap, cluster, *args, prefix=(), timeout=60, deadline=30):
    """Run kclient.py (optionally inside a netns); returns (json or None, CompletedProcess)."""
    cmd = list(prefix) + [PYTHON, KCLIENT, lib, "--bootstrap", bootstrap, "--deadline", str(deadline)]
    if lib == "kafkapython" and cluster.kafkapython_api_version:
        cmd += ["--api-version", cluster.kafkapython_api_version]
    cmd += [str(a) for a in args]
    res = run(cmd, timeout=timeout)
    data = None
    lines = (res.stdout or "").strip().splitlines()
    if lines:
        try:
            data = json.loads(lines[-1])
        except ValueError:
            data = None
    return data, res


class Kcat:
    """kcat with one of the two librdkafka generations.

    "2.0.2" is Debian's kcat as installed; "2.16" is the same binary with the
    confluent-kafka wheel's librdkafka first on LD_LIBRARY_PATH.
    """

    def __init__(self, generation, libdir=None):
        self.generation = generation
        self.path = require_tool("kcat")
        self.env = dict(os.environ)
        if libdir:
            self.env["LD_LIBRARY_PATH"] = libdir + (
                ":" + self.env["LD_LIBRARY_PATH"] if self.env.get("LD_LIBRARY_PATH") else ""
            )

    def __repr__(self):
        return "Kcat(%s)" % self.generation

    def __call__(self, args, prefix=(), input_text=None, timeout=60):
        return run(list(prefix) + [self.path] + list(args), timeout=timeout, input_text=input_text, env=self.env)

    def runtime_version(self):
        """librdkafka version kcat actually loaded (from `kcat -V`)."""
        res = self(["-V"], timeout=10)
        text = res.stdout + res.stderr
        marker = "librdkafka "
        i = text.find(marker)
        return text[i + len(marker) :].split()[0] if i >= 0 else None

    def brokers(self, bootstrap, prefix=(), timeout=30):
        """kcat -L -J: ([{id, host, port}], CompletedProcess)."""
        res = self(["-b", bootstrap, "-L", "-J", "-m", "10"], prefix=prefix, timeout=timeout)
        brokers = None
        if res.returncode == 0:
            data = json.loads(res.stdout)
            brokers = []
            for b in data["brokers"]:
                host, port = b["name"].rsplit(":", 1)
                brokers.append({"id": b["id"], "host": host, "port": int(port)})
            brokers.sort(key=lambda b: b["id"])
        return brokers, res

    def produce(self, bootstrap, topic, values, prefix=(), timeout=60, message_timeout_ms=20000, compression="none"):
        args = [
            "-P",
            "-b",
            bootstrap,
            "-t",
            topic,
            "-X",
            "acks=all",
            "-X",
            "enable.idempotence=true",
            "-X",
            "message.timeout.ms=%d" % message_timeout_ms,
            "-X",
            "compression.codec=%s" % compression,
        ]
        return self(args, prefix=prefix, input_text="".join(v + "\n" for v in values), timeout=timeout)

    def consume(self, bootstrap, topic, count, prefix=(), timeout=60):
        args = ["-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-c", str(count), "-q", "-f", "%s\\n"]
        res = self(args, prefix=prefix, timeout=timeout)
        return res.stdout.splitlines(), res

    def consume_group(self, bootstrap, topic, group, count, prefix=(), timeout=60):
        args = [
            "-b",
            bootstrap,
            "-G",
            group,
            "-X",
            "auto.offset.reset=earliest",
            "-X",
            "enable.auto.commit=true",
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "max.poll.interval.ms=8000",
            "-c",
            str(count),
            "-q",
            "-f",
            "%s\\n",
            topic,
        ]
        res = self(args, prefix=prefix, timeout=timeout)
        return res.stdout.splitlines(), res


def make_kcat_libdir(base_dir):
    """A directory whose librdkafka.so.1 is the wheel's librdkafka 2.16."""
    libdir = os.path.join(base_dir, "librdkafka-2.16")
    os.makedirs(libdir, exist_ok=True)
    link = os.path.join(libdir, "librdkafka.so.1")
    if not os.path.lexists(link):
        os.symlink(wheel_librdkafka(), link)
    return libdir


def compile_bindshim(out_dir):
    gcc = require_tool("gcc")
    out = os.path.join(out_dir, "bindshim.so")
    run(
        [gcc, "-shared", "-fPIC", "-O2", "-Wall", "-o", out, os.path.join(HERE, "bindshim.c"), "-ldl"],
        timeout=60,
        check=True,
    )
    return out
