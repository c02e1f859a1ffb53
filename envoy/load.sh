#!/usr/bin/env bash
# Closed-loop latency of LLM requests through Envoy with triage against the baseline stack (Envoy's own
# buffer filter in triage's place), same mock tiers, same machine, one run: the ratio is the point.
#   envoy/load.sh [seconds per run, default 10] [connections, default 1]
# Brings up both stacks on their own ports (triage 10200, baseline 10300), runs wrk against each for
# 1 KB, 4 KB and 32 KB chat bodies, prints p50 / p90 / p99 and requests per second, and stops both.
# Traffic stays on 127.0.0.1; every run is bounded by its duration.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
seconds="${1:-10}"
connections="${2:-1}"
work="$(mktemp -d)"

if ! command -v wrk >/dev/null; then
    apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi

stack() { # stack <listen port> up|down [--baseline]
    local base="$1"
    shift
    TRIAGE_LISTEN_PORT="$base" TRIAGE_ADMIN_PORT=$((base + 1)) TRIAGE_UPSTREAM_PORT=$((base + 11)) \
        bash "$here/stack.sh" "$@"
}
cleanup() {
    stack 10200 down >/dev/null 2>&1 || true
    stack 10300 down >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

stack 10200 up >/dev/null
stack 10300 up --baseline >/dev/null

cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open(os.getenv("TRIAGE_LOAD_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()
LUA

# A chat request of ordinary prose and a question, `size` bytes long, routed by score (model "auto").
body() {
    python3 - "$1" <<'PY'
import json, sys
size = int(sys.argv[1])
sentence = ("The reconciliation job updates account balances in one transaction every night, and the "
            "payment service sees timeouts while it runs. ")
text = ""
while len(text) < size - 120:
    text += sentence
text += "What should we change first, and why?"
print(json.dumps({"model": "auto", "messages": [{"role": "user", "content": text}]}))
PY
}

printf '%-8s %-9s %10s %10s %10s %10s\n' body stack p50 p90 p99 req/s
for size in ${LOAD_SIZES:-1024 4096 32768}; do
    body "$size" >"$work/body-$size.json"
    for flavour in triage:10200 baseline:10300; do
        name="${flavour%%:*}"
        port="${flavour##*:}"
        out="$(TRIAGE_LOAD_BODY="$work/body-$size.json" wrk -t1 -c"$connections" -d"${seconds}s" \
            --latency -s "$work/post.lua" "http://127.0.0.1:$port/v1/chat/completions")"
        if grep -q "Non-2xx" <<<"$out"; then
            echo "load.sh: $name answered non-2xx responses:" >&2
            echo "$out" >&2
            exit 1
        fi
        pct() { awk -v p="$1" '$1 == p { print $2 }' <<<"$out"; }
        rps="$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")"
        printf '%-8s %-9s %10s %10s %10s %10s\n' "$((size / 1024)) KB" "$name" "$(pct 50%)" "$(pct 90%)" "$(pct 99%)" "$rps"
    done
done
