#!/usr/bin/env python3
"""Checks that every metric the shipped Grafana dashboard and alerting rules query is one
relayban exports, and that they query some at all.

usage: check_names.py METRICS_TEXT DASHBOARD_JSON ALERT_RULES_YAML
  METRICS_TEXT: relayban's exposition (relayban metrics, the textfile or /metrics)
exit 1 naming each unknown metric."""
import json
import re
import sys

# Identifiers that look like metric names: prefixes we or Prometheus' conventions use.
METRIC = re.compile(r"\b((?:relayban|process|node|go|prometheus)_[a-zA-Z0-9_]+|up)\b")
# Label matchers and strings hold values, not metric names.
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def exported(path):
    names = set()
    for line in open(path, encoding="utf-8"):
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if not m:
            continue
        names.add(m.group(1))
        if m.group(2) == "histogram":
            names.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
    return names


def dashboard_exprs(path):
    d = json.load(open(path, encoding="utf-8"))
    out = []
    for p in d.get("panels", []):
        for t in p.get("targets", []):
            out.append(("panel '%s'" % p.get("title"), t["expr"]))
    for v in d.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if isinstance(q, str) and v.get("type") == "query":
            out.append(("variable '%s'" % v.get("name"), q))
    return out


def alert_exprs(path):
    out, name, block = [], None, None
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\s*- alert: (\S+)", line)
        if m:
            name = m.group(1)
        m = re.match(r"(\s*)expr: (.*)", line)
        if m:
            if m.group(2).strip() == "|":
                block = (len(m.group(1)), [])
                continue
            out.append(("alert " + str(name), m.group(2)))
            continue
        if block is not None:
            if line.strip() and len(line) - len(line.lstrip()) > block[0]:
                block[1].append(line.strip())
                continue
            out.append(("alert " + str(name), " ".join(block[1])))
            block = None
    if block is not None:
        out.append(("alert " + str(name), " ".join(block[1])))
    return out


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    names = exported(sys.argv[1])
    exprs = dashboard_exprs(sys.argv[2]) + alert_exprs(sys.argv[3])
    bad = []
    used = set()
    for where, expr in exprs:
        found = METRIC.findall(QUOTED.sub('""', expr))
        if not found:
            bad.append("%s queries no metric: %s" % (where, expr))
        for n in found:
            used.add(n)
            if n not in names:
                bad.append("%s queries %s, which relayban does not export" % (where, n))
    if len(exprs) < 10:
        bad.append("only %d queries found: the files were not parsed" % len(exprs))
    for b in bad:
        print(b)
    print("%d queries, %d metrics used, %d exported" % (len(exprs), len(used), len(names)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
