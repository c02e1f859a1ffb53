#!/usr/bin/env bash
# Runs the triage stack locally: the mock LLM upstream (one port per tier) and Envoy in front of it.
#   stack.sh up [--baseline]   set up, then (re)start both in the background and wait until they serve
#   stack.sh down              stop both (safe to repeat)
#   stack.sh status
# Ports: TRIAGE_LISTEN_PORT (10000), TRIAGE_ADMIN_PORT (9901), TRIAGE_SMALL_PORT (18001),
# TRIAGE_MID_PORT (18002), TRIAGE_FRONTIER_PORT (18003). Plugin config: TRIAGE_PLUGIN_CONFIG
# (a file, default envoy/plugin-config.json). Wasm module: TRIAGE_WASM (default the built triage.wasm).
# Logs, pids and the rendered config: envoy/.run/<listen port>/, so stacks on other ports (say triage
# and baseline side by side) coexist. The gateway's test keys: envoy/.run/<listen port>/auth/ (kept
# across restarts). A caller token, sent as `Authorization: Bearer <token>` or `x-api-key: <token>`
# (a request without one passes anonymously):
#   .venv/bin/python3 envoy/auth/tokens.py token envoy/.run/<listen port>/auth --sub CALLER [--team TENANT]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
export LISTEN_PORT="${TRIAGE_LISTEN_PORT:-10000}"
export ADMIN_PORT="${TRIAGE_ADMIN_PORT:-9901}"
export SMALL_PORT="${TRIAGE_SMALL_PORT:-18001}"
export MID_PORT="${TRIAGE_MID_PORT:-18002}"
export FRONTIER_PORT="${TRIAGE_FRONTIER_PORT:-18003}"
plugin_config_file="${TRIAGE_PLUGIN_CONFIG:-$here/plugin-config.json}"
run="$here/.run/$LISTEN_PORT"
ready_timeout_s=30

# The pid in <name>.pid when that process is still the one we started.
live_pid() {
    local pidfile="$run/$1.pid" pid
    [[ -f "$pidfile" ]] || return 1
    pid="$(cat "$pidfile")"
    [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$2" || return 1
    echo "$pid"
}

# True while the process exists and is not a zombie waiting for its parent.
alive() {
    [[ -r "/proc/$1/stat" ]] && [[ "$(cut -d' ' -f3 "/proc/$1/stat")" != Z ]]
}

stop() {
    local name="$1" binary="$2" pid
    if pid="$(live_pid "$name" "$binary")"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$run/$name.pid"
}

down() {
    stop envoy .venv/bin/envoy
    stop mock-llm target/release/mock-llm
}

start_detached() {
    local name="$1"
    shift
    setsid "$@" >"$run/$name.log" 2>&1 </dev/null &
    echo $! >"$run/$name.pid"
}

http_code() {
    curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" || true
}

# Envoy's warnings and errors, else the end of its log.
envoy_log_excerpt() {
    local log="$run/envoy.log"
    if grep -qE '\]\[(warning|error|critical)\]' "$log" 2>/dev/null; then
        grep -E '\]\[(warning|error|critical)\]' "$log" | tail -n 20
    else
        tail -n 30 "$log" 2>/dev/null || true
    fi
}

wait_ready() {
    local deadline=$((SECONDS + ready_timeout_s)) problem=""
    until [[ "$(curl -s -m 2 "http://127.0.0.1:$ADMIN_PORT/ready" || true)" == LIVE* &&
        "$(http_code "http://127.0.0.1:$LISTEN_PORT/healthz")" == 200 ]]; do
        if ! live_pid envoy .venv/bin/envoy >/dev/null; then
            problem="Envoy exited"
        elif ! live_pid mock-llm target/release/mock-llm >/dev/null; then
            problem="mock-llm exited"
        elif ((SECONDS >= deadline)); then
            problem="the stack did not become ready within ${ready_timeout_s}s"
        fi
        if [[ -n "$problem" ]]; then
            echo "stack.sh: $problem" >&2
            echo "--- from $run/envoy.log" >&2
            envoy_log_excerpt >&2
            echo "--- tail of $run/mock-llm.log" >&2
            tail -n 5 "$run/mock-llm.log" >&2 || true
            down
            exit 1
        fi
        sleep 0.2
    done
}

up() {
    local flavour=triage
    case "${1:-}" in
    --baseline) flavour=baseline ;;
    "") ;;
    *) usage ;;
    esac
    "$here/setup.sh" >/dev/null
    down
    local port
    for port in "$LISTEN_PORT" "$ADMIN_PORT" "$SMALL_PORT" "$MID_PORT" "$FRONTIER_PORT"; do
        if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "stack.sh: port $port is taken by another process (set TRIAGE_*_PORT)" >&2
            exit 1
        fi
    done
    mkdir -p "$run"
    "$repo/.venv/bin/python3" "$here/auth/tokens.py" keys "$run/auth"
    # Each stack starts a fresh decision log; the previous one is kept beside it, dated.
    if [[ -s "$run/access.log" ]]; then
        mv "$run/access.log" "$run/access.log.$(date -u +%Y%m%dT%H%M%SZ)"
    fi
    WASM_PATH="${TRIAGE_WASM:-$repo/target/wasm32-wasip1/release/triage.wasm}" PLUGIN_CONFIG_FILE="$plugin_config_file" \
        ACCESS_LOG="$run/access.log" JWKS_PATH="$run/auth/jwks.json" "$here/render.sh" "$flavour" >"$run/envoy.yaml"
    start_detached mock-llm "$repo/target/release/mock-llm" \
        --tier "small=127.0.0.1:$SMALL_PORT" --tier "mid=127.0.0.1:$MID_PORT" \
        --tier "frontier=127.0.0.1:$FRONTIER_PORT"
    start_detached envoy "$repo/.venv/bin/envoy" -c "$run/envoy.yaml" --concurrency 2 \
        --base-id "$ADMIN_PORT" --disable-hot-restart --log-level info --file-flush-interval-msec 1000
    wait_ready
    echo "triage stack up ($flavour): http://127.0.0.1:$LISTEN_PORT (admin http://127.0.0.1:$ADMIN_PORT, logs in ${run#"$repo"/})"
    echo "caller token (as 'Authorization: Bearer <token>' or 'x-api-key'): .venv/bin/python3 envoy/auth/tokens.py token ${run#"$repo"/}/auth --sub alice --team research"
}

status() {
    local pid
    for component in "envoy .venv/bin/envoy" "mock-llm target/release/mock-llm"; do
        set -- $component
        if pid="$(live_pid "$1" "$2")"; then echo "$1: running (pid $pid)"; else echo "$1: stopped"; fi
    done
    echo "admin /ready: $(curl -s -m 2 "http://127.0.0.1:$ADMIN_PORT/ready" || echo unreachable)"
}

usage() {
    echo "usage: stack.sh up [--baseline] | down | status" >&2
    echo "caller tokens for a running stack: .venv/bin/python3 envoy/auth/tokens.py --help" >&2
    exit 2
}

cd "$repo"
case "${1:-}" in
up) shift && up "$@" ;;
down) down ;;
status) status ;;
*) usage ;;
esac
