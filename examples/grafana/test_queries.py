#!/usr/bin/env python3
"""Evaluate the dashboard's key queries on synthetic series with `promtool test rules`.

    python3 examples/grafana/test_queries.py [DASHBOARD]

Takes the queries from the dashboard by panel title (so it tests the JSON that ships, not a copy),
replaces Grafana's variables ($__rate_interval and $__range by 5m, $mode by .*), and checks their values
at one instant against numbers worked out by hand: override rate (only from != to counts, across
instances; same-tier overrides are left out), escalation rate, cost per task, savings, USD saved,
decision-time p50 / p99, upstream 5xx share; and that the override and escalation rates are 0, not
empty, when no override or escalation has happened.

Needs promtool (Debian: apt-get install prometheus). Python 3 standard library otherwise.
Exit status: 0 all passed, 1 a query gave a wrong value, 2 promtool or a panel is missing.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

# Counters at 1-minute steps from 0: "0+60x10" grows by 60 a minute, i.e. 1/s.
SERIES = [
    # automatically routed: 3/s (scored, rule, override); explicit_model is not
    ('triage_requests{mode="enforce",tier="small",cause="scored"}', "0+60x10"),
    ('triage_requests{mode="enforce",tier="mid",cause="rule"}', "0+60x10"),
    ('triage_requests{mode="enforce",tier="mid",cause="override"}', "0+60x10"),
    ('triage_requests{mode="shadow",tier="small",cause="explicit_model"}', "0+60x10"),
    # overrides that changed the tier: 0.1 + 0.1 + 0.1 + 0.1 = 0.4/s; same-tier: 0.6/s, not counted
    ('triage_overrides{instance="a",from="small",to="mid"}', "0+6x10"),
    ('triage_overrides{instance="b",from="small",to="mid"}', "0+6x10"),
    ('triage_overrides{instance="a",from="mid",to="frontier"}', "0+6x10"),
    ('triage_overrides{instance="b",from="frontier",to="small"}', "0+6x10"),
    ('triage_overrides{instance="a",from="mid",to="mid"}', "0+30x10"),
    ('triage_overrides{instance="a",from="frontier",to="frontier"}', "0+6x10"),
    ('triage_escalations{from="small",to="mid",cause="upstream_error"}', "0+18x10"),
    # 0.1 USD/s charged, 0.4 USD/s at the top tier's prices
    ('triage_cost_micro_usd{tier="small"}', "0+6000000x10"),
    ('triage_top_tier_cost_micro_usd{tier="small"}', "0+24000000x10"),
    # half the decisions within 100 us, all within 1000 us
    ('triage_decision_us_bucket{le="100"}', "0+30x10"),
    ('triage_decision_us_bucket{le="1000"}', "0+60x10"),
    ('triage_decision_us_bucket{le="+Inf"}', "0+60x10"),
    ('envoy_cluster_upstream_rq_xx{envoy_cluster_name="tier_small",envoy_response_code_class="5"}', "0+6x10"),
    ('envoy_cluster_upstream_rq_xx{envoy_cluster_name="tier_small",envoy_response_code_class="2"}', "0+54x10"),
]

# (panel type, panel title, refId, expected labels, expected value)
EXPECTED = [
    ("stat", "Override rate", "A", "{}", 0.4 / 3),
    ("timeseries", "Override rate", "A", "{}", 0.4 / 3),
    ("stat", "Escalation rate", "A", "{}", 0.3 / 3),
    ("timeseries", "Escalation rate", "A", "{}", 0.3 / 3),
    ("stat", "Cost per task", "A", "{}", 0.1 / 4),
    ("timeseries", "Cost per task", "A", "{}", 0.1 / 4),
    ("stat", "Savings vs all-top-tier", "A", "{}", 0.75),
    ("timeseries", "Savings vs all-top-tier", "A", "{}", 0.75),
    ("stat", "Saved vs all-top-tier", "A", "{}", (0.4 - 0.1) * 300),
    ("timeseries", "Decision time p50 / p99", "A", "{}", 100),
    ("timeseries", "Decision time p50 / p99", "B", "{}", 100 + 900 * 0.49 / 0.5),
    ("timeseries", "Upstream 5xx share by tier cluster", "A", '{envoy_cluster_name="tier_small"}', 0.1),
]
# Without any override or escalation series the rates are 0.
EXPECTED_QUIET = [
    ("stat", "Override rate", "A", "{}", 0),
    ("stat", "Escalation rate", "A", "{}", 0),
]


def queries(dashboard):
    found = {}

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets") or []:
                expr = target.get("expr", "")
                for var, value in (("$__rate_interval", "5m"), ("$__range", "5m"), ("$mode", ".*")):
                    expr = expr.replace(var, value)
                found[(panel.get("type"), panel.get("title"), target.get("refId"))] = expr
            walk(panel.get("panels") or [])

    walk(dashboard.get("panels") or [])
    return found


def case(exprs, series, expected):
    tests = []
    for kind, title, ref, labels, value in expected:
        # 1 when the query is within 1e-9 of the value (promtool compares floats exactly); no
        # sample at all when the query has none, which fails the test too.
        expr = f"abs(({exprs[(kind, title, ref)]}) - {value!r}) < bool 1e-9"
        tests.append({"expr": expr, "eval_time": "10m", "exp_samples": [{"labels": labels, "value": 1}]})
    return {"interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series],
            "promql_expr_test": tests}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "triage-dashboard.json")
    promtool = shutil.which("promtool")
    if promtool is None:
        print("test_queries.py: promtool is not on PATH (Debian: apt-get install prometheus)", file=sys.stderr)
        return 2
    with open(path, encoding="utf-8") as f:
        exprs = queries(json.load(f))
    missing = [e[:3] for e in EXPECTED + EXPECTED_QUIET if e[:3] not in exprs]
    if missing:
        print(f"test_queries.py: no such panel query in {path}: {missing}", file=sys.stderr)
        return 2
    quiet = [s for s in SERIES if not s[0].startswith(("triage_overrides", "triage_escalations"))]
    spec = {"rule_files": [], "evaluation_interval": "1m",
            "tests": [case(exprs, SERIES, EXPECTED), case(exprs, quiet, EXPECTED_QUIET)]}
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = os.path.join(tmp, "dashboard_test.yml")
        with open(spec_path, "w", encoding="utf-8") as f:
            json.dump(spec, f, indent=1)  # JSON is YAML
        run = subprocess.run([promtool, "test", "rules", spec_path], capture_output=True, text=True)
    sys.stdout.write(run.stdout)
    sys.stderr.write(run.stderr)
    count = len(EXPECTED) + len(EXPECTED_QUIET)
    if run.returncode != 0:
        print(f"test_queries.py: FAILED (promtool's report above; {count} checks)", file=sys.stderr)
        return 1
    print(f"{count} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
