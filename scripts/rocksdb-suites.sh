#!/usr/bin/env bash
# Runs RocksDB 10.1.3's own gtest suites (and builds db_stress) against the patched tree, with
# ringmerge forced on, and counts what the suites made ringmerge do.
#
#   scripts/rocksdb-suites.sh                  build + run all suites in mode native
#   scripts/rocksdb-suites.sh --build-only     only build the Debug+tests tree
#   scripts/rocksdb-suites.sh --modes native,off --suites db_compaction_test,compaction_job_test
#   scripts/rocksdb-suites.sh --filter 'DBCompactionTest.*'   gtest filter for every suite
#
# RocksDB builds its tests only in CMake Debug builds, so this is a second tree next to
# build-rocksdb.sh's Release one: same pristine source, same rocksdb-patch/, same glue
# (cpp/common/*.cc, cpp/rocksdb-10.1.3/*.cc) and the same target/release/libringmerge.a, in
# $RINGMERGE_CACHE/rocksdb-10.1.3-tests-<patchhash> (build-rocksdb.sh's pruning leaves it alone).
# Debug keeps asserts and sync points on (the tests need them); -O1 without debug info keeps the
# cold build and the test runs shorter (see README.md for the measurement).
#
# Output: target/suites/results.md and results.json, plus per suite, mode and shard the gtest log
# (<suite>.<mode>.<shard>.log) and the RINGMERGE_OUTCOME_LOG (<suite>.<mode>.<shard>.outcomes).
# Besides gtest's verdicts the run fails on a test process that exits non-zero or by a signal
# after its tests passed, an accelerated share below the stated minimum (SHARE_MINIMUMS in
# scripts/suites_run.py; whole suites only, not with --filter), a group with no outcome file, and
# in bpf mode any bpf_unavailable; excluded tests are listed in scripts/exclusions.toml.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${RINGMERGE_CACHE:-$HOME/.cache/ringmerge}
JOBS=${JOBS:-$(nproc)}
ALL_SUITES=(db_compaction_test compaction_job_test db_range_del_test db_universal_compaction_test
  compaction_service_test)
suites=("${ALL_SUITES[@]}")
modes=(native)
build_only=0
filter=${GTEST_FILTER:-}
out="$here/target/suites"
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) build_only=1 ;;
    --modes) IFS=, read -r -a modes <<<"$2"; shift ;;
    --suites) IFS=, read -r -a suites <<<"$2"; shift ;;
    --filter) filter=$2; shift ;;
    --out) out=$(realpath -m "$2"); shift ;;
    --shards) SHARDS=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[rocksdb-suites] %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Build
"$here/scripts/install-deps.sh"
pristine=$("$here/scripts/fetch-rocksdb.sh")
log "building the ringmerge static library (cargo build --release)"
(cd "$here" && cargo build --release --quiet)
key=$(cat "$here"/rocksdb-patch/10.1.3/*.patch | sha256sum | cut -c1-16)
root="$CACHE/rocksdb-10.1.3-tests-$key"
bin="$here/target/suites/bin"

CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=${SUITES_CXX_FLAGS_DEBUG:--O1}"
  "-DCMAKE_C_FLAGS_DEBUG=${SUITES_CXX_FLAGS_DEBUG:--O1}"
  -DPORTABLE=1 -DFAIL_ON_WARNINGS=OFF -DROCKSDB_BUILD_SHARED=OFF
  -DWITH_GFLAGS=ON -DWITH_LIBURING=ON -DWITH_ZLIB=ON -DWITH_SNAPPY=ON -DWITH_LZ4=ON -DWITH_ZSTD=ON
  -DWITH_TESTS=ON -DWITH_ALL_TESTS=ON -DWITH_TOOLS=ON -DWITH_BENCHMARK_TOOLS=OFF
  -DWITH_CORE_TOOLS=OFF -DWITH_TRACE_TOOLS=OFF
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
  -DRINGMERGE_DIR="$here" -DRINGMERGE_LIB="$here/target/release/libringmerge.a"
)
export CCACHE_BASEDIR="$CACHE" CCACHE_NOHASHDIR=true CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
targets=("${ALL_SUITES[@]}" db_stress)

mkdir -p "$CACHE" "$out" "$bin"
(
  exec 9>"$root.lock"
  flock 9
  src="$root/src"
  bld="$root/build"
  if [ ! -f "$src/.ringmerge-ready" ]; then
    log "preparing $src"
    rm -rf "$src"
    mkdir -p "$root"
    cp -a "$pristine" "$src"
    for p in "$here"/rocksdb-patch/10.1.3/*.patch; do
      log "applying $(basename "$p")"
      patch -p1 -s -d "$src" <"$p"
    done
    touch "$src/.ringmerge-ready"
  fi
  log "configuring ($bld)"
  cmake -S "$src" -B "$bld" "${CMAKE_FLAGS[@]}" >"$root/cmake.log" 2>&1 ||
    { tail -40 "$root/cmake.log" >&2; exit 1; }
  log "compiling ${targets[*]} with $JOBS jobs (cold: ~35 min on 2 cores; warm: minutes)"
  start=$(date +%s)
  if ! make -C "$bld" -j"$JOBS" "${targets[@]}" >"$root/make.log" 2>&1; then
    grep -E "error|Error" "$root/make.log" | head -40 >&2
    tail -20 "$root/make.log" >&2
    log "build FAILED, full log: $root/make.log"
    exit 1
  fi
  log "compiled in $(($(date +%s) - start)) s"
  for t in "${targets[@]}"; do
    f=$(find "$bld" -maxdepth 2 -type f -name "$t" -perm -u+x | head -1)
    [ -n "$f" ] || { log "no binary $t in $bld"; exit 1; }
    cp -f "$f" "$bin/$t"
  done
  cp -f "$src/tools/db_crashtest.py" "$bin/db_crashtest.py"
)
log "binaries in $bin: ${targets[*]} db_crashtest.py"
[ "$build_only" = 1 ] && exit 0

# ---------------------------------------------------------------------------------------------
# Run. RINGMERGE_WRAPPED_FS=verify: DBTestBase runs every DB on SpecialEnv, an EnvWrapper, so
# with the default (refuse) every compaction would fall back on the file system alone.
rm -f "$out/results.json" "$out/results.md"
log "running ${suites[*]} in modes ${modes[*]} (shards: ${SHARDS:-2}; results in $out)"
set +e
python3 "$here/scripts/suites_run.py" --bin "$bin" --out "$out" \
  --suites "$(IFS=,; echo "${suites[*]}")" --modes "$(IFS=,; echo "${modes[*]}")" \
  --filter "$filter" --shards "${SHARDS:-2}" --wrapped-fs "${RINGMERGE_WRAPPED_FS:-verify}" \
  --exclusions "$here/scripts/exclusions.toml"
rc=$?
set -e
cat "$out/results.md"
exit $rc
