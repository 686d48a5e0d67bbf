#!/usr/bin/env bash
# Deterministic manual-compaction benchmark (stock vs ringmerge); see scripts/bench_compaction.py.
#
#   scripts/bench-compaction.sh [--num N] [--reps R] [--modes buffered,direct]
#       [--variants stock,native,bpf] [--db-bench PATH] [--work DIR] [--out DIR] [--no-perf] ...
#
# Needs root (drops the page cache, traces syscalls with perf), /usr/bin/time and perf.
# Results: target/bench/results.json and target/bench/report.md (override with --out).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" != 0 ]; then
  echo "bench-compaction: must run as root (drop_caches, perf tracepoints)" >&2
  exit 1
fi
missing=()
[ -x /usr/bin/time ] || missing+=(time)
case " $* " in *" --no-perf "* | *" --trace off "* | *" --trace=off "*) ;; *) command -v perf >/dev/null || missing+=(linux-perf) ;; esac
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench-compaction: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
fi

py=$(command -v python3.11 || command -v python3)
exec "$py" "$here/bench_compaction.py" "$@"
