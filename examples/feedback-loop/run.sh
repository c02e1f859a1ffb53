#!/usr/bin/env bash
# The feedback loop on the local stack: traffic through Envoy + triage in two phases (the shipped model),
# a simulated reviewer's feedback, `triage report`, `triage train --from-log`, the retrained model
# checked by `triage route`, then deployed to the stack for a third phase, and the report over all
# three. Everything it writes goes to examples/feedback-loop/.out/; the stack is stopped on exit.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export TRIAGE_LISTEN_PORT="${TRIAGE_LISTEN_PORT:-10700}"
export TRIAGE_ADMIN_PORT="${TRIAGE_ADMIN_PORT:-10701}"
export TRIAGE_UPSTREAM_PORT="${TRIAGE_UPSTREAM_PORT:-10702}"
window_s=10
# Paths relative to the repo, where the script runs, so the output reads the same on every machine.
out=examples/feedback-loop/.out
prompts=examples/feedback-loop/prompts.jsonl
shipped_config=envoy/plugin-config.json
train_data=../shared/data/routing/train/routerbench-mbpp.jsonl
access_log="envoy/.run/$TRIAGE_LISTEN_PORT/access.log"
url="http://127.0.0.1:$TRIAGE_LISTEN_PORT/v1/chat/completions"
triage=target/release/triage

loop() { python3 "$here/loop.py" "$@"; }

step() { printf '\n== %s\n' "$*"; }

show() {
    echo "\$ $*"
    "$@"
}

# Sleeps into the next report window, so each phase's records share one window.
sleep_to_next_window() {
    local now_ms window_ms=$((window_s * 1000))
    now_ms="$(date +%s%3N)"
    sleep "$(awk -v w="$window_ms" -v n="$now_ms" 'BEGIN { printf "%.3f", (w - n % w + 200) / 1000 }')"
}

header_value() {
    tr -d '\r' <"$1" | awk -v name="$2" 'BEGIN { FS = ": " } tolower($1) == name { print $2 }'
}

row() { printf '%-5s %-12s %-8s %-8s %-8s %-10s %s\n' "$@"; }

# Sends one phase's requests with one curl over one keep-alive connection (so one Envoy worker, whose
# VM keeps its own circuit breakers: the run plays out the same every time) and appends, per request,
# to sent.tsv: phase, prompt, kind, stream, x-triage-decision-id, x-triage-tier, x-triage-score,
# x-triage-escalated, x-triage-reason.
send_phase() {
    local phase="$1" id kind stream headers header head decision_id tier score escalated reason
    local curl_args=() requests=() n
    while IFS=$'\t' read -r id kind stream headers; do
        n=${#requests[@]}
        ((n == 0)) || curl_args+=(--next)
        curl_args+=(-sS -m 30 -o "$out/answers/$phase-$n-$id.json" -D "$out/heads/$phase-$n.txt"
            -H 'content-type: application/json')
        if [[ -n "$headers" ]]; then
            while IFS= read -r header; do curl_args+=(-H "$header"); done < <(tr '\t' '\n' <<<"$headers")
        fi
        curl_args+=(--data-binary "@$out/bodies/$id.json" "$url")
        requests+=("$id"$'\t'"$kind"$'\t'"$stream")
    done < <(loop plan "$prompts" "$phase")
    curl "${curl_args[@]}"

    row phase prompt stream tier score escalated x-triage-decision-id
    for n in "${!requests[@]}"; do
        IFS=$'\t' read -r id kind stream <<<"${requests[$n]}"
        head="$out/heads/$phase-$n.txt"
        decision_id="$(header_value "$head" x-triage-decision-id)"
        tier="$(header_value "$head" x-triage-tier)"
        score="$(header_value "$head" x-triage-score)"
        escalated="$(header_value "$head" x-triage-escalated)"
        reason="$(header_value "$head" x-triage-reason)"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$id" "$kind" "$stream" "$decision_id" \
            "$tier" "${score:--}" "${escalated:--}" "$reason" >>"$out/sent.tsv"
        row "$phase" "$id" "$stream" "$tier" "${score:--}" "${escalated:--}" "$decision_id"
        sent=$((sent + 1))
    done
}

# Waits until Envoy has flushed a record for every request sent since the stack started (stack.sh up
# starts a fresh log; Envoy flushes it every second).
wait_for_records() {
    local want="$1" records=0
    for _ in $(seq 50); do
        records="$(grep -c '^{' "$access_log" 2>/dev/null || true)"
        [[ "$records" -ge "$want" ]] && break
        sleep 0.2
    done
    echo "access log: $records decision records for $want requests sent"
    [[ "$records" -eq "$want" ]]
}

stack_down() { envoy/stack.sh down; }

cd "$repo"
started=$SECONDS
rm -rf "$out"
mkdir -p "$out/bodies" "$out/answers" "$out/heads"
step "build the CLI; start the stack (envoy/stack.sh up builds the filter and the mock)"
cargo build --quiet --release -p triage-cli
trap stack_down EXIT
envoy/stack.sh up
# The ops console's caller token, verified by the stack's jwt_authn (its keys outlive restarts): only
# a verified caller listed in the config's override.callers may override.
CONSOLE_TOKEN="$(.venv/bin/python3 envoy/auth/tokens.py token "envoy/.run/$TRIAGE_LISTEN_PORT/auth" --sub ops-console)"
export CONSOLE_TOKEN
sent=0
loop bodies "$prompts" "$out/bodies"
printf 'phase\tprompt\tkind\tstream\tdecision_id\ttier\tscore\tescalated\treason\n' >"$out/sent.tsv"

for phase in 1 2; do
    sleep_to_next_window
    step "phase $phase: the shipped model; app, ops console (x-triage-override), flaky integration (x-mock-fail on small)"
    send_phase "$phase"
done
wait_for_records "$sent"
cp "$access_log" "$out/access-shipped.log"

step "the simulated reviewer grades every app and console request by its prompt's kind"
loop review "$out/sent.tsv" >"$out/feedback.jsonl"
echo "$(wc -l <"$out/feedback.jsonl") feedback rows in $out/feedback.jsonl, e.g."
head -n 2 "$out/feedback.jsonl"

step "report on the shipped model's traffic"
show "$triage" report "$out/access-shipped.log" --feedback "$out/feedback.jsonl" --window "${window_s}s" \
    --config "$shipped_config" --plot "$out/plots-shipped"

step "retrain on the log (feedback, overrides, escalations) and one shared training file"
show "$triage" train --from-log "$out/access-shipped.log" --feedback "$out/feedback.jsonl" \
    --config "$shipped_config" --data "$train_data" --threshold-data "$out/access-shipped.log" \
    --buckets 16384 --out "$out/model.json"

step "the shipped config with the retrained model embedded (the model's thresholds apply)"
loop embed "$shipped_config" "$out/model.json" >"$out/retrained-config.json"
echo "wrote $out/retrained-config.json ($(wc -c <"$out/retrained-config.json") bytes)"
"$triage" route --config "$shipped_config" --input "$out/bodies/route-input.jsonl" >"$out/route-shipped.jsonl"
echo "\$ $triage route --config $out/retrained-config.json --input $out/bodies/route-input.jsonl >$out/route-retrained.jsonl"
"$triage" route --config "$out/retrained-config.json" --input "$out/bodies/route-input.jsonl" >"$out/route-retrained.jsonl"
echo "accepted; the decisions on phase 3's prompts, which neither model was trained on:"
loop compare "$prompts" 3 "$out/route-shipped.jsonl" "$out/route-retrained.jsonl"

step "deploy: restart the stack with the retrained config"
TRIAGE_PLUGIN_CONFIG="$out/retrained-config.json" envoy/stack.sh up
sent=0
sleep_to_next_window
step "phase 3: the retrained model in Envoy; the same three streams, new prompts"
send_phase 3
wait_for_records "$sent"
loop check-scores "$out/sent.tsv" 3 "$out/route-retrained.jsonl"
cp "$access_log" "$out/access-retrained.log"
loop same-traffic "$out/sent.tsv" 3 "$out/access-retrained.log" "$shipped_config" "$out/route-shipped.jsonl"
loop review "$out/sent.tsv" >"$out/feedback-all.jsonl"

step "report over the three phases"
show "$triage" report "$out/access-shipped.log" "$out/access-retrained.log" --feedback "$out/feedback-all.jsonl" --window "${window_s}s" \
    --config "$shipped_config" --plot "$out/plots"

step "done in $((SECONDS - started)) s; everything is in $out/"
