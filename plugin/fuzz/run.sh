#!/usr/bin/env bash
# Fuzzes every target of plugin/fuzz with libFuzzer (cargo fuzz) on the stable toolchain.
#   bash plugin/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]    (default 20 s, every target)
#   FUZZ_RUNS=N bash plugin/fuzz/run.sh 0 TARGET                 (N executions instead of a time)
# Each target starts from its seeds (corpus/<target>/), the inputs that once failed
# (regressions/<target>/, run first, every time) and what earlier runs on this machine found
# (kept in $FUZZ_WORK, outside the repository). Stops at the first target that fails and leaves
# the failing input in $FUZZ_WORK/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-20}
shift || true
work=${FUZZ_WORK:-${CARGO_TARGET_DIR:-$PWD/target}/fuzz-work}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}/fuzz

# cargo-fuzz from crates.io; `-s none` builds with the stable compiler (coverage instrumentation
# only, no sanitizer: Rust's own checks, and the targets' asserts, are what fail).
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --version 0.13.2 --locked
fi
fuzz() { cargo fuzz "$1" --fuzz-dir plugin/fuzz -s none --target-dir "$target_dir" "${@:2}"; }

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    listed=$(cargo fuzz list --fuzz-dir plugin/fuzz)
    mapfile -t targets <<<"$listed"
fi
fuzz build

for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    artifacts="$work/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    cp -n plugin/fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
    # Model files are large: the seed is the shipped model, and inputs may be as long.
    max_len=4096
    if [ "$target" = model_file ]; then
        cp -n plugin/core/models/default.json "$corpus"/shipped-model
        max_len=131072
    fi
    regressions=()
    if [ -d "plugin/fuzz/regressions/$target" ]; then
        regressions=("plugin/fuzz/regressions/$target")
    fi
    if [ -n "${FUZZ_RUNS:-}" ]; then
        budget=(-runs="$FUZZ_RUNS")
    else
        budget=(-max_total_time="$seconds")
    fi
    echo "== $target"
    fuzz run "$target" "$corpus" "${regressions[@]}" -- \
        "${budget[@]}" -max_len="$max_len" -timeout=2 -rss_limit_mb=1024 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 2>&1 |
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|panicked|ERROR|SUMMARY|Test unit written' || true
    # libFuzzer exits non-zero on a crash, a timeout or a leak; pipefail would hide it behind grep.
    if compgen -G "$artifacts/*" >/dev/null; then
        echo "fuzz target $target failed; the input is in $artifacts/" >&2
        exit 1
    fi
done
