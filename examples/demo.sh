#!/usr/bin/env bash
# Starts the triage stack (Envoy + the triage filter + mock LLM tiers), sends every request of
# examples/requests.jsonl through Envoy with curl and prints where each one went; then makes the small
# tier fail once to show an escalation, and prints what operators read back: the Prometheus metrics
# and `triage report` over the decision log. Last, a second stack runs tiers of an operator's own
# (examples/tiers-of-your-own.json: four, named after their models) and routes the same requests.
# The first stack stays up.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${TRIAGE_LISTEN_PORT:-10000}"
admin="${TRIAGE_ADMIN_PORT:-9901}"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p triage-cli
"$repo/envoy/stack.sh" up
echo
# route_examples PORT [escalate]: sends every example through the stack listening on PORT (callers'
# tokens made with its keys) and prints where each went; with `escalate`, also the escalation row.
route_examples() {
python3 - "$repo" "http://127.0.0.1:$1" "$repo/envoy/.run/$1/auth" "${2:-}" <<'PY'
import json, subprocess, sys, tempfile, os

repo, base_url, keys, escalate = sys.argv[1:5]
requests_file = os.path.join(repo, "examples/requests.jsonl")

def token(caller):
    """A caller token the stack's jwt_authn verifies (the example's `caller`: sub and team)."""
    command = [os.path.join(repo, ".venv/bin/python3"), os.path.join(repo, "envoy/auth/tokens.py"),
               "token", keys, "--sub", caller["sub"]]
    if "team" in caller:
        command += ["--team", caller["team"]]
    return subprocess.run(command, capture_output=True, check=True, text=True).stdout.strip()

def send(example, workdir):
    body_path = os.path.join(workdir, "body.json")
    head_path = os.path.join(workdir, "head.txt")
    with open(body_path, "w") as f:
        json.dump(example["body"], f)
    command = ["curl", "-sS", "-m", "30", "-o", "-", "-D", head_path,
               "-H", "content-type: application/json", "--data-binary", "@" + body_path]
    for name, value in example.get("headers", {}).items():
        command += ["-H", f"{name}: {value}"]
    if "caller" in example:
        command += ["-H", f"authorization: Bearer {token(example['caller'])}"]
    answer = subprocess.run(command + [base_url + example["path"]],
                            capture_output=True, check=True).stdout
    headers = {}
    with open(head_path) as f:
        for line in f:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
    try:
        model = json.loads(answer).get("model", "?")
    except ValueError:
        model = "(not JSON)"
    return headers, model

rows = [("id", "tier", "model", "score", "served by", "reason")]
with tempfile.TemporaryDirectory() as workdir, open(requests_file) as f:
    for line in f:
        if not line.strip():
            continue
        example = json.loads(line)
        headers, model = send(example, workdir)
        rows.append((example["id"], headers.get("x-triage-tier", "-"), model,
                     headers.get("x-triage-score", "-"), headers.get("x-mock-tier", "-"),
                     headers.get("x-triage-reason", "-")))
    if escalate:
        # The small tier answers 503 (a mock switch): the filter asks mid instead.
        failing = {"id": "small-tier-down", "path": "/v1/chat/completions",
                   "headers": {"x-mock-fail": "status=503", "x-mock-fail-tier": "small"},
                   "body": {"model": "auto", "messages": [{"role": "user", "content":
                            "Classify the sentiment of this review as positive or negative: 'Great phone, love it.'"}]}}
        headers, model = send(failing, workdir)
        escalated = headers.get("x-triage-escalated", "-") + " (" + headers.get("x-triage-escalation-cause", "-") + ")"
        rows.append((failing["id"], headers.get("x-triage-tier", "-"), model,
                     headers.get("x-triage-score", "-"), headers.get("x-mock-tier", "-"),
                     "escalated " + escalated))
widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
for i, row in enumerate(rows):
    print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if i == 0:
        print("-+-".join("-" * width for width in widths))
PY
}
route_examples "$port" escalate
echo
echo "Metrics (non-zero triage_* series of http://127.0.0.1:$admin/stats/prometheus):"
curl -sS "http://127.0.0.1:$admin/stats/prometheus" \
    | grep -E '^triage_(requests|escalations|cost_micro_usd|top_tier_cost_micro_usd)\{' | grep -v ' 0$'
echo
# Envoy flushes the access log every second.
sleep 1.5
echo "triage report envoy/.run/$port/access.log"
(cd "$repo" && target/release/triage report "envoy/.run/$port/access.log")
echo
# Tiers of your own: four, named after their models, declared once in the plugin config; the stack's
# routes, clusters and mock upstreams follow from it. Proofs go to opus by the config's own rule.
own_port=$((port + 100))
export_own() { TRIAGE_LISTEN_PORT=$own_port TRIAGE_ADMIN_PORT=$((own_port + 1)) TRIAGE_UPSTREAM_PORT=$((own_port + 11)) "$@"; }
echo "Tiers of your own: TRIAGE_PLUGIN_CONFIG=examples/tiers-of-your-own.json envoy/stack.sh up"
(cd "$repo" && export_own env TRIAGE_PLUGIN_CONFIG=examples/tiers-of-your-own.json envoy/stack.sh up | sed -n 2p)
route_examples "$own_port"
(cd "$repo" && export_own envoy/stack.sh down)
echo
down="envoy/stack.sh down"
[[ -n "${TRIAGE_LISTEN_PORT:-}" ]] && down="TRIAGE_LISTEN_PORT=$TRIAGE_LISTEN_PORT $down"
echo "The stack is still up (Envoy on http://127.0.0.1:$port); stop it with: $down"
