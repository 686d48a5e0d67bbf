#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a fixed time, one after the other (one libFuzzer
# process at a time), and fails (exit 1) if any target crashes, hangs or fails to build.
#
#   scripts/fuzz.sh [seconds-per-target]        (default 30)
#
# Environment:
#   FUZZ_TARGETS     space-separated subset of targets (default: all in fuzz/fuzz_targets/)
#   FUZZ_SANITIZER   cargo fuzz --sanitizer value (default: address; "none" also works)
#   FUZZ_ARGS        extra libFuzzer arguments, e.g. "-max_len=70000"
#   FUZZ_RUNS        run each target for exactly this many executions instead of a time (the
#                    long run of the closing notes: FUZZ_RUNS=100000000). The per-input timeout
#                    is then 30 min, so the process can be paused (SIGSTOP) while a benchmark
#                    needs the machine without a pause being reported as a hang.
#   FUZZ_SANITIZER=none is what makes 1e8 executions fit a session: the decoders fuzzed here
#   (src/block) hold no unsafe code, so a bad access is a bounds-check panic, which
#   libFuzzer reports as a crash with or without ASan; ASan stays the default for short runs.
#
# Works on stable Rust: cargo-fuzz passes nightly-only flags (-Zsanitizer=address), which
# RUSTC_BOOTSTRAP=1 allows. Build output goes to fuzz/target/, crash inputs to
# fuzz/artifacts/<target>/, the growing corpus to fuzz/corpus/<target>/ (all git-ignored); the
# committed seeds in fuzz/seeds/<target>/ are read but never written. Logs: fuzz/target/fuzz-logs/.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

secs=${1:-30}
case $secs in
  '' | *[!0-9]*) echo "usage: $0 [seconds-per-target]" >&2; exit 2 ;;
esac
sanitizer=${FUZZ_SANITIZER:-address}
runs=${FUZZ_RUNS:-}
case $runs in
  *[!0-9]*) echo "FUZZ_RUNS must be a number" >&2; exit 2 ;;
esac
if [[ -n $runs ]]; then
  limit=(-runs="$runs" -timeout=1800 -report_slow_units=1800)
  what="$runs executions"
else
  limit=(-max_total_time="$secs" -timeout=10)
  what="${secs}s"
fi
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "=== installing cargo-fuzz ==="
  cargo install cargo-fuzz --locked
fi

if [[ -n ${FUZZ_TARGETS:-} ]]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do
    targets+=("$(basename "$f" .rs)")
  done
fi

logs=fuzz/target/fuzz-logs
mkdir -p "$logs"

echo "=== building ${targets[*]} (sanitizer: $sanitizer) ==="
for t in "${targets[@]}"; do
  # -a: debug assertions and overflow checks, so an arithmetic overflow is a crash too.
  cargo fuzz build --sanitizer "$sanitizer" -a "$t"
done

declare -A execs
failed=()
for t in "${targets[@]}"; do
  echo "=== fuzzing $t for $what ==="
  mkdir -p "fuzz/corpus/$t" "fuzz/seeds/$t"
  log="$logs/$t.log"
  rc=0
  # No -jobs/-workers: with -jobs libFuzzer forks workers that log to ./fuzz-N.log instead.
  # -timeout turns an input that makes a decoder loop into a reported crash.
  # shellcheck disable=SC2086
  cargo fuzz run --sanitizer "$sanitizer" -a "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    "${limit[@]}" -print_final_stats=1 ${FUZZ_ARGS:-} \
    >"$log" 2>&1 || rc=$?
  n=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  if [[ -z $n ]]; then
    n=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -n 1)
  fi
  execs[$t]=${n:-?}
  if [[ $rc -ne 0 ]] || grep -qE '^==[0-9]+==ERROR|panicked at|^SUMMARY: libFuzzer' "$log"; then
    failed+=("$t")
    echo "!!! $t FAILED (exit $rc); log: $log" >&2
    # The panic / sanitizer report and the saved crash input.
    grep -E -A4 'panicked at|^==[0-9]+==ERROR|ALARM|^SUMMARY' "$log" | head -n 40 >&2 || true
    grep -E 'Test unit written to|artifact_prefix' "$log" >&2 || true
  else
    grep -E '^Done [0-9]+ runs' "$log" | tail -n 1 || true
  fi
done

echo
echo "=== executions per target ($what each, sanitizer: $sanitizer) ==="
for t in "${targets[@]}"; do
  printf '  %-14s %s\n' "$t" "${execs[$t]}"
done
if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]} (crash inputs under fuzz/artifacts/<target>/;" \
    "reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <artifact>)" >&2
  exit 1
fi
echo "all targets ran clean"
