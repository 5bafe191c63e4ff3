#!/usr/bin/env python3
"""Prints, as JSON, every PromQL expression of kafka-edge's dashboard and alert rules.

    queries.py DASHBOARD.json ALERTS.yaml

Output: a list of {"origin": ..., "expr": ...}. tests/ops.rs parses each expression
with a PromQL parser and checks every metric and label it names against a running
gateway's /metrics.

Grafana's own syntax is turned into PromQL first: interval variables ($__rate_interval,
$__interval, $__range) become 5m, other variables ($namespace, ${pod}) the regex .*, and
a variable query label_values(SELECTOR, LABEL) becomes count by (LABEL) (SELECTOR), so
that its label is checked too. Fails (exit 1) on a panel target without an expression,
an alert without one, or a file holding none at all.
"""

import json
import re
import sys

import yaml

INTERVAL = re.compile(r"\$(?:__rate_interval|__interval|__range)\b|\$\{(?:__rate_interval|__interval|__range)\}")
VARIABLE = re.compile(r"\$\{\w+\}|\$\w+")
LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)


class Invalid(Exception):
    pass


def promql(grafana):
    expr = VARIABLE.sub(".*", INTERVAL.sub("5m", grafana))
    values = LABEL_VALUES.match(expr)
    if values:
        return f"count by ({values.group(2)}) ({values.group(1)})"
    return expr


def panels(items):
    for panel in items:
        yield panel
        yield from panels(panel.get("panels") or [])


def dashboard_queries(path):
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    out = []
    for panel in panels(dashboard.get("panels") or []):
        for target in panel.get("targets") or []:
            if not target.get("expr"):
                raise Invalid(f"{path}: panel {panel.get('title')!r} has a target without expr")
            out.append((f"{path}: panel {panel['title']!r}", target["expr"]))
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if not query:
            raise Invalid(f"{path}: variable {variable.get('name')!r} has no query")
        out.append((f"{path}: variable {variable['name']!r}", query))
    return out


def alert_queries(path):
    with open(path, encoding="utf-8") as f:
        rules = yaml.safe_load(f)
    out = []
    for group in rules.get("groups") or []:
        for rule in group.get("rules") or []:
            name = rule.get("alert") or rule.get("record")
            if not rule.get("expr"):
                raise Invalid(f"{path}: rule {name!r} has no expr")
            out.append((f"{path}: rule {name!r}", rule["expr"]))
    return out


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        found = {argv[1]: dashboard_queries(argv[1]), argv[2]: alert_queries(argv[2])}
        for path, queries in found.items():
            if not queries:
                raise Invalid(f"{path}: no expression found")
    except Invalid as e:
        print(f"queries.py: {e}", file=sys.stderr)
        return 1
    listed = [
        {"origin": origin, "expr": promql(expr)}
        for queries in found.values()
        for origin, expr in queries
    ]
    json.dump(listed, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
