#!/usr/bin/env bash
# Builds the npm package in plugin/web/npm: triage-web for wasm32-unknown-unknown (release), then
# wasm-bindgen --target web into npm/dist. One ES-module build serves browsers (fetched beside the
# JS), bundlers (which follow its `new URL(..., import.meta.url)`) and Node (node.mjs instantiates it
# from the file's bytes), so the package carries one copy of the 4 MB module, not one per target.
#
#   bash plugin/web/build.sh                      build the package
#   bash plugin/web/build.sh --wasm-bindgen-version   print the version wasm-bindgen-cli must have
#
# wasm-bindgen-cli must be exactly the version of the wasm-bindgen crate in Cargo.lock (the CLI
# refuses a module made by another); envoy/setup.sh installs it and the wasm32-unknown-unknown target.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

locked="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [[ "${1:-}" == "--wasm-bindgen-version" ]]; then
    echo "$locked"
    exit 0
fi
installed="$(wasm-bindgen --version 2>/dev/null || true)"
if [[ "$installed" != "wasm-bindgen $locked" ]]; then
    echo "build.sh: needs wasm-bindgen-cli $locked (found: ${installed:-none}); bash envoy/setup.sh installs it" >&2
    exit 1
fi
target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
cargo build --quiet --release --target wasm32-unknown-unknown -p triage-web
rm -rf plugin/web/npm/dist
wasm-bindgen --target web --out-dir plugin/web/npm/dist \
    "$target_dir/wasm32-unknown-unknown/release/triage_web.wasm"
