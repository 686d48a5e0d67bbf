#!/usr/bin/env bash
# Builds MariaDB 10.11.18's MyRocks storage engine plugin (ha_rocksdb.so, RocksDB 6.29.5 linked in
# statically) from Debian's source package 1:10.11.18-0+deb12u1, configured as debian/rules
# configures it, building only the plugin's target. The result loads into Debian's mariadbd of the
# same version (a plugin must match the server's interface version exactly).
#
#   scripts/build-myrocks.sh --stock   the unmodified plugin, into target/myrocks/stock/ha_rocksdb.so
#
# (WIP, issue 15: the patched build, rocksdb-patch/6.29.5/ and cpp/rocksdb-6.29.5/ with ringmerge
# linked in, is the next step.)
#
# The source tree and the build tree live in $RINGMERGE_CACHE (default ~/.cache/ringmerge), and
# every compile goes through ccache with base_dir set to the cache, as for the RocksDB trees.
# Measured on 2 cores: cold ~13 min (configure ~1 min, then the plugin target with mysys, strings,
# dbug and RocksDB on the way); warm ccache: minutes.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${RINGMERGE_CACHE:-$HOME/.cache/ringmerge}
JOBS=${JOBS:-$(nproc)}
VERSION=1:10.11.18-0+deb12u1
UPSTREAM=10.11.18
mode=${1:---stock}
[ "$mode" = --stock ] || { echo "usage: $0 --stock (the patched build is not written yet)" >&2; exit 2; }

log() { printf '[build-myrocks] %s\n' "$*" >&2; }

"$here/scripts/install-deps.sh"

# Debian's source packages need a deb-src entry (the machine's sources are binary-only).
src_list=/etc/apt/sources.list.d/ringmerge-src.sources
if [ ! -f "$src_list" ]; then
  log "adding a deb-src entry for bookworm main ($src_list)"
  cat >"$src_list" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq
fi

root="$CACHE/mariadb-$UPSTREAM"
mkdir -p "$root"
exec 9>"$root.lock"
flock 9
dl="$root/download"
if [ ! -f "$dl/mariadb_${UPSTREAM}.orig.tar.gz" ]; then
  log "downloading the source package mariadb=$VERSION"
  mkdir -p "$dl"
  (cd "$dl" && apt-get source -qq --download-only "mariadb=$VERSION")
fi
src="$root/src"
if [ ! -f "$src/.ringmerge-ready" ]; then
  log "unpacking into $src (Debian's patches applied)"
  rm -rf "$src" "$root/unpack"
  mkdir -p "$root/unpack"
  tar xzf "$dl/mariadb_${UPSTREAM}.orig.tar.gz" -C "$root/unpack"
  mv "$root/unpack/mariadb-$UPSTREAM" "$src"
  rmdir "$root/unpack"
  tar xJf "$dl/mariadb_${VERSION#1:}.debian.tar.xz" -C "$src"
  while read -r p; do
    [ -n "$p" ] && patch -p1 -s -d "$src" <"$src/debian/patches/$p"
  done <"$src/debian/patches/series"
  touch "$src/.ringmerge-ready"
fi
if [ ! -f "$root/.build-deps" ]; then
  log "installing the build dependencies (apt-get build-dep)"
  DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq "$src" >"$root/build-dep.log" 2>&1 ||
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
bld="$root/build-stock"
log "configuring ($bld)"
mkdir -p "$bld"
cmake -S "$src" -B "$bld" "${CMAKE_FLAGS[@]}" >"$root/cmake.log" 2>&1 ||
  { tail -40 "$root/cmake.log" >&2; exit 1; }
log "compiling the rocksdb plugin target with $JOBS jobs (cold: ~13 min; warm ccache: minutes)"
start=$(date +%s)
if ! make -C "$bld" -j"$JOBS" rocksdb >"$root/make.log" 2>&1; then
  grep -E "error|Error" "$root/make.log" | head -40 >&2
  log "build FAILED, full log: $root/make.log"
  exit 1
fi
log "compiled in $(($(date +%s) - start)) s"
out="$here/target/myrocks/stock"
mkdir -p "$out"
cp -f "$bld/storage/rocksdb/ha_rocksdb.so" "$out/ha_rocksdb.so"
log "plugin: $out/ha_rocksdb.so"
