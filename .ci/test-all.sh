#!/usr/bin/env bash
# Every test triage has: formatting, lints, the core's unit tests, the CLI, the mock upstream and the
# real-Envoy suite. Does its own set-up (wasm target, Envoy in .venv, the plugin build) on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

bash envoy/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p triage-filter --target wasm32-wasip1 -- -D warnings
cargo test --workspace
