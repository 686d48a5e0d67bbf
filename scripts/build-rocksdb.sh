#!/usr/bin/env bash
# Builds RocksDB 10.1.3 (Release, static) with rocksdb-patch/ applied and linked with ringmerge's
# Rust static library, and leaves db_bench, sst_dump, ldb and ringmerge_driver in target/rocksdb/bin/.
#
#   scripts/build-rocksdb.sh           patched build (the default)
#   scripts/build-rocksdb.sh --stock   unmodified 10.1.3, same flags, into target/rocksdb-stock/bin/
#                                      (db_bench, sst_dump, ldb, and ringmerge_driver built against
#                                      the stock librocksdb.a, for tests/stock_equivalence.rs); no
#                                      cargo build, no ringmerge code in it
#
# The RocksDB build tree lives outside the clone, in $RINGMERGE_CACHE (default ~/.cache/ringmerge),
# keyed by the hash of the patch, and every compile goes through ccache with base_dir set to the
# cache, so a fresh clone (CI) or a new patch only recompiles what changed.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${RINGMERGE_CACHE:-$HOME/.cache/ringmerge}
JOBS=${JOBS:-$(nproc)}
mode=patched
[ "${1:-}" = "--stock" ] && mode=stock

log() { printf '[build-rocksdb] %s\n' "$*" >&2; }

"$here/scripts/install-deps.sh"
pristine=$("$here/scripts/fetch-rocksdb.sh")

# The configuration every build shares: changing it invalidates ccache for the whole tree.
CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Release -DPORTABLE=1 -DFAIL_ON_WARNINGS=OFF -DROCKSDB_BUILD_SHARED=OFF
  -DWITH_GFLAGS=ON -DWITH_LIBURING=ON -DWITH_ZLIB=ON -DWITH_SNAPPY=ON -DWITH_LZ4=ON -DWITH_ZSTD=ON
  -DWITH_BENCHMARK_TOOLS=ON -DWITH_CORE_TOOLS=ON -DWITH_TOOLS=OFF -DWITH_TESTS=OFF
  -DWITH_TRACE_TOOLS=OFF
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
)
export CCACHE_BASEDIR="$CACHE" CCACHE_NOHASHDIR=true CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}

if [ "$mode" = stock ]; then
  key=stock
  out="$here/target/rocksdb-stock/bin"
  targets=(db_bench sst_dump ldb ringmerge_driver)
  # The static library by name as well (the tools and the driver link it; it is checked below).
  lib_targets=(rocksdb)
  # The test driver, against the stock library: scripts/stock-driver.cmake adds the target to the
  # unmodified tree at configure time, as rocksdb-patch/ adds it to the patched one (same flags,
  # same link libraries); the tree's sources stay untouched. make rebuilds it when the driver's
  # source changes.
  CMAKE_FLAGS+=(-DCMAKE_PROJECT_INCLUDE="$here/scripts/stock-driver.cmake"
    -DRINGMERGE_DRIVER_SRC="$here/tests/driver/ringmerge_driver.cc")
else
  # The Rust side first: the patched tree links target/release/libringmerge.a and includes the
  # cxx-generated header from target/cxxbridge/.
  log "building the ringmerge static library (cargo build --release)"
  (cd "$here" && cargo build --release --quiet)
  # Keyed by the patch alone: build flags reach an existing tree through cmake re-configure, and
  # so does the list of glue files (the patch's CMakeLists globs cpp/common/*.cc and cpp/rocksdb-10.1.3/*.cc at each build).
  key=$(cat "$here"/rocksdb-patch/10.1.3/*.patch | sha256sum | cut -c1-16)
  out="$here/target/rocksdb/bin"
  targets=(db_bench sst_dump ldb ringmerge_driver)
  lib_targets=()
  CMAKE_FLAGS+=(-DRINGMERGE_DIR="$here" -DRINGMERGE_LIB="$here/target/release/libringmerge.a")
fi

root="$CACHE/rocksdb-10.1.3-$key"
# One build per tree at a time: clones (worktrees, CI) share the tree of the same patch, and the
# glue source and Rust library it compiles in come from whichever clone runs this script.
mkdir -p "$CACHE"
exec 9>"$root.lock"
flock 9
src="$root/src"
bld="$root/build"
if [ ! -f "$src/.ringmerge-ready" ]; then
  log "preparing $src"
  rm -rf "$src"
  mkdir -p "$root"
  cp -a "$pristine" "$src"
  if [ "$mode" = patched ]; then
    for p in "$here"/rocksdb-patch/10.1.3/*.patch; do
      log "applying $(basename "$p")"
      patch -p1 -s -d "$src" <"$p"
    done
  fi
  touch "$src/.ringmerge-ready"
fi

log "configuring ($bld)"
cmake -S "$src" -B "$bld" "${CMAKE_FLAGS[@]}" >"$root/cmake.log" 2>&1 ||
  { tail -40 "$root/cmake.log" >&2; exit 1; }
log "compiling ${targets[*]} with $JOBS jobs (cold: ~20 min; warm ccache: minutes)"
start=$(date +%s)
if ! make -C "$bld" -j"$JOBS" "${lib_targets[@]}" "${targets[@]}" >"$root/make.log" 2>&1; then
  grep -E "error|Error" "$root/make.log" | head -40 >&2
  tail -20 "$root/make.log" >&2
  log "build FAILED, full log: $root/make.log"
  exit 1
fi
log "compiled in $(($(date +%s) - start)) s"
mkdir -p "$out"
for t in "${targets[@]}"; do
  f=$(find "$bld" -maxdepth 2 -type f -name "$t" -perm -u+x | head -1)
  [ -n "$f" ] || { log "no binary $t in $bld"; exit 1; }
  cp -f "$f" "$out/$t"
done
cp -f "$bld/librocksdb.a" "$out/../librocksdb.a" 2>/dev/null || true
if [ "$mode" = stock ]; then
  # The stock library must be stock: no ringmerge symbol may have found its way in (say, from a
  # pristine source that was patched in place).
  [ -f "$bld/librocksdb.a" ] || { log "no $bld/librocksdb.a"; exit 1; }
  n=$(nm -C "$bld/librocksdb.a" | grep -ci ringmerge || true)
  if [ "$n" != 0 ]; then
    log "$bld/librocksdb.a has $n ringmerge symbols: it is not stock RocksDB (rm -rf $root)"
    exit 1
  fi
  # The driver source this binary was built from: tests/stock_equivalence.rs fails, asking for
  # this script, when the clone's driver has changed since (a stale stock driver would compare a
  # different scenario, or reject a new flag).
  cp -f "$here/tests/driver/ringmerge_driver.cc" "$out/ringmerge_driver.built-from.cc"
fi
log "binaries in $out: ${targets[*]}"
# Keep the three most recent patched trees: older patch versions are only ccache's business now.
# Only patched Release trees (directories) count; the stock tree and test-suite trees stay.
# (grep finds none in a cache that has only the stock tree: not an error.)
ls -dt "$CACHE"/rocksdb-10.1.3-*/ 2>/dev/null | { grep -Ev -- '-(stock|tests-[0-9a-f]+)/$' || true; } |
  tail -n +4 | xargs -r rm -rf
