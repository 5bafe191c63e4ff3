#!/usr/bin/env python3
"""Checks on kafka-edge's Kubernetes manifests that schema validation cannot make.

    check_manifests.py [--toml-out DIR] FILE...

FILE: YAML files, each one or more documents (the raw manifests, or a chart
rendered by helm template). Checked:

1. Every Service port name and every container port name is a valid port name
   (an IANA service name): at most 15 characters, lowercase letters, digits and
   '-', starting and ending with a letter or digit, no '--', at least one
   letter. Kubernetes rejects anything else when the object is applied;
   kubernetes-validate does not check it. Names are unique per Service and per
   pod.
2. Every Service selects a workload in the files, and each of its target
   ports names (or numbers) a port of that workload's containers.
3. Where a workload runs kafka-edge with a configuration from a ConfigMap in
   the files (the TOML under data."kafka-edge.toml"): the TOML parses; the
   container ports are the ones it listens on (bootstrap = gateway.listen's
   port, admin = admin.listen's port, broker-N / b-N = the port node N gets by
   the gateway's own rule: brokers.ports, then brokers.ranges, then port_base +
   N up to port_base_max_node_id); every Service port equals the port clients are told (and so does its
   nodePort, when set); SNI mode has no broker ports; the probes are /readyz
   and /livez on the admin port; and a NetworkPolicy that selects the pods lets
   every Service port in from anywhere.
4. kafka-edge containers run non-root with a read-only root filesystem, no
   privilege escalation, all capabilities dropped, seccomp RuntimeDefault.
5. Where the configuration takes the gateway's SASL password from an
   environment variable (upstream.sasl.password_env), the container declares
   that variable, from a Secret (secretKeyRef), never as a literal value.
6. The configuration reaches running pods: its ConfigMap is mounted as a
   directory (a subPath mount is never updated), and the pod template carries
   no checksum of it (which would roll every pod, dropping every client
   connection, for a change the gateway applies itself).
7. Monitoring (the chart's monitoring.*): a ServiceMonitor selects a Service
   in the files and scrapes /metrics on its admin port; a PrometheusRule's
   spec is exactly the chart's files/kafka-edge-alerts.yaml, and a dashboard
   ConfigMap's kafka-edge.json exactly files/kafka-edge-dashboard.json (what
   tests/ops.rs checks against a running gateway).

With --toml-out DIR, each kafka-edge configuration is also written to DIR (one
file per ConfigMap) so that the binary itself can be asked to accept it.
--self-test breaks the raw gateway manifests in known ways, and
--self-test-monitoring a chart rendered with the monitoring objects on; each
break must be reported.
Exits 1 and names every problem when a check fails.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")
BROKER_PORT_NAME = re.compile(r"^(?:broker|b)-(\d+)$")
CONFIG_KEY = "kafka-edge.toml"
DASHBOARD_KEY = "kafka-edge.json"
CHART_FILES = Path(__file__).resolve().parent.parent / "helm" / "kafka-edge" / "files"
ALERTS = CHART_FILES / "kafka-edge-alerts.yaml"
DASHBOARD = CHART_FILES / "kafka-edge-dashboard.json"
# Where the image's default command reads its configuration (Dockerfile CMD).
DEFAULT_CONFIG_PATH = "/etc/kafka-edge/kafka-edge.toml"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def port_name_problem(name: object) -> str | None:
    """Why `name` is not a valid port name, or None."""
    if not isinstance(name, str) or not name:
        return "missing"
    if len(name) > 15:
        return f"{len(name)} characters (at most 15)"
    if not PORT_NAME.match(name):
        return "only lowercase letters, digits and '-', starting and ending with a letter or digit"
    if "--" in name:
        return "contains '--'"
    if not re.search(r"[a-z]", name):
        return "needs at least one letter"
    return None


class Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.checked: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")


def load_documents(paths: list[str]) -> list[tuple[str, dict]]:
    documents = []
    for path in paths:
        for index, document in enumerate(yaml.safe_load_all(Path(path).read_text())):
            if document is None:
                continue
            if not isinstance(document, dict) or "kind" not in document:
                raise SystemExit(f"{path}: document {index} is not a Kubernetes object")
            documents.append((path, document))
    return documents


def ident(path: str, obj: dict) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace", "")
    return f"{path}: {obj['kind']} {namespace + '/' if namespace else ''}{meta.get('name')}"


def namespace_of(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("namespace") or ""


def pod_spec(obj: dict) -> dict | None:
    if obj["kind"] == "Pod":
        return obj.get("spec") or {}
    if obj["kind"] in WORKLOAD_KINDS:
        return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return None


def pod_labels(obj: dict) -> dict:
    if obj["kind"] == "Pod":
        return (obj.get("metadata") or {}).get("labels") or {}
    template = (obj.get("spec") or {}).get("template") or {}
    return (template.get("metadata") or {}).get("labels") or {}


def containers(spec: dict) -> list[dict]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def selects(selector: dict | None, labels: dict) -> bool:
    if not selector:
        return False
    return all(labels.get(key) == value for key, value in selector.items())


# --- the gateway's port plan -------------------------------------------------


class Plan:
    """The ports a kafka-edge configuration listens on, by the gateway's rules."""

    def __init__(self, config: dict) -> None:
        gateway = config.get("gateway") or {}
        self.listen_port = int(str(gateway.get("listen", "127.0.0.1:9092")).rsplit(":", 1)[1])
        admin = (config.get("admin") or {}).get("listen", "off")
        self.admin_port = None if admin == "off" else int(str(admin).rsplit(":", 1)[1])
        self.sni = "sni" in config
        brokers = config.get("brokers") or {}
        self.port_base = int(brokers.get("port_base", 19000))
        self.port_base_max_node_id = int(brokers.get("port_base_max_node_id", 9999))
        self.ranges = list(brokers.get("ranges") or [])
        self.ports = {int(k): int(v) for k, v in (brokers.get("ports") or {}).items()}

    def broker_port(self, node_id: int) -> int | None:
        if node_id in self.ports:
            return self.ports[node_id]
        for r in self.ranges:
            if r["first_node_id"] <= node_id <= r["last_node_id"]:
                port = r["first_port"] + node_id - r["first_node_id"]
                return port if port <= 65535 else None
        if not 0 <= node_id <= self.port_base_max_node_id:
            return None
        port = self.port_base + node_id
        return port if port <= 65535 else None


def config_path(container: dict) -> str:
    """The file the container's kafka-edge reads: its --config argument, else the image's default."""
    args = [str(a) for a in container.get("args") or []]
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return DEFAULT_CONFIG_PATH


def kafka_edge_config(spec: dict, container: dict, configmaps: dict) -> tuple[str, dict, dict] | None:
    """(ConfigMap name, parsed TOML, the mount) when the container reads a ConfigMap's kafka-edge.toml."""
    wanted = config_path(container)
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name")) or {}
        source = volume.get("configMap")
        if not source:
            continue
        path = mount.get("mountPath", "")
        if path == wanted and mount.get("subPath") == CONFIG_KEY or (
            not mount.get("subPath") and f"{path.rstrip('/')}/{CONFIG_KEY}" == wanted
        ):
            name = source.get("name")
            if name in configmaps:
                return name, configmaps[name], mount
    return None


def is_kafka_edge(container: dict) -> bool:
    image = str(container.get("image", ""))
    return "kafka-edge" in image.rsplit("/", 1)[-1]


# --- the checks ---------------------------------------------------------------


def check(documents: list[tuple[str, dict]], toml_out: Path | None = None) -> Checker:
    c = Checker()

    # Parse every kafka-edge configuration first.
    configmaps: dict[tuple[str, str], dict] = {}
    for path, obj in documents:
        if obj["kind"] != "ConfigMap" or CONFIG_KEY not in (obj.get("data") or {}):
            continue
        where = ident(path, obj)
        text = obj["data"][CONFIG_KEY]
        try:
            config = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            c.fail(where, f"{CONFIG_KEY} is not valid TOML: {e}")
            continue
        configmaps[(namespace_of(obj), obj["metadata"]["name"])] = config
        if toml_out is not None:
            toml_out.mkdir(parents=True, exist_ok=True)
            stem = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{Path(path).stem}-{obj['metadata']['name']}")
            (toml_out / f"{stem}.toml").write_text(text)
        c.checked.append(f"{where}: {CONFIG_KEY} parses")

    workloads = [(p, o) for p, o in documents if pod_spec(o) is not None]
    policies = [(p, o) for p, o in documents if o["kind"] == "NetworkPolicy"]

    # Ports and the plan, per workload.
    plans: dict[int, Plan] = {}
    for path, obj in workloads:
        where = ident(path, obj)
        spec = pod_spec(obj)
        names: set[str] = set()
        for container in containers(spec):
            for port in container.get("ports") or []:
                name = port.get("name")
                if name is None:
                    continue
                problem = port_name_problem(name)
                if problem:
                    c.fail(where, f"container {container.get('name')} port name {name!r}: {problem}")
                if name in names:
                    c.fail(where, f"port name {name!r} used twice in the pod")
                names.add(name)
        local = {name: cfg for (ns, name), cfg in configmaps.items() if ns == namespace_of(obj)}
        for container in containers(spec):
            if not is_kafka_edge(container):
                continue
            cwhere = f"{where} container {container.get('name')}"
            check_security(c, cwhere, spec, container)
            found = kafka_edge_config(spec, container, local)
            if found is None:
                c.checked.append(f"{cwhere}: no ConfigMap configuration in these files, ports not planned")
                continue
            plan = Plan(found[1])
            plans[id(obj)] = plan
            check_container_ports(c, cwhere, container, plan)
            check_sasl_password(c, cwhere, container, found[1])
            check_reloadable(c, cwhere, obj, found[2])

    # Services.
    for path, obj in documents:
        if obj["kind"] != "Service":
            continue
        where = ident(path, obj)
        svc = obj.get("spec") or {}
        ports = svc.get("ports") or []
        seen: set[str] = set()
        for port in ports:
            name = port.get("name")
            if name is None and len(ports) == 1:
                continue
            problem = port_name_problem(name)
            if problem:
                c.fail(where, f"port name {name!r}: {problem}")
            elif name in seen:
                c.fail(where, f"port name {name!r} used twice")
            seen.add(name)
        if not any(port_name_problem(p.get("name")) for p in ports if not (p.get("name") is None and len(ports) == 1)):
            c.checked.append(f"{where}: port names {sorted(seen)} valid")
        targets = [
            (p, o) for p, o in workloads
            if namespace_of(o) == namespace_of(obj) and selects(svc.get("selector"), pod_labels(o))
        ]
        if not targets:
            c.fail(where, f"selector {svc.get('selector')} matches no workload in these files")
            continue
        for wpath, workload in targets:
            container_ports = {}
            for container in containers(pod_spec(workload)):
                for port in container.get("ports") or []:
                    container_ports[port.get("name")] = port.get("containerPort")
            numbers = set(container_ports.values())
            for port in ports:
                target = port.get("targetPort", port.get("port"))
                if isinstance(target, str) and target not in container_ports:
                    c.fail(where, f"port {port.get('name')}: targetPort {target!r} is no container port of {ident(wpath, workload)}")
                if isinstance(target, int) and target not in numbers:
                    c.fail(where, f"port {port.get('name')}: targetPort {target} is no container port of {ident(wpath, workload)}")
            plan = plans.get(id(workload))
            if plan is not None and svc.get("type", "ClusterIP") in ("LoadBalancer", "NodePort", "ClusterIP"):
                check_service_plan(c, where, svc, plan, container_ports)
                check_policy(c, where, svc, workload, policies)
    check_monitoring(c, documents)
    return c


def check_monitoring(c: Checker, documents: list[tuple[str, dict]]) -> None:
    services = [(p, o) for p, o in documents if o["kind"] == "Service"]
    for path, obj in documents:
        where = ident(path, obj)
        spec = obj.get("spec") or {}
        before = len(c.problems)
        if obj["kind"] == "ServiceMonitor":
            selector = (spec.get("selector") or {}).get("matchLabels")
            selected = [
                s for _, s in services
                if namespace_of(s) == namespace_of(obj)
                and selects(selector, (s.get("metadata") or {}).get("labels") or {})
            ]
            if not selected:
                c.fail(where, f"selector {selector} matches no Service in these files")
                continue
            endpoints = spec.get("endpoints") or []
            if not endpoints:
                c.fail(where, "no endpoints")
            for endpoint in endpoints:
                port = endpoint.get("port")
                if not any(p.get("name") == port for s in selected for p in (s.get("spec") or {}).get("ports") or []):
                    c.fail(where, f"endpoint port {port!r} is no port of the Services it selects")
                elif port != "admin":
                    c.fail(where, f"endpoint port {port!r} is not the admin port")
                if endpoint.get("path", "/metrics") != "/metrics":
                    c.fail(where, f"endpoint path {endpoint.get('path')!r} is not /metrics")
            if len(c.problems) == before:
                c.checked.append(f"{where}: scrapes /metrics on the admin port of {len(selected)} Service(s)")
        elif obj["kind"] == "PrometheusRule":
            if spec != yaml.safe_load(ALERTS.read_text()):
                c.fail(where, f"spec is not {ALERTS.name}")
            else:
                rules = sum(len(g.get("rules") or []) for g in spec.get("groups") or [])
                c.checked.append(f"{where}: the {rules} rules of {ALERTS.name}")
        elif obj["kind"] == "ConfigMap" and DASHBOARD_KEY in (obj.get("data") or {}):
            try:
                dashboard = json.loads(obj["data"][DASHBOARD_KEY])
            except ValueError as e:
                c.fail(where, f"{DASHBOARD_KEY} is not JSON: {e}")
                continue
            if dashboard != json.loads(DASHBOARD.read_text()):
                c.fail(where, f"{DASHBOARD_KEY} is not {DASHBOARD.name}")
            else:
                c.checked.append(f"{where}: the dashboard of {DASHBOARD.name}")


def check_reloadable(c: Checker, where: str, workload: dict, mount: dict) -> None:
    """A changed ConfigMap reaches the running gateway, without a rollout."""
    if mount.get("subPath"):
        c.fail(where, f"mounts its configuration with subPath {mount['subPath']!r}, which Kubernetes never "
                      "updates: mount the ConfigMap as a directory so that a change reaches the running gateway")
    template = (workload.get("spec") or {}).get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    forcing = sorted(k for k in annotations if k.startswith("checksum/"))
    if forcing:
        c.fail(where, f"pod annotation(s) {forcing} roll every pod, dropping every client connection, on a "
                      "configuration change that the gateway applies itself")
    if not mount.get("subPath") and not forcing:
        c.checked.append(f"{where}: configuration mounted as a directory, applied without a rollout")


def check_security(c: Checker, where: str, spec: dict, container: dict) -> None:
    before = len(c.problems)
    pod = spec.get("securityContext") or {}
    ctx = container.get("securityContext") or {}

    def get(key: str):
        return ctx.get(key, pod.get(key))

    if get("runAsNonRoot") is not True:
        c.fail(where, "runAsNonRoot is not true")
    if get("runAsUser") in (None, 0):
        c.fail(where, "runAsUser is not a non-zero numeric user")
    if ctx.get("readOnlyRootFilesystem") is not True:
        c.fail(where, "readOnlyRootFilesystem is not true")
    if ctx.get("allowPrivilegeEscalation") is not False:
        c.fail(where, "allowPrivilegeEscalation is not false")
    if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
        c.fail(where, "capabilities do not drop ALL")
    seccomp = (ctx.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
    if seccomp != "RuntimeDefault":
        c.fail(where, f"seccompProfile is {seccomp!r}, not RuntimeDefault")
    if len(c.problems) == before:
        c.checked.append(f"{where}: non-root, read-only root, no capabilities, seccomp RuntimeDefault")


def check_sasl_password(c: Checker, where: str, container: dict, config: dict) -> None:
    name = ((config.get("upstream") or {}).get("sasl") or {}).get("password_env")
    if name is None:
        return
    env = {e.get("name"): e for e in container.get("env") or []}
    entry = env.get(name)
    if entry is None:
        c.fail(where, f"upstream.sasl.password_env {name} is not in the container's env")
    elif "value" in entry or not (entry.get("valueFrom") or {}).get("secretKeyRef"):
        c.fail(where, f"upstream.sasl.password_env {name} must come from a Secret (valueFrom.secretKeyRef), not a value")
    else:
        ref = entry["valueFrom"]["secretKeyRef"]
        c.checked.append(f"{where}: SASL password {name} from Secret {ref.get('name')} key {ref.get('key')}")


def check_container_ports(c: Checker, where: str, container: dict, plan: Plan) -> None:
    before = len(c.problems)
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
    if plan.admin_port is None:
        c.fail(where, "admin.listen is off: the probes need the admin endpoint")
    elif plan.admin_port not in ports.values():
        c.fail(where, f"no container port is admin.listen's port {plan.admin_port}")
    elif "admin" in ports and ports["admin"] != plan.admin_port:
        c.fail(where, f"container port 'admin' is {ports['admin']}, admin.listen's port is {plan.admin_port}")
    # A sidecar listening on loopback has no reason to declare its Kafka ports.
    if "bootstrap" in ports and ports["bootstrap"] != plan.listen_port:
        c.fail(where, f"container port 'bootstrap' is {ports['bootstrap']}, gateway.listen's port is {plan.listen_port}")
    for name, number in ports.items():
        m = BROKER_PORT_NAME.match(name or "")
        if not m:
            continue
        node = int(m.group(1))
        if plan.sni:
            c.fail(where, f"container port {name}: SNI mode serves every broker on the bootstrap port")
        elif plan.broker_port(node) is None:
            c.fail(where, f"container port {name}: no rule of the configuration gives node {node} a port")
        elif plan.broker_port(node) != number:
            c.fail(where, f"container port {name} is {number}, but the gateway serves node {node} at {plan.broker_port(node)}")
    for probe_name, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez")):
        probe = (container.get(probe_name) or {}).get("httpGet") or {}
        port = probe.get("port")
        if isinstance(port, str):
            port = ports.get(port)
        if probe.get("path") != path or port != plan.admin_port:
            c.fail(where, f"{probe_name} is not GET {path} on the admin port {plan.admin_port}")
    if len(c.problems) == before:
        c.checked.append(f"{where}: container ports and probes match its configuration")


def check_service_plan(c: Checker, where: str, svc: dict, plan: Plan, container_ports: dict) -> None:
    before = len(c.problems)
    brokers = []
    for port in svc.get("ports") or []:
        name = port.get("name") or ""
        if name == "admin":
            if port.get("port") != plan.admin_port:
                c.fail(where, f"port admin is {port.get('port')}, admin.listen's port is {plan.admin_port}")
            continue
        told = None
        if name == "bootstrap":
            told = plan.listen_port
        elif BROKER_PORT_NAME.match(name):
            node = int(BROKER_PORT_NAME.match(name).group(1))
            if plan.sni:
                c.fail(where, f"port {name}: SNI mode has no broker ports")
                continue
            told = plan.broker_port(node)
            brokers.append(node)
        else:
            c.fail(where, f"port {name}: neither bootstrap, broker-N nor admin")
            continue
        if port.get("port") != told:
            c.fail(where, f"port {name} is {port.get('port')}, but clients are told {told}")
        if "nodePort" in port and port["nodePort"] != told:
            c.fail(where, f"port {name} has nodePort {port['nodePort']}, but clients are told {told}")
        target = port.get("targetPort", port.get("port"))
        target_number = container_ports.get(target) if isinstance(target, str) else target
        if target_number != told:
            c.fail(where, f"port {name} reaches container port {target_number}, the gateway listens on {told}")
    if len(c.problems) == before and any(p.get("name") == "bootstrap" for p in svc.get("ports") or []):
        mode = "SNI mode" if plan.sni else f"brokers {brokers}"
        c.checked.append(f"{where}: every port equals the port clients are told ({mode})")


def check_policy(c: Checker, where: str, svc: dict, workload: dict, policies: list) -> None:
    before = len(c.problems)
    labels = pod_labels(workload)
    for ppath, policy in policies:
        pspec = policy.get("spec") or {}
        if namespace_of(policy) != namespace_of(workload):
            continue
        if not selects((pspec.get("podSelector") or {}).get("matchLabels"), labels):
            continue
        if "Ingress" not in (pspec.get("policyTypes") or ["Ingress"]):
            continue
        open_ports = set()
        for rule in pspec.get("ingress") or []:
            if rule.get("from"):
                continue
            for port in rule.get("ports") or []:
                open_ports.add(port.get("port"))
        container_ports = {
            p.get("name"): p.get("containerPort")
            for ct in containers(pod_spec(workload)) for p in ct.get("ports") or []
        }
        for port in svc.get("ports") or []:
            if port.get("name") == "admin":
                continue
            target = port.get("targetPort", port.get("port"))
            number = container_ports.get(target) if isinstance(target, str) else target
            if number not in open_ports:
                c.fail(ident(ppath, policy), f"does not let {port.get('name')} ({number}) in from anywhere")
        if len(c.problems) == before:
            c.checked.append(f"{ident(ppath, policy)}: lets every port of {where.split(': ', 1)[1]} in")


SASL_SECTION = '[upstream.sasl]\nmechanism = "PLAIN"\nusername = "edge"\npassword_env = "EDGE_PW"\n\n'


def self_test(paths: list[str]) -> int:
    """Break good manifests in known ways; each break must be reported."""
    import copy

    def find(docs, kind, name=None):
        for _, obj in docs:
            if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name):
                return obj
        raise SystemExit(f"self-test: no {kind} {name or ''} in {paths}")

    def container(docs):
        return find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]

    def lb_ports(docs):
        return [o for _, o in docs if o["kind"] == "Service" and o["spec"].get("type") == "LoadBalancer"][0]["spec"]["ports"]

    def set_config(docs, old, new):
        cm = find(docs, "ConfigMap")
        assert old in cm["data"][CONFIG_KEY], old
        cm["data"][CONFIG_KEY] = cm["data"][CONFIG_KEY].replace(old, new)

    breaks = {
        "service port name too long": (
            lambda d: lb_ports(d)[1].update(name="broker-0-of-the-cluster"), "at most 15"),
        "service port name with capitals": (
            lambda d: lb_ports(d)[1].update(name="Broker-0"), "lowercase"),
        "service port name all digits": (
            lambda d: lb_ports(d)[1].update(name="9092"), "at least one letter"),
        "service port name with --": (
            lambda d: lb_ports(d)[1].update(name="broker--0"), "'--'"),
        "container port name with _": (
            lambda d: container(d)["ports"][0].update(name="boot_strap"), "container kafka-edge port name"),
        "broker port not what clients are told": (
            lambda d: lb_ports(d)[2].update(port=29001), "clients are told 19001"),
        "port base changed, ports not": (
            lambda d: set_config(d, "port_base = 19000", "port_base = 30000"), "serves node 0 at 30000"),
        "node ids above port_base_max_node_id": (
            lambda d: set_config(d, "port_base = 19000", "port_base = 19000\n    port_base_max_node_id = 1"),
            "no rule of the configuration gives node 2 a port"),
        "admin port moved": (
            lambda d: set_config(d, '0.0.0.0:9191', '0.0.0.0:9200'), "admin.listen's port 9200"),
        "configuration not TOML": (
            lambda d: set_config(d, "[brokers]", "[brokers"), "not valid TOML"),
        "root filesystem writable": (
            lambda d: container(d)["securityContext"].update(readOnlyRootFilesystem=False), "readOnlyRootFilesystem"),
        "capabilities kept": (
            lambda d: container(d)["securityContext"].update(capabilities={}), "drop ALL"),
        "network policy misses a broker port": (
            lambda d: find(d, "NetworkPolicy")["spec"]["ingress"][0]["ports"].pop(), "does not let broker-2"),
        "service selects nothing": (
            lambda d: lb_ports(d) and find(d, "Service", "kafka-edge")["spec"].update(selector={"app": "x"}), "matches no workload"),
        "SASL password variable not declared": (
            lambda d: set_config(d, "[brokers]", SASL_SECTION + "[brokers]"), "password_env EDGE_PW is not in"),
        "SASL password as a literal value": (
            lambda d: (set_config(d, "[brokers]", SASL_SECTION + "[brokers]"),
                       container(d).setdefault("env", []).append({"name": "EDGE_PW", "value": "x"})),
            "must come from a Secret"),
        "readiness probe on /livez": (
            lambda d: container(d)["readinessProbe"]["httpGet"].update(path="/livez"), "readinessProbe"),
        "configuration mounted with subPath": (
            lambda d: container(d)["volumeMounts"][0].update(
                mountPath="/etc/kafka-edge/config/kafka-edge.toml", subPath=CONFIG_KEY),
            "never updates"),
        "a checksum annotation rolls the pods": (
            lambda d: find(d, "Deployment")["spec"]["template"]["metadata"].setdefault("annotations", {}).update(
                {"checksum/config": "0"}),
            "roll every pod"),
    }
    return run_breaks(paths, breaks)


def self_test_monitoring(paths: list[str]) -> int:
    """Break a chart rendered with the monitoring objects on; each break must be reported."""

    def find(docs, kind, key=None):
        for _, obj in docs:
            if obj["kind"] == kind and (key is None or key in (obj.get("data") or {})):
                return obj
        raise SystemExit(f"self-test: no {kind} in {paths}")

    def endpoint(docs):
        return find(docs, "ServiceMonitor")["spec"]["endpoints"][0]

    def rule(docs):
        return find(docs, "PrometheusRule")["spec"]["groups"][0]["rules"][0]

    def dashboard(docs, edit):
        cm = find(docs, "ConfigMap", DASHBOARD_KEY)
        cm["data"][DASHBOARD_KEY] = edit(cm["data"][DASHBOARD_KEY])

    breaks = {
        "ServiceMonitor on a port no Service has": (
            lambda d: endpoint(d).update(port="metrics"), "is no port of the Services"),
        "ServiceMonitor on the bootstrap port": (
            lambda d: endpoint(d).update(port="bootstrap"), "is not the admin port"),
        "ServiceMonitor on another path": (
            lambda d: endpoint(d).update(path="/stats"), "is not /metrics"),
        "ServiceMonitor selecting nothing": (
            lambda d: find(d, "ServiceMonitor")["spec"]["selector"].update(matchLabels={"app": "x"}),
            "matches no Service"),
        "PrometheusRule edited": (
            lambda d: rule(d).update(expr="vector(1)"), "spec is not"),
        "dashboard edited": (
            lambda d: dashboard(d, lambda j: j.replace("kafka_edge_ready", "kafka_edge_up")), "is not kafka-edge-dashboard"),
        "dashboard not JSON": (
            lambda d: dashboard(d, lambda j: j[:-2]), "is not JSON"),
    }
    return run_breaks(paths, breaks)


def run_breaks(paths: list[str], breaks: dict) -> int:
    import copy

    good = load_documents(paths)
    baseline = check(copy.deepcopy(good))
    failures = 0
    if baseline.problems:
        print("self-test: the unbroken manifests already fail:", *baseline.problems, sep="\n  ")
        failures += 1
    for label, (breaker, expected) in breaks.items():
        docs = copy.deepcopy(good)
        breaker(docs)
        found = [p for p in check(docs).problems if expected in p]
        print(f"  {'ok  ' if found else 'MISS'} {label}: {found[0] if found else 'not reported'}")
        failures += 0 if found else 1
    print(f"check_manifests self-test: {len(breaks) - failures} of {len(breaks)} breaks caught")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--toml-out", type=Path)
    parser.add_argument("--self-test", action="store_true",
                        help="break FILES (the raw gateway manifests) in known ways and check each is caught")
    parser.add_argument("--self-test-monitoring", action="store_true",
                        help="break FILES (a chart rendered with monitoring on) in known ways and check each is caught")
    args = parser.parse_args()
    if args.self_test:
        return self_test(args.files)
    if args.self_test_monitoring:
        return self_test_monitoring(args.files)
    result = check(load_documents(args.files), args.toml_out)
    for line in result.checked:
        print(f"  ok   {line}")
    for line in result.problems:
        print(f"  FAIL {line}")
    print(f"check_manifests: {len(result.checked)} checks passed, {len(result.problems)} problems "
          f"in {', '.join(args.files)}")
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
