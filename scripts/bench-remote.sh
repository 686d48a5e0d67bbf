#!/usr/bin/env bash
# Remote compaction benchmark: stock workers vs ringmerge workers (and local compaction beside
# them) on a live database; see scripts/bench_remote.py.
#
#   scripts/bench-remote.sh [--quick] [--keys N] [--reps R] [--write-buffer-mb M]
#       [--compaction-threads T] [--variants local-stock,local-ringmerge,remote-stock,remote-ringmerge]
#
# Builds the patched RocksDB and the driver first (scripts/build-rocksdb.sh; cached). Needs root
# (perf's syscall tracepoint). Results: target/bench-remote/report.md and results.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" != 0 ]; then
  echo "bench-remote: must run as root (perf tracepoints)" >&2
  exit 1
fi
command -v perf >/dev/null || {
  echo "bench-remote: installing linux-perf" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-perf >&2
}
"$here/build-rocksdb.sh" >&2
py=$(command -v python3.11 || command -v python3)
exec "$py" "$here/bench_remote.py" "$@"
