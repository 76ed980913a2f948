#!/usr/bin/env bash
# Short fuzzing run for CI: build every fuzz target once, run each for SECONDS (default 60)
# from its seed corpus with its dictionary, and fail if any target finds a crash, a
# timeout (10 s per input) or an input that needs more than 2 GiB.
#
#   scripts/fuzz-ci.sh [SECONDS]
#
# Environment:
#   FUZZ_TARGETS      space-separated targets to run (default: every target in fuzz/)
#   SMELT_CARGO_LOCK  a lock file; when set, cargo commands run under `flock` on it
#                     (for machines where several builds share one target folder)
#
# The targets need a nightly compiler feature (`-Zsanitizer`-style flags); on a stable
# toolchain `RUSTC_BOOTSTRAP=1` unlocks them, which this script sets. Builds are
# `-O -a`: release, with debug assertions and overflow checks on, so arithmetic
# overflow on hostile input is a crash too. `-s none`: no sanitizer (safe Rust; faster).
#
# Each target's working corpus is fuzz/corpus/<target> (new inputs land there; the seeds
# in fuzz/seeds/<target> are only read); crashes land in fuzz/artifacts/<target>/.
set -uo pipefail

SECS="${1:-60}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
BIN_DIR="$FUZZ/target/$TRIPLE/release"
export RUSTC_BOOTSTRAP=1

cargo_() {
    if [[ -n "${SMELT_CARGO_LOCK:-}" ]]; then
        flock "$SMELT_CARGO_LOCK" cargo "$@"
    else
        cargo "$@"
    fi
}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo_ install cargo-fuzz --locked || exit 1
fi

cd "$FUZZ" || exit 1
TARGETS="${FUZZ_TARGETS:-$(cargo fuzz list)}"

echo "== building the fuzz targets (release + debug assertions, no sanitizer)"
# shellcheck disable=SC2086
if ! cargo_ fuzz build -s none -O -a; then
    echo "error: the fuzz targets do not build" >&2
    exit 1
fi

# The libFuzzer dictionary for a target, if it has one.
dict_for() {
    case "$1" in
        onnx_import) echo "$FUZZ/dicts/onnx.dict" ;;
        ir_text_parse) echo "$FUZZ/dicts/ir_text.dict" ;;
        pipeline_parse) echo "$FUZZ/dicts/pipeline.dict" ;;
        *) [[ -f "$FUZZ/dicts/$1.dict" ]] && echo "$FUZZ/dicts/$1.dict" ;;
    esac
}

failed=()
for t in $TARGETS; do
    corpus="$FUZZ/corpus/$t"
    artifacts="$FUZZ/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    args=(-max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
        -artifact_prefix="$artifacts/")
    dict="$(dict_for "$t")"
    [[ -n "$dict" && -f "$dict" ]] && args+=(-dict="$dict")
    dirs=("$corpus")
    [[ -d "$FUZZ/seeds/$t" ]] && dirs+=("$FUZZ/seeds/$t")
    log="$FUZZ/artifacts/$t.log"
    echo "== $t: ${SECS}s"
    before="$(find "$artifacts" -type f | wc -l)"
    "$BIN_DIR/$t" "${args[@]}" "${dirs[@]}" >"$log" 2>&1
    rc=$?
    after="$(find "$artifacts" -type f | wc -l)"
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" |
        sed "s/^/   $t /"
    if [[ $rc -ne 0 || "$after" -gt "$before" ]]; then
        failed+=("$t")
        echo "FAIL: $t (exit $rc); log: $log"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | head -5 | sed 's/^/   /'
        # libFuzzer names the input it saved: "Test unit written to <path>".
        grep -o 'Test unit written to .*' "$log" | sed 's/^Test unit written to /   crashing input: /'
        echo "   reproduce: $BIN_DIR/$t <crashing input>"
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzzing found problems in: ${failed[*]}" >&2
    exit 1
fi
echo "== all fuzz targets ran ${SECS}s without a crash"
