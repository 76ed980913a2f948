#!/usr/bin/env bash
# Long fuzzing campaign: build every fuzz target once, then run each for HOURS hours
# (default 1; fractions such as 0.25 work) with one libFuzzer job per CPU core, and print
# per target the executions per second and the total executions (summed over the jobs
# from libFuzzer's final stats). Targets run one after another, so the whole campaign
# takes HOURS x (number of targets); pick targets with FUZZ_TARGETS.
#
#   scripts/fuzz-long.sh [HOURS]
#
# Environment:
#   FUZZ_TARGETS      space-separated targets to run (default: every target in fuzz/)
#   FUZZ_JOBS         parallel jobs per target (default: the number of cores)
#   SMELT_CARGO_LOCK  a lock file; when set, cargo commands run under `flock` on it
#
# Limits per input are those of scripts/fuzz-ci.sh: 10 s and 2 GiB. New corpus entries
# go to fuzz/corpus/<target> (run `cargo fuzz cmin <target>` now and then, and copy
# interesting ones to fuzz/seeds/<target>); crashes go to fuzz/artifacts/<target>/.
# Exits non-zero if any target crashed.
set -uo pipefail

HOURS="${1:-1}"
SECS="$(awk -v h="$HOURS" 'BEGIN { printf "%d", h * 3600 }')"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
BIN_DIR="$FUZZ/target/$TRIPLE/release"
JOBS="${FUZZ_JOBS:-$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)}"
export RUSTC_BOOTSTRAP=1

cargo_() {
    if [[ -n "${SMELT_CARGO_LOCK:-}" ]]; then
        flock "$SMELT_CARGO_LOCK" cargo "$@"
    else
        cargo "$@"
    fi
}

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo_ install cargo-fuzz --locked || exit 1
fi
cd "$FUZZ" || exit 1
TARGETS="${FUZZ_TARGETS:-$(cargo fuzz list)}"
cargo_ fuzz build -s none -O -a || {
    echo "error: the fuzz targets do not build" >&2
    exit 1
}

dict_for() {
    case "$1" in
        onnx_import) echo "$FUZZ/dicts/onnx.dict" ;;
        ir_text_parse) echo "$FUZZ/dicts/ir_text.dict" ;;
        pipeline_parse) echo "$FUZZ/dicts/pipeline.dict" ;;
        *) [[ -f "$FUZZ/dicts/$1.dict" ]] && echo "$FUZZ/dicts/$1.dict" ;;
    esac
}

summary=()
failed=()
for t in $TARGETS; do
    corpus="$FUZZ/corpus/$t"
    artifacts="$FUZZ/artifacts/$t"
    logs="$FUZZ/artifacts/$t-logs"
    rm -rf "$logs"
    mkdir -p "$corpus" "$artifacts" "$logs"
    args=(-max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
        -artifact_prefix="$artifacts/" -jobs="$JOBS" -workers="$JOBS")
    dict="$(dict_for "$t")"
    [[ -n "$dict" && -f "$dict" ]] && args+=(-dict="$dict")
    dirs=("$corpus")
    [[ -d "$FUZZ/seeds/$t" ]] && dirs+=("$FUZZ/seeds/$t")
    echo "== $t: ${HOURS} h x $JOBS jobs (logs: $logs)"
    before="$(find "$artifacts" -type f | wc -l)"
    # With -jobs, libFuzzer writes each job's output to fuzz-<N>.log in the current folder.
    (cd "$logs" && "$BIN_DIR/$t" "${args[@]}" "${dirs[@]}" >"$logs/main.log" 2>&1)
    rc=$?
    after="$(find "$artifacts" -type f | wc -l)"
    read -r execs rate < <(cat "$logs"/fuzz-*.log 2>/dev/null | awk -F': *' '
        /^stat::number_of_executed_units/ { e += $NF }
        /^stat::average_exec_per_sec/ { r += $NF }
        END { printf "%d %d\n", e, r }')
    line="$(printf '%-22s %12s execs  %8s execs/s (all jobs)' "$t" "$execs" "$rate")"
    if [[ $rc -ne 0 || "$after" -gt "$before" ]]; then
        failed+=("$t")
        line="$line  CRASHED"
        grep -ho 'Test unit written to .*' "$logs"/*.log 2>/dev/null |
            sed 's/^Test unit written to /   crashing input: /'
    fi
    summary+=("$line")
    echo "$line"
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
