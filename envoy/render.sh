#!/usr/bin/env bash
# Renders the Envoy config of one flavour to stdout:
#   render.sh triage|baseline
# Placeholders take the value of the environment variable of the same name (LISTEN_PORT, ADMIN_PORT,
# SMALL_PORT, MID_PORT, FRONTIER_PORT, ACCESS_LOG, JWKS_PATH (the gateway's public keys, made by
# envoy/auth/tokens.py keys), and for triage WASM_PATH and PLUGIN_CONFIG), or the contents of the file
# named by <NAME>_FILE (a config embedding a model is larger than one environment variable may be).
# Rules (envoy/e2e/src/render.rs applies the same ones):
#   1. the line ${HTTP_FILTERS} becomes envoy/filters/<flavour>.yaml.in;
#   2. every ${NAME} becomes its value with ' doubled and line breaks turned into spaces, as every
#      placeholder sits in a single-quoted YAML scalar or is a bare number (JSON allows both changes).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
flavour="${1:?usage: render.sh triage|baseline}"
exec python3 - "$here/envoy.yaml.in" "$here/filters/$flavour.yaml.in" <<'PY'
import os, re, sys

stack_path, filters_path = sys.argv[1], sys.argv[2]
if not os.path.exists(filters_path):
    sys.exit(f"render.sh: no filter flavour {filters_path}")
with open(stack_path) as f:
    text = f.read()
with open(filters_path) as f:
    text = text.replace("${HTTP_FILTERS}\n", f.read())

def value(match):
    name = match.group(1)
    if name + "_FILE" in os.environ:
        with open(os.environ[name + "_FILE"]) as f:
            raw = f.read()
    elif name in os.environ:
        raw = os.environ[name]
    else:
        sys.exit(f"render.sh: environment variable {name} (or {name}_FILE) is not set")
    return re.sub(r"\r\n|\r|\n", " ", raw).replace("'", "''")

sys.stdout.write(re.sub(r"\$\{([A-Z_]+)\}", value, text))
PY
