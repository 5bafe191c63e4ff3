"""TLS building blocks of the real-client suite (used by test_tls.py).

  * ``make_pki``: a throwaway CA, server and client certificate from the
    project's own generator (``cargo build --example gencerts``), written under
    the pytest work directory, never into the repository.
  * ``ConfigGateway``: kafka-edge started from a TOML file (client TLS, SNI,
    upstream TLS are file-only settings), with the interface the suite's
    fixtures expect of a gateway (``proc``, ``excerpt``, ``stop``), and
    registered in ``realenv.RUNNING_GATEWAYS`` so that its log is attached to
    failing tests and its death fails the test.
  * ``SecureClient``: kcat (both librdkafka generations) and confluent-kafka
    with extra settings (TLS, SASL), returning ``clients.Outcome``.
  * ``NetnsHosts``: ``/etc/netns/<ns>/hosts``, which ``ip netns exec`` mounts
    over ``/etc/hosts`` for everything run in that namespace; removed in
    teardown, and stale ones of dead runs swept like the namespaces.
  * ``is_tls_stream``: whether a captured TCP stream is TLS records only.
"""

import json
import os
import re
import shutil
import signal
import urllib.error
import urllib.request

import pytest

from clients import Outcome, make_values
from netns import NS_NAME, seed_network
from realenv import (
    PYTHON,
    REPO_ROOT,
    ManagedProc,
    can_connect,
    describe,
    gateway_binary,
    register_gateway,
    run,
    wait_for,
)

HERE = os.path.dirname(os.path.abspath(__file__))
TLSCLIENT = os.path.join(HERE, "tlsclient.py")
NETNS_ETC = "/etc/netns"


# ------------------------------------------------------------------ certificates


def gencerts_binary():
    """examples/gencerts, built by `cargo build --example gencerts` (or nextest --all-targets)."""
    path = os.environ.get("KAFKA_EDGE_GENCERTS", os.path.join(REPO_ROOT, "target", "debug", "examples", "gencerts"))
    if not os.access(path, os.X_OK):
        pytest.fail(
            "certificate generator not found at %s (build it: cargo build --example gencerts, "
            "or set KAFKA_EDGE_GENCERTS)" % path,
            pytrace=False,
        )
    return path


class Pki:
    """Paths of one generated PKI: ca, server chain + key, client cert + key."""

    def __init__(self, directory, names):
        self.dir = directory
        self.names = list(names)
        self.ca = os.path.join(directory, "ca.pem")
        self.server_cert = os.path.join(directory, "server.pem")
        self.server_key = os.path.join(directory, "server.key")
        self.client_cert = os.path.join(directory, "client.pem")
        self.client_key = os.path.join(directory, "client.key")

    def client_of(self, user):
        """(certificate, key) of `user`'s client certificate."""
        return (os.path.join(self.dir, "client-%s.pem" % user), os.path.join(self.dir, "client-%s.key" % user))

    def __repr__(self):
        return "Pki(%s: %s)" % (self.dir, self.names)


def make_pki(out_dir, names, clients=()):
    """A fresh CA plus a server certificate for `names` (IPs become IP SANs), and for each
    user in `clients` a certificate whose subject is OU=clients,CN=<user> (pki.client_of)."""
    real_out = os.path.realpath(out_dir)
    assert not real_out.startswith(os.path.realpath(REPO_ROOT) + os.sep), (
        "private keys must not be written into the repository: %s" % out_dir
    )
    run([gencerts_binary(), out_dir] + list(names) + ["client=%s" % u for u in clients], timeout=60, check=True)
    pki = Pki(out_dir, names)
    for path in (pki.ca, pki.server_cert, pki.server_key, pki.client_cert, pki.client_key):
        assert os.path.getsize(path) > 0, "gencerts wrote no %s" % path
    return pki


# ------------------------------------------------------------------ gateway from a TOML file


def _toml(value):
    """A TOML value: strings and lists of strings as JSON text (valid TOML), bools, ints."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


def render_config(sections):
    """[(table name, {key: value})] -> TOML text, tables in the order given."""
    lines = []
    for table, keys in sections:
        lines.append("[%s]" % table)
        for key, value in keys.items():
            lines.append("%s = %s" % (key, _toml(value)))
        lines.append("")
    return "\n".join(lines)


class ConfigGateway:
    """kafka-edge configured through --config FILE.

    Port mode: bootstrap at listen_ip:listen_port, broker N at
    advertised_host:port_base+N.  SNI mode (sni_domain set, needs tls):
    bootstrap at bootstrap.<domain>:listen_port, broker N at
    broker-N.<domain>:listen_port.

    tls: {"cert", "key", optional "client_ca"} for client-facing TLS.
    upstream_tls: {"ca", optional "cert", "key", "verify_hostname"}.
    upstream_sasl: {"mechanism", "username", "password_file" or "password_env"}.
    admin_port: serve /livez, /readyz and /metrics on listen_ip:admin_port.
    extra: more keys, {section: {key: value}}, merged into the sections above.
    raw: TOML text appended as written (arrays of tables, inline tables).
    env: more environment variables for the gateway process.
    """

    def __init__(
        self,
        name,
        logdir,
        bootstrap_servers,
        node_ids,
        listen_ip,
        listen_port,
        port_base=None,
        advertised_host=None,
        tls=None,
        sni_domain=None,
        upstream_tls=None,
        upstream_sasl=None,
        admin_port=None,
        extra=None,
        raw="",
        env=None,
        prefix=(),
    ):
        self.name = name
        self.logdir = logdir
        self.node_ids = sorted(node_ids)
        self.listen_ip = listen_ip
        self.listen_port = listen_port
        self.port_base = port_base
        self.host = advertised_host or listen_ip
        self.sni_domain = sni_domain
        self.tls = tls
        self.admin_port = admin_port
        self.prefix = list(prefix)
        sections = [
            ("gateway", {"listen": "%s:%d" % (listen_ip, listen_port), "advertised_host": self.host}),
            ("upstream", {"bootstrap_servers": list(bootstrap_servers), "connect_timeout_ms": 3000}),
        ]
        if upstream_tls:
            sections.append(("upstream.tls", dict(upstream_tls)))
        if upstream_sasl:
            sections.append(("upstream.sasl", dict(upstream_sasl)))
        if admin_port:
            sections.append(("admin", {"listen": "%s:%d" % (listen_ip, admin_port)}))
        if port_base is not None:
            sections.append(("brokers", {"port_base": port_base}))
        if tls:
            sections.append(("tls", dict(tls)))
        if sni_domain:
            sections.append(("sni", {"domain": sni_domain}))
        for section, keys in (extra or {}).items():
            named = [body for name, body in sections if name == section]
            if named:
                named[0].update(keys)
            else:
                sections.append((section, dict(keys)))
        self.config_path = os.path.join(logdir, "%s.toml" % name)
        with open(self.config_path, "w") as f:
            f.write(render_config(sections) + raw)
        env = dict(os.environ, **(env or {}))
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")
        self.cmd = list(prefix) + [gateway_binary(), "--config", self.config_path]
        self.env = env
        self.starts = 1
        self.proc = ManagedProc(name, self.cmd, logdir, env=env)

    # ------------------------------------------------------------ addresses

    @property
    def bootstrap(self):
        if self.sni_domain:
            return "bootstrap.%s:%d" % (self.sni_domain, self.listen_port)
        return "%s:%d" % (self.listen_ip, self.listen_port)

    def broker_host(self, node_id):
        return "broker-%d.%s" % (node_id, self.sni_domain)

    def expected_brokers(self):
        """[{id, host, port}] a client must see through this gateway."""
        if self.sni_domain:
            return [{"id": n, "host": self.broker_host(n), "port": self.listen_port} for n in self.node_ids]
        return [{"id": n, "host": self.host, "port": self.port_base + n} for n in self.node_ids]

    def sni_names(self):
        return ["bootstrap.%s" % self.sni_domain] + [self.broker_host(n) for n in self.node_ids]

    # ------------------------------------------------------------ lifecycle

    def wait_ready(self, connect_check=None, timeout=30, brokers=True):
        """Accepting TCP on the bootstrap port and (port mode, `brokers`) every broker port."""
        check = connect_check or can_connect
        ok = wait_for(lambda: not self.proc.alive() or check(self.listen_ip, self.listen_port), timeout, 0.2)
        if not ok or not self.proc.alive():
            where = "%s:%d" % (self.listen_ip, self.listen_port)
            raise AssertionError("kafka-edge not accepting on %s\n%s" % (where, self.excerpt()))
        self.broker_ports_ready = None
        if brokers and not self.sni_domain:
            ports = [self.port_base + n for n in self.node_ids]
            # Broker listeners open once discovery saw the cluster (soft: the
            # client tests then fail with the log); a gateway that must not
            # reach its upstream (negative tests) passes brokers=False.
            self.broker_ports_ready = wait_for(lambda: all(check(self.listen_ip, p) for p in ports), 10, 0.2)

    def admin_get(self, path):
        """(status, body) of GET path on the admin endpoint; (None, reason) when unreachable.

        From inside the gateway's namespace when it runs in one."""
        url = "http://%s:%d%s" % (self.listen_ip, self.admin_port, path)
        if self.prefix:
            res = run(self.prefix + [PYTHON, os.path.abspath(__file__), "admin-get", url], timeout=15)
            try:
                status, body = json.loads(res.stdout)
            except ValueError:
                return None, describe(res)
            return status, body
        return http_get(url)

    def log_text(self):
        return self.proc.log_text()

    def log_count(self, needle):
        return self.log_text().count(needle)

    def wait_log_count(self, needle, more_than, timeout=5):
        """Whether `needle` appears in the log more than `more_than` times within `timeout`."""
        return wait_for(lambda: self.log_count(needle) > more_than, timeout, 0.1)

    def excerpt(self, lines=80):
        return self.proc.excerpt(lines)

    def stop(self):
        return self.proc.stop(signal.SIGTERM)

    def restart(self, connect_check=None):
        """Stops the gateway (SIGTERM: it drains in-flight requests) and starts it again on the
        same ports and configuration; returns once it accepts connections. Its log goes on in
        a new file, NAME-2.log and so on."""
        self.stop()
        self.starts += 1
        self.proc = ManagedProc("%s-%d" % (self.name, self.starts), self.cmd, self.logdir, env=self.env)
        self.wait_ready(connect_check)


def start_config_gateway(*args, connect_check=None, wait_brokers=True, **kwargs):
    """ConfigGateway(...), registered for failure reports, once it accepts connections."""
    return register_gateway(ConfigGateway(*args, **kwargs), connect_check=connect_check, brokers=wait_brokers)


# ------------------------------------------------------------------ clients with settings


def tls_settings(pki, client_cert=False):
    """librdkafka settings for TLS to a gateway whose certificate `pki` signed."""
    # Host name verification is librdkafka's default since 2.0; said explicitly,
    # so that every test also checks the gateway's certificate names the host.
    conf = {"security.protocol": "SSL", "ssl.ca.location": pki.ca, "ssl.endpoint.identification.algorithm": "https"}
    if client_cert:
        conf["ssl.certificate.location"] = pki.client_cert
        conf["ssl.key.location"] = pki.client_key
    return conf


SECURE_CLIENTS = ["kcat-2.0.2", "kcat-2.16", "confluent"]


class SecureClient:
    """One of SECURE_CLIENTS with extra librdkafka settings (`conf`)."""

    def __init__(self, name, kcats, conf):
        assert name in SECURE_CLIENTS, name
        self.name = name
        self.conf = dict(conf)
        self.kcat = kcats[name.split("-", 1)[1]] if name.startswith("kcat-") else None

    def __repr__(self):
        return "SecureClient(%s, %s)" % (self.name, self.conf)

    def _x(self):
        args = []
        for key, value in sorted(self.conf.items()):
            args += ["-X", "%s=%s" % (key, value)]
        return args

    def _confluent(self, bootstrap, args, prefix, deadline):
        cmd = list(prefix) + [PYTHON, TLSCLIENT] + self._x()
        cmd += ["confluent", "--bootstrap", bootstrap, "--deadline", str(deadline)] + [str(a) for a in args]
        res = run(cmd, timeout=deadline + 30)
        data = None
        lines = (res.stdout or "").strip().splitlines()
        if lines:
            try:
                data = json.loads(lines[-1])
            except ValueError:
                data = None
        return data, res

    def metadata(self, bootstrap, prefix=(), deadline=15):
        """Outcome.data = {"brokers": [{id, host, port}], "raw": client output}."""
        if self.kcat:
            res = self.kcat(
                ["-b", bootstrap, "-L", "-J", "-m", str(deadline)] + self._x(), prefix=prefix, timeout=deadline + 30
            )
            brokers = None
            if res.returncode == 0:
                brokers = []
                for b in json.loads(res.stdout)["brokers"]:
                    host, port = b["name"].rsplit(":", 1)
                    brokers.append({"id": b["id"], "host": host, "port": int(port)})
                brokers.sort(key=lambda b: b["id"])
            return Outcome(brokers is not None, {"brokers": brokers, "raw": res.stdout}, describe(res))
        data, res = self._confluent(bootstrap, ["metadata"], prefix, deadline)
        ok = res.returncode == 0 and data is not None and "brokers" in data
        if data is not None:
            data["raw"] = res.stdout
        return Outcome(ok, data, describe(res))

    def produce(self, bootstrap, topic, value_prefix, count, prefix=(), deadline=30):
        """Produce make_values(value_prefix, count), acks=all + idempotence, uncompressed."""
        if self.kcat:
            args = ["-P", "-b", bootstrap, "-t", topic, "-X", "acks=all", "-X", "enable.idempotence=true"]
            args += ["-X", "message.timeout.ms=%d" % (deadline * 1000), "-X", "compression.codec=none"] + self._x()
            values = make_values(value_prefix, count)
            res = self.kcat(args, prefix=prefix, input_text="".join(v + "\n" for v in values), timeout=deadline + 30)
            return Outcome(res.returncode == 0 and "ERROR" not in res.stderr, None, describe(res))
        args = ["produce", "--topic", topic, "--prefix", value_prefix, "--count", count, "--compression", "none"]
        data, res = self._confluent(bootstrap, args, prefix, deadline)
        return Outcome(res.returncode == 0, data, describe(res))

    def consume(self, bootstrap, topic, count, prefix=(), deadline=30):
        """`count` values from the beginning of every partition (no group)."""
        if self.kcat:
            args = ["-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-c", str(count), "-q", "-f", "%s\\n"]
            res = self.kcat(args + self._x(), prefix=prefix, timeout=deadline + 30)
            return Outcome(res.returncode == 0, res.stdout.splitlines(), describe(res))
        data, res = self._confluent(bootstrap, ["consume", "--topic", topic, "--count", count], prefix, deadline)
        return Outcome(res.returncode == 0, (data or {}).get("values"), describe(res))


# ------------------------------------------------------------------ /etc/netns/<ns>/hosts


class NetnsHosts:
    """/etc/netns/<ns>/hosts: name resolution for whatever `ip netns exec <ns>` runs."""

    def __init__(self, ns, entries):
        """entries: [(ip, [names])]."""
        self.ns = ns
        self.dir = os.path.join(NETNS_ETC, ns)
        self.path = os.path.join(self.dir, "hosts")
        self.entries = entries

    def write(self):
        os.makedirs(self.dir, exist_ok=True)
        lines = ["127.0.0.1 localhost"] + ["%s %s" % (ip, " ".join(names)) for ip, names in self.entries]
        with open(self.path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return self

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        return not os.path.exists(self.dir)


@pytest.fixture(scope="module")
def net():
    """The seed's three namespaces for one test module (`from tlsenv import net`), after
    sweeping /etc/netns entries that killed runs left behind."""
    sweep_stale_netns_etc()
    with seed_network() as n:
        yield n


def sweep_stale_netns_etc():
    """Remove /etc/netns/<ns> of earlier runs whose pytest is gone (as netns.sweep_stale_namespaces)."""
    if not os.path.isdir(NETNS_ETC):
        return
    for name in os.listdir(NETNS_ETC):
        m = NS_NAME.match(name)
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            shutil.rmtree(os.path.join(NETNS_ETC, name), ignore_errors=True)


# ------------------------------------------------------------------ TLS in a capture


TLS_RECORD = re.compile(rb"^[\x14-\x17]\x03[\x01-\x04]")


def is_tls_stream(data):
    """Whether a byte stream is a sequence of well-formed TLS records from its first byte.

    Walks the 5-byte record headers (type 20-23, version 3.x, length <= 2^14 + 2048)
    to the end of the capture; a stream cut short in its last record still counts.
    """
    pos = 0
    if not data:
        return False
    while pos + 5 <= len(data):
        if not TLS_RECORD.match(data[pos : pos + 3]):
            return False
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if length > 16384 + 2048:
            return False
        pos += 5 + length
    return True


# ------------------------------------------------------------------ admin endpoint


def http_get(url):
    """(status, body) of GET url; (None, reason) when unreachable."""
    try:
        with urllib.request.urlopen(url, timeout=2) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


if __name__ == "__main__":
    # `tlsenv.py admin-get URL`: ConfigGateway.admin_get from inside a namespace.
    import sys

    assert sys.argv[1:2] == ["admin-get"], sys.argv
    print(json.dumps(http_get(sys.argv[2])))
