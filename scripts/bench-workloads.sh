#!/usr/bin/env bash
# db_bench workloads under live compaction (stock vs ringmerge); see scripts/bench_workloads.py.
#
#   scripts/bench-workloads.sh [--quick] [--num N] [--duration S] [--reps R]
#       [--modes buffered,direct] [--variants stock,native] [--suites fill,rw] [--no-chart] ...
#
# Needs root (drops the page cache) and /usr/bin/time; cargo (optional) draws the SVG charts.
# Results: target/bench/workloads.json, workloads.md, workloads.svg, compaction.svg (--out DIR).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" != 0 ]; then
  echo "bench-workloads: must run as root (drop_caches)" >&2
  exit 1
fi
if [ ! -x /usr/bin/time ]; then
  echo "bench-workloads: installing time" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >&2
fi

py=$(command -v python3.11 || command -v python3)
exec "$py" "$here/bench_workloads.py" "$@"
