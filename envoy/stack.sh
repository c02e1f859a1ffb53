#!/usr/bin/env bash
# Runs the triage stack locally: the mock LLM upstream standing in for every tier's provider (one port
# per tier of the plugin config) and Envoy in front of it, its config made by `triage envoy` from the
# plugin config (a route and a cluster per tier: adding or renaming a tier is one edit to that file).
#   stack.sh up [--baseline | --ecds]   set up, then (re)start both in the background and wait until
#                              they serve; --ecds: Envoy discovers triage by extension config
#                              discovery from a watched file and fetches the module by URL and
#                              sha256 from a local HTTP server, as a control plane delivers wasm
#   stack.sh deliver VERSION [PLUGIN_CONFIG]   (an --ecds stack) push a new version of triage: the
#                              config (default: the stack's) with the module TRIAGE_WASM; prints
#                              whether Envoy serves it or refused it (the previous one keeps serving)
#   stack.sh down              stop everything (safe to repeat)
#   stack.sh status
# Ports: TRIAGE_LISTEN_PORT (10000), TRIAGE_ADMIN_PORT (9901), TRIAGE_UPSTREAM_PORT (18001: the mock
# of the config's first tier; the next tiers take the next ports), TRIAGE_MODULE_PORT (the --ecds
# module server: the upstream port - 1). Plugin config: TRIAGE_PLUGIN_CONFIG
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
upstream_port="${TRIAGE_UPSTREAM_PORT:-18001}"
module_port="${TRIAGE_MODULE_PORT:-$((upstream_port - 1))}"
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
    stop modules http.server
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

# Writes one version of triage where the --ecds stack's Envoy watches for it (whole, by rename).
# write_version VERSION PLUGIN_CONFIG MODULE_URL [--first]
write_version() {
    "$repo/target/release/triage" ecds --version "$1" --config "$2" --module-url "$3" \
        --wasm "$run/modules/triage.wasm" ${4:-} >"$run/ecds/.staged" || return 1
    mv "$run/ecds/.staged" "$run/ecds/triage.yaml"
}

ecds_stat() {
    curl -s -m 2 "http://127.0.0.1:$ADMIN_PORT/stats?filter=extension_config_discovery.http_filter.triage.$1" |
        awk -F': ' '{ gsub(/"/, "", $2); print $2 }'
}

# Envoy refuses a version while it fetches a module it has not cached; a control plane then
# delivers it again (with another URL query: Envoy skips a delivery equal to the last one).
deliver() {
    local version="${1:?usage: stack.sh deliver VERSION [PLUGIN_CONFIG]}" config="${2:-$plugin_config_file}"
    [[ -f "$run/ecds/triage.yaml" ]] || { echo "stack.sh: no --ecds stack on port $LISTEN_PORT" >&2; exit 1; }
    cp "${TRIAGE_WASM:-$repo/target/wasm32-wasip1/release/triage.wasm}" "$run/modules/triage.wasm"
    local attempt refused deadline url="http://127.0.0.1:$module_port/triage.wasm"
    for attempt in 0 1 2; do
        refused="$(ecds_stat update_rejected)"
        local query=""
        ((attempt > 0)) && query="?attempt=$attempt"
        # A config the filter would refuse is refused here, with its words, before Envoy sees it.
        write_version "$version" "$config" "$url$query" || exit 1
        deadline=$((SECONDS + 20))
        while ((SECONDS < deadline)); do
            if [[ "$(ecds_stat version_text)" == "$version" ]]; then
                echo "Envoy serves triage version $version"
                return 0
            fi
            [[ "$(ecds_stat update_rejected)" != "$refused" ]] && break
            sleep 0.1
        done
        sleep 0.5
    done
    echo "stack.sh: Envoy refused version $version; version $(ecds_stat version_text) keeps serving" >&2
    envoy_log_excerpt | tail -n 3 >&2
    exit 1
}

up() {
    local flavour=triage
    case "${1:-}" in
    --baseline) flavour=baseline ;;
    --ecds) flavour=ecds ;;
    "") ;;
    *) usage ;;
    esac
    "$here/setup.sh" >/dev/null
    down
    # One mock per tier, in the config's order: tier i on upstream_port + i.
    local tiers tier port index=0 mock_args=() upstream_args=()
    # The tiers as the filter will see them (its defaults when the config names none); a config it
    # refuses stops here, with the filter's message.
    tiers="$("$repo/target/release/triage" validate "$plugin_config_file" | awk '/^  [a-z0-9_-]+: / { sub(/:$/, "", $1); print $1 }')"
    local ports=("$LISTEN_PORT" "$ADMIN_PORT")
    [[ "$flavour" == ecds ]] && ports+=("$module_port")
    for tier in $tiers; do
        port=$((upstream_port + index))
        index=$((index + 1))
        ports+=("$port")
        mock_args+=(--tier "$tier=127.0.0.1:$port")
        upstream_args+=(--upstream "$tier=http://127.0.0.1:$port")
    done
    for port in "${ports[@]}"; do
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
    local wasm="${TRIAGE_WASM:-$repo/target/wasm32-wasip1/release/triage.wasm}"
    local flavour_args=(--wasm "$wasm")
    [[ "$flavour" == baseline ]] && flavour_args=(--baseline)
    if [[ "$flavour" == ecds ]]; then
        mkdir -p "$run/modules" "$run/ecds"
        cp "$wasm" "$run/modules/triage.wasm"
        start_detached modules "$repo/.venv/bin/python3" -m http.server "$module_port" \
            --bind 127.0.0.1 --directory "$run/modules"
        until [[ "$(http_code "http://127.0.0.1:$module_port/triage.wasm")" == 200 ]]; do
            live_pid modules http.server >/dev/null || { echo "stack.sh: the module server exited" >&2; tail -n 5 "$run/modules.log" >&2; exit 1; }
            sleep 0.1
        done
        # A fresh Envoy fetches the first version's module while its listener warms.
        write_version 1 "$plugin_config_file" "http://127.0.0.1:$module_port/triage.wasm" --first
        flavour_args=(--ecds-resource "$run/ecds/triage.yaml" --module-server "http://127.0.0.1:$module_port")
    fi
    "$repo/target/release/triage" envoy --config "$plugin_config_file" "${flavour_args[@]}" \
        --listen-port "$LISTEN_PORT" --admin-port "$ADMIN_PORT" --access-log "$run/access.log" \
        --jwks "$run/auth/jwks.json" "${upstream_args[@]}" >"$run/envoy.yaml"
    start_detached mock-llm "$repo/target/release/mock-llm" "${mock_args[@]}"
    start_detached envoy "$repo/.venv/bin/envoy" -c "$run/envoy.yaml" --concurrency 2 \
        --base-id "$ADMIN_PORT" --disable-hot-restart --log-level info --file-flush-interval-msec 1000
    wait_ready
    echo "triage stack up ($flavour): http://127.0.0.1:$LISTEN_PORT (admin http://127.0.0.1:$ADMIN_PORT, logs in ${run#"$repo"/})"
    echo "tiers and their mock upstreams: $(printf '%s ' "${mock_args[@]}" | sed 's/--tier //g; s/ $//')"
    echo "caller token (as 'Authorization: Bearer <token>' or 'x-api-key'): .venv/bin/python3 envoy/auth/tokens.py token ${run#"$repo"/}/auth --sub alice --team research"
}

status() {
    local pid
    for component in "envoy .venv/bin/envoy" "mock-llm target/release/mock-llm" "modules http.server"; do
        set -- $component
        if pid="$(live_pid "$1" "$2")"; then echo "$1: running (pid $pid)"; else echo "$1: stopped"; fi
    done
    echo "admin /ready: $(curl -s -m 2 "http://127.0.0.1:$ADMIN_PORT/ready" || echo unreachable)"
}

usage() {
    echo "usage: stack.sh up [--baseline | --ecds] | deliver VERSION [PLUGIN_CONFIG] | down | status" >&2
    echo "caller tokens for a running stack: .venv/bin/python3 envoy/auth/tokens.py --help" >&2
    exit 2
}

cd "$repo"
case "${1:-}" in
up) shift && up "$@" ;;
deliver) shift && deliver "$@" ;;
down) down ;;
status) status ;;
*) usage ;;
esac
