#!/usr/bin/env bash
# The soak (issue 13): mixed traffic through the shipped stack (Envoy 1.40 with two workers, the
# built triage.wasm, the mock tiers) while the cheapest tier flaps, then the checks: every
# client-visible error caused by the failing tier and beyond escalation's reach, exactly one decision
# record per routed request, Envoy's RSS and the largest wasm VM's memory flat after warm-up, and
# counters that add up. Prints the figures and each failed check; exits 1 if any check failed.
#   envoy/soak.sh [minutes, default 10]
# The driver is envoy/e2e's `soak` binary (src/soak/): 6 client connections, OpenAI chat, OpenAI
# Responses and Anthropic Messages, JSON and streamed, 1 KiB to 1 MiB bodies, anonymous and verified
# callers. Traffic stays on 127.0.0.1; the stack's files (the access log reaches GBs in 10 minutes)
# live in a temporary directory removed at the end.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
minutes="${1:-10}"

bash "$here/setup.sh" >/dev/null
cd "$here/.."
exec cargo run --quiet --release -p triage-e2e --bin soak -- --minutes "$minutes"
