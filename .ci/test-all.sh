#!/usr/bin/env bash
# Every test triage has: formatting, lints, the core's unit tests, the CLI, the learning code, the mock
# upstream, the wasmtime host suite on the shipped triage.wasm, the real-Envoy suite (with a one-minute
# soak, envoy/e2e/tests/soak.rs: the ten-minute one is `bash envoy/soak.sh`) and the web package in
# Node and its playground in Chromium. Does its own set-up (wasm targets, Envoy in .venv,
# wasm-bindgen-cli, Node, Chromium, the plugin builds) on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

bash envoy/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p triage-cli --features wasm-engine --all-targets -- -D warnings
cargo clippy -p triage-filter --target wasm32-wasip1 -- -D warnings
cargo clippy -p triage-web --target wasm32-unknown-unknown -- -D warnings
cargo test --workspace
# The npm package setup.sh built (plugin/web/npm), installed from its files list, in Node against the
# CLI on the same inputs; with ../shared's training rows, every row decided alike by both. Then the
# playground in headless Chromium (its screenshot kept in target/playground/).
node --test plugin/web/tests/*.test.mjs examples/playground/tests/*.test.mjs
# `triage route --engine wasm` against the native engine (the CLI's optional wasmtime engine).
cargo test -p triage-cli --features wasm-engine --test engine
# The data rebuild script's conversion and check, on made-up rows (no source data needed).
python3 plugin/learn/data/test_build.py
# Every fuzz target for 20 s (libFuzzer via cargo fuzz; installs cargo-fuzz on a fresh machine).
bash plugin/fuzz/run.sh 20
