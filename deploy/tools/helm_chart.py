#!/usr/bin/env python3
"""Lint and render the kafka-edge Helm chart offline, with helm-python-sdk.

helm-python-sdk (PyPI) ships no `helm` binary: it binds the Helm Go SDK (a
shared library, libhelm_c, inside the wheel) with ctypes. `lint` and `render`
below are what `helm lint` and `helm template` do, without a cluster.

    helm_chart.py lint   CHART [--values FILE]...
    helm_chart.py render CHART --out FILE [--values FILE] [--name NAME] [--namespace NS]
    helm_chart.py refuse CHART --values FILE --expect TEXT

`lint` runs once with the chart's defaults plus once per values file, in strict
mode (warnings fail), and exits non-zero when any run reports a warning or an
error. `render` writes every rendered template into one multi-document YAML
file (empty templates left out), like `helm template`. `refuse` passes only
when rendering with FILE fails with an error containing TEXT: the chart's own
checks on its values (a broker port on the bootstrap port, SNI without TLS...).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import helm_python as helm
import yaml

SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def load_values(path: str | None) -> dict | None:
    if path is None:
        return None
    values = yaml.safe_load(Path(path).read_text())
    return values or {}


def lint(chart: str, values_files: list[str], kube_version: str) -> int:
    failed = 0
    for values_file in [None, *values_files]:
        label = values_file or "default values"
        report = helm.lint(
            chart, load_values(values_file), strict=True, kube_version=kube_version
        )
        problems = 0
        for message in report.get("messages") or []:
            severity = message.get("severity", 0)
            print(
                f"  [{SEVERITY.get(severity, severity)}] {message.get('path')}: "
                f"{message.get('error')}"
            )
            if severity >= 2:
                problems += 1
        for error in report.get("errors") or []:
            print(f"  [ERROR] {error}")
            problems += 1
        state = "FAILED" if problems else "ok"
        print(
            f"helm lint {chart} ({label}, kube {kube_version}): "
            f"{report.get('total_charts_linted')} chart(s) linted, {state}"
        )
        failed += 1 if problems else 0
    return 1 if failed else 0


def render(chart: str, values_file: str | None, out: str, name: str, namespace: str) -> int:
    with helm.Chart.load(chart) as loaded:
        manifests = loaded.render(
            load_values(values_file), name=name, namespace=namespace, is_install=True
        )
    documents = []
    for path in sorted(manifests):
        text = manifests[path].strip()
        if not path.endswith((".yaml", ".yml")):
            continue  # NOTES.txt, helpers
        if not text or all(
            not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
        ):
            continue
        documents.append(f"# Source: {path}\n{text}\n")
    Path(out).write_text("---\n".join(documents))
    print(f"helm template {chart} ({values_file or 'default values'}): "
          f"{len(documents)} manifest(s) -> {out}")
    return 0


def refuse(chart: str, values_file: str, expect: str) -> int:
    try:
        with helm.Chart.load(chart) as loaded:
            loaded.render(load_values(values_file), name="kafka-edge", namespace="kafka-edge")
    except helm.HelmError as e:
        if expect in str(e):
            print(f"helm template {chart} ({values_file}): refused as expected: {expect}")
            return 0
        print(f"helm template {chart} ({values_file}): refused, but not with {expect!r}: {e}")
        return 1
    print(f"helm template {chart} ({values_file}): rendered, but should fail with {expect!r}")
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    lint_args = sub.add_parser("lint")
    lint_args.add_argument("chart")
    lint_args.add_argument("--values", action="append", default=[])
    lint_args.add_argument("--kube-version", default="v1.30.0")
    render_args = sub.add_parser("render")
    render_args.add_argument("chart")
    render_args.add_argument("--values")
    render_args.add_argument("--out", required=True)
    render_args.add_argument("--name", default="kafka-edge")
    render_args.add_argument("--namespace", default="kafka-edge")
    refuse_args = sub.add_parser("refuse")
    refuse_args.add_argument("chart")
    refuse_args.add_argument("--values", required=True)
    refuse_args.add_argument("--expect", required=True)
    args = parser.parse_args()
    if args.command == "refuse":
        return refuse(args.chart, args.values, args.expect)
    try:
        if args.command == "lint":
            return lint(args.chart, args.values, args.kube_version)
        return render(args.chart, args.values, args.out, args.name, args.namespace)
    except helm.HelmError as e:
        print(f"helm {args.command} {args.chart}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
