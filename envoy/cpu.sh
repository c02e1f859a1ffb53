#!/usr/bin/env bash
# CPU the Envoy process spends per request, for the same 1 KB chat request through four stacks side by
# side: the baseline (Envoy's buffer filter), a wasm filter that only buffers the body
# (envoy/noop-filter: what any body-reading wasm filter costs), triage with only its tiers configured,
# and triage with the shipped plugin config. CPU time is the Envoy process's user + system time from
# /proc over each run, divided by the requests wrk completed; closed loop, one connection.
#   envoy/cpu.sh [seconds per run, default 10] [rounds, default 2]
# Prints each round and the mean per stack, then stops every stack. Traffic stays on 127.0.0.1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
seconds="${1:-10}"
rounds="${2:-2}"
work="$(mktemp -d)"

if ! command -v wrk >/dev/null; then
    apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi

# name listen-port stack.sh-arguments...; each stack gets listen, admin and three tier ports.
stacks=(
    "baseline 11000 --baseline"
    "noop-wasm 11100"
    "triage-tiers-only 11200"
    "triage-shipped 11300"
)
env_for() { # env_for <name> <port>: the environment stack.sh runs with for that stack
    local name="$1" base="$2"
    echo "TRIAGE_LISTEN_PORT=$base TRIAGE_ADMIN_PORT=$((base + 1)) TRIAGE_UPSTREAM_PORT=$((base + 11))"
    case "$name" in
    noop-wasm) echo "TRIAGE_WASM=$repo/target/noop-filter/wasm32-wasip1/release/noop_filter.wasm" ;;
    triage-tiers-only) echo "TRIAGE_PLUGIN_CONFIG=$work/tiers-only.json" ;;
    esac
}
cleanup() {
    for entry in "${stacks[@]}"; do
        set -- $entry
        env $(env_for "$1" "$2") bash "$here/stack.sh" down >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

cargo build -q --release --target wasm32-wasip1 --manifest-path "$here/noop-filter/Cargo.toml" \
    --target-dir "$repo/target/noop-filter"
python3 - "$here/plugin-config.json" "$work/tiers-only.json" <<'PY'
import json, sys
shipped = json.load(open(sys.argv[1]))
json.dump({"tiers": shipped["tiers"]}, open(sys.argv[2], "w"))
PY
python3 - >"$work/body.json" <<'PY'
import json
sentence = ("The reconciliation job updates account balances in one transaction every night, and the "
            "payment service sees timeouts while it runs. ")
text = ""
while len(text) < 1024 - 120:
    text += sentence
text += "What should we change first, and why?"
print(json.dumps({"model": "auto", "messages": [{"role": "user", "content": text}]}))
PY
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open("$work/body.json", "rb"))
wrk.body = file:read("*a")
file:close()
LUA

for entry in "${stacks[@]}"; do
    set -- $entry
    name="$1" base="$2"
    shift 2
    env $(env_for "$name" "$base") bash "$here/stack.sh" up "$@" >/dev/null
done

hz="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
printf '%-20s %6s %10s %14s\n' stack round requests "cpu us/request"
declare -A total
for round in $(seq "$rounds"); do
    for entry in "${stacks[@]}"; do
        set -- $entry
        name="$1" base="$2"
        pid="$(cat "$here/.run/$base/envoy.pid")"
        before="$(cpu_ticks "$pid")"
        requests="$(wrk -t1 -c1 -d"${seconds}s" -s "$work/post.lua" "http://127.0.0.1:$base/v1/chat/completions" |
            awk '/requests in/ {print $1}')"
        after="$(cpu_ticks "$pid")"
        per_request=$(((after - before) * 1000000 / hz / requests))
        total[$name]=$((${total[$name]:-0} + per_request))
        printf '%-20s %6s %10s %14s\n' "$name" "$round" "$requests" "$per_request"
    done
done
echo "mean over $rounds rounds:"
for entry in "${stacks[@]}"; do
    set -- $entry
    printf '%-20s %14s us/request\n' "$1" $((${total[$1]} / rounds))
done
