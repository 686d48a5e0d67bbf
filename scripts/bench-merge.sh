#!/usr/bin/env bash
# Merge throughput by input count (2, 4, 8, 16, 32 sorted runs of 128-byte records from the page
# cache): the native merge vs the BPF program's linear and heap selections, as MiB/s of merged
# output, medians of 3 interleaved reps. A benchmark, not a test: run it on a quiet machine.
#   scripts/bench-merge.sh [MiB per input count, default 64] [record bytes, default 128]
# Prints a markdown table; the figures also land in target/bench/merge-throughput.json.
set -euo pipefail
cd "$(dirname "$0")/.."
RINGMERGE_BENCH_MIB=${1:-64} RINGMERGE_BENCH_RECORD=${2:-128} cargo test --release --lib merge_throughput_by_inputs \
  -- --ignored --nocapture --test-threads=1 2>&1 | grep -E '^\|'
