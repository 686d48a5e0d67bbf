#!/usr/bin/env bash
# The main job: build patched RocksDB + ringmerge, then run the db_bench comparison of stock
# (RINGMERGE_MODE=off) and ringmerge, printing the results. Flags go to bench-compaction.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/build-rocksdb.sh"
exec "$here/scripts/bench-compaction.sh" --db-bench "$here/target/rocksdb/bin/db_bench" "$@"
