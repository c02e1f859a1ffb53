#!/usr/bin/env bash
# Starts the triage stack (Envoy + the triage filter + mock LLM tiers), sends every request of
# examples/requests.jsonl through Envoy with curl, and prints where each one went. The stack stays up.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/envoy/stack.sh" up
echo
python3 - "$repo/examples/requests.jsonl" "http://127.0.0.1:${TRIAGE_LISTEN_PORT:-10000}" <<'PY'
import json, subprocess, sys, tempfile, os

requests_file, base_url = sys.argv[1], sys.argv[2]

def send(example, workdir):
    body_path = os.path.join(workdir, "body.json")
    head_path = os.path.join(workdir, "head.txt")
    with open(body_path, "w") as f:
        json.dump(example["body"], f)
    command = ["curl", "-sS", "-m", "30", "-o", "-", "-D", head_path,
               "-H", "content-type: application/json", "--data-binary", "@" + body_path]
    for name, value in example.get("headers", {}).items():
        command += ["-H", f"{name}: {value}"]
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
widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
for i, row in enumerate(rows):
    print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if i == 0:
        print("-+-".join("-" * width for width in widths))
PY
echo
down="envoy/stack.sh down"
[[ -n "${TRIAGE_LISTEN_PORT:-}" ]] && down="TRIAGE_LISTEN_PORT=$TRIAGE_LISTEN_PORT $down"
echo "The stack is still up (Envoy on http://127.0.0.1:${TRIAGE_LISTEN_PORT:-10000}); stop it with: $down"
