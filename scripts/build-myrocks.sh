#!/usr/bin/env bash
# Builds MariaDB 10.11.18's MyRocks storage engine plugin (ha_rocksdb.so, RocksDB 6.29.5 linked in
# statically) from Debian's source package 1:10.11.18-0+deb12u1, configured as debian/rules
# configures it, building only the plugin's target. The result loads into Debian's mariadbd of the
# same version (a plugin must match the server's interface version exactly).
#
#   scripts/build-myrocks.sh            the patched plugin (rocksdb-patch/6.29.5/ applied,
#                                       cpp/rocksdb-6.29.5/ and the Rust library linked in),
#                                       into target/myrocks/plugin/ha_rocksdb.so
#   scripts/build-myrocks.sh --stock    the unmodified plugin, into target/myrocks/stock/
#
# Trees, all in $RINGMERGE_CACHE (default ~/.cache/ringmerge)/mariadb-10.11.18:
#   pristine/   Debian's source with Debian's patches, never modified
#   src/        a copy of pristine with the 6.29.5 patches applied, remade when the patches'
#               hash changes (stamp src/.ringmerge-patch-key); always at the same path, so ccache
#               (base_dir = the cache) hits on every file the patches do not touch
#   build/      the patched build; build-stock/ the stock one
# The adapter sources are not copied: MariaDB's CMake (our build_rocksdb.cmake hunk) globs them
# from this checkout, and the plugin's link depends on the Rust library, so `make` recompiles and
# relinks what changed. Measured on 2 cores: cold ~15 min; warm ccache, one file changed: ~1 min.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${RINGMERGE_CACHE:-$HOME/.cache/ringmerge}
JOBS=${JOBS:-$(nproc)}
case "${1:-}" in
  "") mode=patched ;;
  --stock) mode=stock ;;
  *) echo "usage: $0 [--stock]" >&2; exit 2 ;;
esac

log() { printf '[build-myrocks] %s\n' "$*" >&2; }

"$here/scripts/install-deps.sh"

. "$here/scripts/mariadb_source.bash"
mariadb_deb_src
mkdir -p "$root"
exec 9>"$root.lock"
flock 9
mariadb_download
pristine="$root/pristine"
if [ ! -f "$pristine/.ringmerge-ready" ]; then
  log "unpacking into $pristine (Debian's patches applied)"
  rm -rf "$pristine" "$root/unpack"
  mkdir -p "$root/unpack"
  tar xzf "$dl/mariadb_${UPSTREAM}.orig.tar.gz" -C "$root/unpack"
  mv "$root/unpack/mariadb-$UPSTREAM" "$pristine"
  rmdir "$root/unpack"
  tar xJf "$dl/mariadb_${VERSION#1:}.debian.tar.xz" -C "$pristine"
  while read -r p; do
    [ -n "$p" ] && patch -p1 -s -d "$pristine" <"$pristine/debian/patches/$p"
  done <"$pristine/debian/patches/series"
  touch "$pristine/.ringmerge-ready"
fi
if [ ! -f "$root/.build-deps" ]; then
  log "installing the build dependencies (apt-get build-dep)"
  DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq "$pristine" >"$root/build-dep.log" 2>&1 ||
    { tail -20 "$root/build-dep.log" >&2; exit 1; }
  touch "$root/.build-deps"
fi

# debian/rules' configure flags, without the packaging ones (install layout, docs, tests).
CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_CONFIG=mysql_release -DCONC_DEFAULT_CHARSET=utf8mb4
  -DPLUGIN_AWS_KEY_MANAGEMENT=NO -DPLUGIN_COLUMNSTORE=NO -DWITH_NUMA=AUTO -DIGNORE_AIO_CHECK=ON
  -DWITH_URING=ON -DWITH_LIBAIO=ON -DWITH_INNODB_SNAPPY=ON -DDEB=Debian
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
)
export CCACHE_BASEDIR="$CACHE" CCACHE_NOHASHDIR=true CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}

if [ "$mode" = stock ]; then
  tree=$pristine bld="$root/build-stock" out="$here/target/myrocks/stock"
else
  patches=("$here/rocksdb-patch/6.29.5/0001-ringmerge-compaction-input.patch"
           "$here/rocksdb-patch/6.29.5/build_rocksdb.cmake.patch")
  key=$(cat "${patches[@]}" | sha256sum | cut -c1-16)
  tree="$root/src" bld="$root/build" out="$here/target/myrocks/plugin"
  if [ "$(cat "$tree/.ringmerge-patch-key" 2>/dev/null)" != "$key" ]; then
    log "making the patched tree $tree (patch key $key)"
    rm -rf "$tree"
    cp -a --reflink=auto "$pristine" "$tree"
    rm -f "$tree/.ringmerge-ready"
    patch -p1 -s -d "$tree/storage/rocksdb/rocksdb" <"${patches[0]}"
    patch -p1 -s -d "$tree/storage/rocksdb" <"${patches[1]}"
    echo "$key" >"$tree/.ringmerge-patch-key"
  fi
  log "building the ringmerge static library (cargo build --release)"
  (cd "$here" && cargo build --release --quiet)
  CMAKE_FLAGS+=(-DRINGMERGE_DIR="$here" -DRINGMERGE_LIB="$here/target/release/libringmerge.a")
fi

log "configuring ($bld)"
mkdir -p "$bld"
cmake -S "$tree" -B "$bld" "${CMAKE_FLAGS[@]}" >"$root/cmake-$mode.log" 2>&1 ||
  { tail -40 "$root/cmake-$mode.log" >&2; exit 1; }
log "compiling the rocksdb plugin target with $JOBS jobs (cold: ~15 min; warm ccache: minutes)"
start=$(date +%s)
if ! make -C "$bld" -j"$JOBS" rocksdb >"$root/make-$mode.log" 2>&1; then
  grep -E "error|Error" "$root/make-$mode.log" | head -40 >&2
  log "build FAILED, full log: $root/make-$mode.log"
  exit 1
fi
log "compiled in $(($(date +%s) - start)) s"
so="$bld/storage/rocksdb/ha_rocksdb.so"
if [ "$mode" = patched ] && ! grep -q -a "RINGMERGE_MODE" "$so"; then
  # A plugin built without the hook would pass every comparison as "stock equals stock".
  log "FAILED: $so has no ringmerge in it: the patch did not take"
  exit 1
fi
mkdir -p "$out"
cp -f "$so" "$out/ha_rocksdb.so"
log "plugin: $out/ha_rocksdb.so"
