#!/usr/bin/env bash
# The main job: build patched RocksDB + ringmerge, then compare stock (RINGMERGE_MODE=off) and
# ringmerge in one run: the deterministic manual compaction (kernel-counted syscalls, RSS, disk
# bound), then db_bench fillrandom and read/write workloads, then the charts.
#
#   scripts/bench.sh [--quick] [--num N] [--reps R] [--modes buffered,direct] [--variants stock,native,bpf]
#                    [--out DIR] [--keep-perf-data]
#
# --quick runs everything at a tiny scale (a few minutes; the test suite runs it so, and checks
# every report and chart from the raw per-run outputs: tests/bench_harness.rs). The other flags go
# to both suites (scripts/bench-compaction.sh and scripts/bench-workloads.sh, which take more; see
# their --help); --keep-perf-data keeps the manual compaction's perf.data files.
# Results: target/bench/{report.md,results.json,workloads.md,workloads.json,*.svg} (or DIR)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
db_bench="$here/target/rocksdb/bin/db_bench"
out="$here/target/bench"
compaction_args=() workload_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) compaction_args+=(--num 100000 --reps 1); workload_args+=(--quick); shift ;;
    --num | --reps | --modes | --variants)
      [ $# -ge 2 ] || { echo "bench.sh: $1 needs a value" >&2; exit 2; }
      compaction_args+=("$1" "$2"); workload_args+=("$1" "$2"); shift 2 ;;
    --out)
      [ $# -ge 2 ] || { echo "bench.sh: $1 needs a value" >&2; exit 2; }
      out=$(realpath -m "$2"); shift 2 ;;
    --keep-perf-data) compaction_args+=(--keep-perf-data); shift ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
  esac
done
"$here/scripts/build-rocksdb.sh"
"$here/scripts/bench-compaction.sh" --db-bench "$db_bench" --out "$out" "${compaction_args[@]}"
"$here/scripts/bench-workloads.sh" --db-bench "$db_bench" --out "$out" "${workload_args[@]}"
echo
echo "Reports: $out/report.md, $out/workloads.md; charts: $out/*.svg"
