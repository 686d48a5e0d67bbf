#!/usr/bin/env bash
# The main job: build patched RocksDB + ringmerge, then compare stock (RINGMERGE_MODE=off) and
# ringmerge in one run: the deterministic manual compaction (kernel-counted syscalls, RSS, disk
# bound), then db_bench fillrandom and read/write workloads, then the charts.
#   scripts/bench.sh [--quick]      --quick: tiny scale, about two minutes
# Results: target/bench/{report.md,results.json,workloads.md,workloads.json,*.svg}
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
db_bench="$here/target/rocksdb/bin/db_bench"
compaction_args=() workload_args=()
if [ "${1:-}" = "--quick" ]; then
  compaction_args=(--num 100000 --reps 1)
  workload_args=(--quick)
fi
"$here/scripts/build-rocksdb.sh"
"$here/scripts/bench-compaction.sh" --db-bench "$db_bench" "${compaction_args[@]}"
"$here/scripts/bench-workloads.sh" --db-bench "$db_bench" "${workload_args[@]}"
echo
echo "Reports: $here/target/bench/report.md, $here/target/bench/workloads.md; charts: $here/target/bench/*.svg"
