#!/usr/bin/env python3
"""Check a Grafana dashboard JSON model and list the metric names its PromQL uses.

    python3 examples/grafana/check.py [DASHBOARD] [--metrics FILE] [--promtool]

DASHBOARD defaults to triage-dashboard.json beside this script. The check fails (exit 1) when the
model is not an importable dashboard: no uid or title, a panel without a unique id or a valid gridPos,
overlapping panels, a query without expr or refId, a datasource that is not the ${DS_PROMETHEUS}
variable, or a variable used in a query that the dashboard does not define.

It prints every metric name (starting with triage_ or envoy_) that the queries and the variable
queries use, one per line. With --metrics FILE it also fails when a name is not in FILE. FILE holds
metric names, one per line, or is a raw scrape of Envoy's /stats/prometheus: from each line the leading
name is taken, and `# TYPE NAME histogram` also admits NAME_bucket, NAME_sum and NAME_count.

With --promtool it also parses every query with `promtool check rules` (Grafana's variables replaced
by sample values), so a PromQL syntax error fails the check; promtool must be on PATH.

Python 3 standard library only. Exit status: 0 ok, 1 check failed, 2 usage or unreadable input.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

DS_VARIABLE = "DS_PROMETHEUS"
DS_REF = "${%s}" % DS_VARIABLE
GRID_WIDTH = 24
METRIC_PREFIXES = ("triage_", "envoy_")
# Grafana's built-in variables that may appear in queries.
BUILTIN_VARIABLES = {
    "__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms",
    "__dashboard", "__from", "__to", "__user", "__org", "__name", "__all",
}
# Values substituted for variables when handing queries to promtool.
SAMPLE_VALUES = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "__range_s": "3600",
                 "__range_ms": "3600000", "__interval_ms": "15000"}
PANELS_WITHOUT_QUERIES = {"row", "text", "news", "dashlist", "alertlist", "annolist"}

IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(")
VARIABLE = re.compile(r"\$\{([A-Za-z0-9_]+)(?:[.:][^}]*)?\}|\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]|\$([A-Za-z_][A-Za-z0-9_]*)")


def strip_strings_and_comments(expr):
    """Replaces string literals and # comments by spaces (label values and regexes are not names)."""
    out = []
    i = 0
    while i < len(expr):
        c = expr[i]
        if c in "\"'`":
            j = i + 1
            while j < len(expr) and expr[j] != c:
                j += 2 if expr[j] == "\\" and c != "`" else 1
            out.append(" ")
            i = j + 1
        elif c == "#":
            j = expr.find("\n", i)
            i = len(expr) if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_braces(expr):
    """Removes {...} label matchers: their label names are not metric names."""
    out = []
    depth = 0
    for c in expr:
        if c == "{":
            depth += 1
            out.append(" ")
        elif c == "}":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(c)
    return "".join(out)


def strip_grouping(expr):
    """Removes the label lists of by/without/on/ignoring/group_left/group_right (...)."""
    while True:
        m = GROUPING.search(expr)
        if not m:
            return expr
        end = expr.find(")", m.end())
        end = len(expr) if end < 0 else end + 1
        expr = expr[: m.start()] + " " + expr[end:]


def metric_names(expr):
    """Metric names starting with triage_ or envoy_ in a PromQL expression.

    After strings, comments, label matchers and grouping label lists are removed, an identifier can
    only be a metric name, a function, a keyword or a number's unit: functions and keywords never start
    with triage_ or envoy_. Grafana variables are removed first.
    """
    expr = VARIABLE.sub(" ", expr)
    expr = strip_grouping(strip_braces(strip_strings_and_comments(expr)))
    names = set()
    for m in IDENT.finditer(expr):
        name = m.group(0)
        before = expr[m.start() - 1] if m.start() > 0 else " "
        if before.isalnum() or before in "_.":
            continue  # the tail of a number like 1e6 or of another token
        if name.startswith(METRIC_PREFIXES):
            names.add(name)
    return names


def label_values_metric(query):
    """The metric of a variable query label_values(METRIC{...}, label), if any."""
    text = query.get("query", "") if isinstance(query, dict) else query or ""
    return metric_names(text) if "label_values" in text or "query_result" in text else set()


def all_panels(panels):
    """Every panel, including those inside collapsed rows."""
    for panel in panels:
        yield panel
        if isinstance(panel, dict):
            yield from all_panels(panel.get("panels") or [])


def used_variables(text):
    for m in VARIABLE.finditer(text):
        yield next(g for g in m.groups() if g)


class Checker:
    def __init__(self, dashboard):
        self.d = dashboard
        self.errors = []
        self.queries = []  # (where, expr)
        self.variable_queries = []  # (where, query)

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")

    def datasource(self, where, ref, required):
        if ref is None:
            if required:
                self.error(where, f"no datasource; must be {{\"type\": \"prometheus\", \"uid\": \"{DS_REF}\"}}")
            return
        if isinstance(ref, str):
            if ref != DS_REF:
                self.error(where, f"datasource {ref!r} is not the {DS_REF} variable")
            return
        if not isinstance(ref, dict) or ref.get("uid") != DS_REF or ref.get("type") not in (None, "prometheus"):
            self.error(where, f"datasource {ref!r} is not {{\"type\": \"prometheus\", \"uid\": \"{DS_REF}\"}}")

    def run(self):
        d = self.d
        if not isinstance(d, dict):
            self.error("dashboard", "the JSON is not an object")
            return
        for key in ("uid", "title"):
            if not isinstance(d.get(key), str) or not d[key].strip():
                self.error("dashboard", f"missing or empty {key}")
        if isinstance(d.get("uid"), str) and not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", d["uid"]):
            self.error("dashboard", f"uid {d['uid']!r} must be 1-40 of [A-Za-z0-9_-]")
        if not isinstance(d.get("schemaVersion"), int):
            self.error("dashboard", "missing schemaVersion")
        if not isinstance(d.get("panels"), list) or not d["panels"]:
            self.error("dashboard", "no panels")
            return
        variables = self.templating()
        self.panels(d["panels"])
        defined = variables | BUILTIN_VARIABLES
        for where, expr in self.queries + self.variable_queries:
            text = expr.get("query", "") if isinstance(expr, dict) else expr
            for name in used_variables(text):
                if name not in defined and not name.isdigit():
                    self.error(where, f"uses ${name}, which the dashboard does not define")

    def templating(self):
        variables = set()
        entries = (self.d.get("templating") or {}).get("list")
        if not isinstance(entries, list):
            self.error("templating", "no templating.list")
            return variables
        for index, var in enumerate(entries):
            if not isinstance(var, dict):
                self.error(f"variable {index}", "not an object")
                continue
            where = f"variable {var.get('name', index)!r}"
            name = var.get("name")
            if not isinstance(name, str) or not name:
                self.error(where, "no name")
                continue
            if name in variables:
                self.error(where, "defined twice")
            variables.add(name)
            if var.get("type") == "query":
                self.datasource(where, var.get("datasource"), required=True)
                self.variable_queries.append((where, var.get("query")))
        ds = next((v for v in entries if isinstance(v, dict) and v.get("name") == DS_VARIABLE), None)
        if ds is None or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            self.error("templating", f"needs a datasource variable {DS_VARIABLE} of query \"prometheus\"")
        return variables

    def panels(self, panels):
        ids = {}
        cells = {}
        for panel in all_panels(panels):
            if not isinstance(panel, dict):
                self.error("panels", f"a panel is not an object: {panel!r}")
                continue
            title = panel.get("title", "")
            pid = panel.get("id")
            where = f"panel {pid} {title!r}"
            if not isinstance(pid, int) or isinstance(pid, bool):
                self.error(where, "id must be an integer")
            elif pid in ids:
                self.error(where, f"id also used by panel {ids[pid]!r}")
            else:
                ids[pid] = title
            kind = panel.get("type")
            if not isinstance(kind, str) or not kind:
                self.error(where, "no type")
            if kind != "row" and not title:
                self.error(where, "no title")
            self.grid(where, panel.get("gridPos"), cells)
            if kind in PANELS_WITHOUT_QUERIES:
                if panel.get("targets"):
                    self.error(where, f"a {kind} panel has targets")
                continue
            self.datasource(where, panel.get("datasource"), required=True)
            targets = panel.get("targets")
            if not isinstance(targets, list) or not targets:
                self.error(where, "no targets")
                continue
            refs = set()
            for index, target in enumerate(targets):
                twhere = f"{where} target {target.get('refId', index)}"
                ref = target.get("refId")
                if not isinstance(ref, str) or not ref:
                    self.error(twhere, "no refId")
                elif ref in refs:
                    self.error(twhere, "refId used twice in the panel")
                refs.add(ref)
                expr = target.get("expr")
                if not isinstance(expr, str) or not expr.strip():
                    self.error(twhere, "no expr")
                    continue
                self.datasource(twhere, target.get("datasource"), required=False)
                self.queries.append((twhere, expr))

    def grid(self, where, pos, cells):
        if not isinstance(pos, dict):
            self.error(where, "no gridPos")
            return
        values = {}
        for key in ("x", "y", "w", "h"):
            value = pos.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                self.error(where, f"gridPos.{key} must be a non-negative integer")
                return
            values[key] = value
        if values["w"] < 1 or values["h"] < 1:
            self.error(where, "gridPos w and h must be at least 1")
            return
        if values["x"] + values["w"] > GRID_WIDTH:
            self.error(where, f"gridPos x + w = {values['x'] + values['w']} > {GRID_WIDTH}")
        for x in range(values["x"], min(values["x"] + values["w"], GRID_WIDTH)):
            for y in range(values["y"], values["y"] + values["h"]):
                if (x, y) in cells:
                    self.error(where, f"overlaps {cells[(x, y)]} at x={x}, y={y}")
                    return
        for x in range(values["x"], min(values["x"] + values["w"], GRID_WIDTH)):
            for y in range(values["y"], values["y"] + values["h"]):
                cells[(x, y)] = where

    def metrics(self):
        names = set()
        for _, expr in self.queries:
            names |= metric_names(expr)
        for _, query in self.variable_queries:
            names |= label_values_metric(query)
        return names


def known_metrics(path):
    names = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split()
                if len(parts) >= 4 and parts[1] == "TYPE":
                    names.add(parts[2])
                    if parts[3] in ("histogram", "summary"):
                        names.update(parts[2] + s for s in ("_bucket", "_sum", "_count"))
                continue
            m = IDENT.match(line)
            if m:
                names.add(m.group(0))
    return names


def promtool_check(queries):
    """Parses each query with promtool; returns errors."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return ["--promtool: promtool is not on PATH (Debian: apt-get install prometheus)"]

    def sample(m):
        name = next(g for g in m.groups() if g)
        return SAMPLE_VALUES.get(name, ".*")

    errors = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (where, expr) in enumerate(queries):
            path = os.path.join(tmp, f"q{index}.yml")
            rule = {"groups": [{"name": "q", "rules": [{"record": "q", "expr": VARIABLE.sub(sample, expr)}]}]}
            with open(path, "w", encoding="utf-8") as f:
                json.dump(rule, f)  # JSON is YAML
            run = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
            if run.returncode != 0:
                detail = " ".join((run.stderr or run.stdout).split())
                errors.append(f"{where}: promtool: {detail}")
    return errors


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dashboard", nargs="?", default=os.path.join(here, "triage-dashboard.json"))
    parser.add_argument("--metrics", metavar="FILE", help="known metric names, one per line, or a scrape")
    parser.add_argument("--promtool", action="store_true", help="also parse every query with promtool")
    args = parser.parse_args()

    try:
        with open(args.dashboard, encoding="utf-8") as f:
            dashboard = json.load(f)
    except (OSError, ValueError) as e:
        print(f"check.py: cannot read {args.dashboard}: {e}", file=sys.stderr)
        return 2
    known = None
    if args.metrics:
        try:
            known = known_metrics(args.metrics)
        except OSError as e:
            print(f"check.py: cannot read {args.metrics}: {e}", file=sys.stderr)
            return 2

    checker = Checker(dashboard)
    checker.run()
    errors = list(checker.errors)
    if args.promtool and not errors:
        errors += promtool_check(checker.queries)
    names = sorted(checker.metrics())
    for name in names:
        print(name)
    if known is not None:
        for name in names:
            if name not in known:
                errors.append(f"metric {name} is not in {args.metrics}")
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    panels = sum(1 for _ in all_panels(dashboard.get("panels") or [])) if isinstance(dashboard, dict) else 0
    summary = (f"{args.dashboard}: {panels} panels, {len(checker.queries)} queries, "
               f"{len(names)} metric names")
    if errors:
        print(f"{summary}: FAILED, {len(errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{summary}: ok" + (f", all in {args.metrics}" if known is not None else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
