#!/usr/bin/env python3
"""Checks a gateway's /metrics with the official Prometheus Python parsers.

    exposition.py check TEXT OPENMETRICS   the two scrapes of one gateway, as files
    exposition.py self-test                 the checks refuse known-bad expositions

`check` fails (exit 1, the reason on stderr) unless:
  - TEXT parses with prometheus_client's text-format parser and every family it yields
    was declared by its own `# TYPE` line: that parser is lax, and reads a sample whose
    family was already closed (samples interleaved across families) as a new untyped
    family, so the count of families must equal the count of TYPE lines, and no family
    name may come twice;
  - OPENMETRICS parses with prometheus_client's OpenMetrics parser, which is strict
    (metadata after samples, interleaved groups, histogram buckets, the # EOF);
  - both carry the same samples (names, labels, values).
It then prints, as JSON, what the gateway exports: every sample name with the labels
it carries and their values. tests/ops.rs reads that to check the dashboard and alert expressions.

Needs prometheus-client (pip) at the version .ci/run installs.
"""

import json
import math
import sys

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text


class Invalid(Exception):
    pass


def type_lines(text):
    return [line for line in text.splitlines() if line.startswith("# TYPE ")]


def check_text(text):
    """The families of a Prometheus text exposition, each declared once by its TYPE."""
    try:
        families = list(parse_text(text))
    except ValueError as e:
        raise Invalid(f"text format: parser error: {e!r}") from e
    declared = type_lines(text)
    if len(families) != len(declared):
        untyped = sorted({f.name for f in families if f.type in ("untyped", "unknown")})
        raise Invalid(
            f"text format: {len(families)} families for {len(declared)} TYPE lines "
            f"(samples outside their family read as untyped: {', '.join(untyped[:8])}"
            f"{' ...' if len(untyped) > 8 else ''})"
        )
    names = [f.name for f in families]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise Invalid(f"text format: families declared more than once: {twice}")
    return families


def check_openmetrics(text):
    try:
        return list(parse_openmetrics(text))
    except ValueError as e:
        raise Invalid(f"OpenMetrics: parser error: {e!r}") from e


def samples(families):
    out = {}
    for family in families:
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in out:
                raise Invalid(f"sample {s.name}{dict(key[1])} appears twice")
            out[key] = s.value
    return out


def same(a, b):
    return a == b or (math.isnan(a) and math.isnan(b))


def check(text, openmetrics):
    text_families = check_text(text)
    om_families = check_openmetrics(openmetrics)
    in_text, in_om = samples(text_families), samples(om_families)
    only_text = sorted(set(in_text) - set(in_om))
    only_om = sorted(set(in_om) - set(in_text))
    if only_text or only_om:
        raise Invalid(
            f"the formats disagree: only in text {only_text[:5]}, only in OpenMetrics {only_om[:5]}"
        )
    differ = [k for k in in_text if not same(in_text[k], in_om[k])]
    if differ:
        raise Invalid(f"the formats disagree on values: {differ[:5]}")
    exported = {}
    for (name, labels), _ in in_text.items():
        values = exported.setdefault(name, {})
        for label, value in labels:
            values.setdefault(label, set()).add(value)
    return {
        "families": len(text_families),
        "type_lines": len(type_lines(text)),
        "samples": len(in_text),
        "exported": {
            name: {label: sorted(values) for label, values in sorted(labels.items())}
            for name, labels in sorted(exported.items())
        },
    }


# Today's output before the move to prometheus-client, trimmed: the per-API families
# interleaved, as the hand-written renderer wrote them.
INTERLEAVED = """\
# HELP kafka_edge_requests_total Requests relayed to brokers, by route and API.
# TYPE kafka_edge_requests_total counter
# HELP kafka_edge_responses_total Responses relayed to clients, by route and API.
# TYPE kafka_edge_responses_total counter
kafka_edge_requests_total{route="bootstrap",api_key="3",api="Metadata"} 1
kafka_edge_responses_total{route="bootstrap",api_key="3",api="Metadata"} 1
"""

GOOD_TEXT = """\
# HELP kafka_edge_requests_total Requests relayed to brokers, by route and API.
# TYPE kafka_edge_requests_total counter
kafka_edge_requests_total{route="bootstrap",api_key="3",api="Metadata"} 1
"""

GOOD_OPENMETRICS = """\
# HELP kafka_edge_requests Requests relayed to brokers, by route and API.
# TYPE kafka_edge_requests counter
kafka_edge_requests_total{route="bootstrap",api_key="3",api="Metadata"} 1
# EOF
"""


def self_test():
    """Each check must refuse what it exists to catch, and pass a minimal good pair."""
    bad = {
        "interleaved families": (INTERLEAVED, GOOD_OPENMETRICS),
        "a family declared twice": (GOOD_TEXT + GOOD_TEXT, GOOD_OPENMETRICS),
        "OpenMetrics without # EOF": (GOOD_TEXT, GOOD_OPENMETRICS.replace("# EOF\n", "")),
        "OpenMetrics counter named _total in TYPE": (
            GOOD_TEXT,
            GOOD_OPENMETRICS.replace("TYPE kafka_edge_requests ", "TYPE kafka_edge_requests_total "),
        ),
        "values that differ": (GOOD_TEXT.replace("} 1", "} 2"), GOOD_OPENMETRICS),
        "a sample only in one format": (
            GOOD_TEXT,
            GOOD_OPENMETRICS.replace(
                "# EOF", 'kafka_edge_requests_total{route="1",api_key="3",api="Metadata"} 1\n# EOF'
            ),
        ),
    }
    for what, (text, om) in bad.items():
        try:
            check(text, om)
        except Invalid as e:
            print(f"self-test: refused {what}: {e}")
            continue
        print(f"self-test: FAILED: accepted {what}", file=sys.stderr)
        return 1
    summary = check(GOOD_TEXT, GOOD_OPENMETRICS)
    expected = {"api": ["Metadata"], "api_key": ["3"], "route": ["bootstrap"]}
    if summary["exported"] != {"kafka_edge_requests_total": expected}:
        print(f"self-test: FAILED: good pair summarised as {summary}", file=sys.stderr)
        return 1
    print("self-test: passed")
    return 0


def main(argv):
    if argv[1:] == ["self-test"]:
        return self_test()
    if len(argv) != 4 or argv[1] != "check":
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[2], encoding="utf-8") as f:
        text = f.read()
    with open(argv[3], encoding="utf-8") as f:
        openmetrics = f.read()
    try:
        summary = check(text, openmetrics)
    except Invalid as e:
        print(f"exposition.py: {e}", file=sys.stderr)
        return 1
    json.dump(summary, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
