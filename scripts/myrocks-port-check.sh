#!/usr/bin/env bash
# Fast CI check of the MyRocks port (RocksDB 6.29.5 as bundled in Debian's MariaDB
# 1:10.11.18-0+deb12u1), without building MariaDB: both patches of rocksdb-patch/6.29.5/ apply
# exactly (no fuzz) to the pristine source, and the adapter (cpp/rocksdb-6.29.5/*.cc, cpp/common/*.cc) and the
# patched compaction_job.cc compile (-fsyntax-only -Werror) with the compiler, language level,
# defines, warnings and include directories of MariaDB's build (gcc, -std=gnu++11). It catches
# C++14+ code in the adapter, drift of the patch, and MariaDB's -Duint64_t=u_int64_t; not link
# errors nor run-time behaviour (scripts/build-myrocks.sh and MTR do). Warm: ~15-25 s on 2 cores.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${RINGMERGE_CACHE:-$HOME/.cache/ringmerge}
JOBS=${JOBS:-$(nproc)}
t0=$(date +%s)
log() { printf '[myrocks-port-check] %s\n' "$*" >&2; }
ok() { log "$* ok ($(($(date +%s) - t0)) s)"; }
die() { log "FAILED: $*"; exit 1; }

"$here/scripts/install-deps.sh"

# The source package exactly as scripts/build-myrocks.sh gets it (same deb-src entry, download
# directory and lock), so the two share one download.
. "$here/scripts/mariadb_source.bash"
mariadb_deb_src
mkdir -p "$root"
exec 9>"$root.lock"
# build-myrocks.sh holds the lock for its whole build (up to ~13 min): say why we wait.
flock -n 9 || { log "waiting for $root.lock (scripts/build-myrocks.sh running?)"; flock 9; }
mariadb_download
ok "source package $VERSION"

# Our own pristine tree (build-myrocks.sh's src/ belongs to real builds): storage/rocksdb only,
# with those of Debian's patches that touch it (none in this version; one that also touches files
# outside storage/rocksdb would fail here, loudly). Made aside, then renamed: never half-made.
pc="$root/port-check"
if [ ! -f "$pc/.ringmerge-ready" ]; then
  log "unpacking storage/rocksdb into $pc"
  rm -rf "$pc" "$pc.tmp"
  mkdir -p "$pc.tmp/src"
  tar xzf "$dl/mariadb_$UPSTREAM.orig.tar.gz" -C "$pc.tmp/src" --strip-components=1 "mariadb-$UPSTREAM/storage/rocksdb"
  tar xJf "$dl/mariadb_${VERSION#1:}.debian.tar.xz" -C "$pc.tmp" debian/patches
  while read -r p _; do
    case "$p" in '' | '#'*) continue ;; esac
    grep -q '^+++ [^[:space:]]*storage/rocksdb/' "$pc.tmp/debian/patches/$p" || continue
    log "applying Debian's $p"
    patch -p1 -s -d "$pc.tmp/src" <"$pc.tmp/debian/patches/$p" || die "Debian's $p does not apply"
  done <"$pc.tmp/debian/patches/series"
  touch "$pc.tmp/.ringmerge-ready"
  mv "$pc.tmp" "$pc"
fi
exec 9>&- # from here on the tree is only read: let build-myrocks.sh have the lock
pristine="$pc/src/storage/rocksdb"
ok "pristine storage/rocksdb ($pc)"
scratch=$(mktemp -d) && trap 'rm -rf "$scratch"' EXIT
rpatch="$here/rocksdb-patch/6.29.5/0001-ringmerge-compaction-input.patch"
cpatch="$here/rocksdb-patch/6.29.5/build_rocksdb.cmake.patch"
# --fuzz=0 -N: a patch that needs fuzz, or is already applied, is broken for this exact source.
dry() { patch --dry-run --fuzz=0 -N -p1 -d "$1" <"$2" >"$scratch/dry.log" 2>&1; }
dry "$pristine/rocksdb" "$rpatch" || { cat "$scratch/dry.log" >&2; die "$rpatch does not apply"; }
dry "$pristine" "$cpatch" || { cat "$scratch/dry.log" >&2; die "$cpatch does not apply"; }
ok "patch --dry-run of both patches"
# Self-check: the same dry-runs must reject each patch with its context and removed lines
# altered, or passing them proves nothing.
corrupt() { sed '/^---/!s/^\([ -].*\)$/\1 ringmerge-corrupted/' "$1" >"$scratch/bad.patch"; }
corrupt "$rpatch" && ! dry "$pristine/rocksdb" "$scratch/bad.patch" || die "a corrupted $rpatch applied"
corrupt "$cpatch" && ! dry "$pristine" "$scratch/bad.patch" || die "a corrupted $cpatch applied"
ok "corrupted patches rejected"
# The RocksDB patch goes into a scratch copy of the files it touches (first on the include path,
# so a patched header would win); the pristine tree stays pristine.
mapfile -t touched < <(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$rpatch")
patched=()
for f in "${touched[@]}"; do
  mkdir -p "$scratch/rocksdb/$(dirname "$f")"
  cp "$pristine/rocksdb/$f" "$scratch/rocksdb/$f" 2>/dev/null || true # a new file: patch makes it
  if [[ $f == *.cc ]]; then patched+=("$scratch/rocksdb/$f"); fi
done
patch -p1 -s -d "$scratch/rocksdb" <"$rpatch" || die "applying $rpatch to a scratch copy"
grep -q ROCKSDB_RINGMERGE "$scratch/rocksdb/db/compaction/compaction_job.cc" ||
  die "the patched compaction_job.cc has no ROCKSDB_RINGMERGE code"
# The cxx headers: build.rs (cxx-build) links them into target/cxxbridge/ringmerge/src/.
cxxbridge="$here/target/cxxbridge"
have_cxx() { [ -f "$cxxbridge/ringmerge/src/api.rs.h" ] && [ -f "$cxxbridge/ringmerge/src/contract.rs.h" ]; }
cargo_lib() { (cd "$here" && cargo "$@" --release --quiet) || die "cargo $* --release failed"; }
if ! have_cxx; then
  log "no cxx headers in $cxxbridge: cargo build --release --lib"
  cargo_lib build --lib
  # cargo reruns build.rs only when its inputs change, not when target/cxxbridge went away.
  have_cxx || { log "build.rs was fresh: cargo clean -p ringmerge, again" && cargo_lib clean -p ringmerge; }
  have_cxx || cargo_lib build --lib
  have_cxx || die "cargo build --release --lib made no $cxxbridge/ringmerge/src/*.rs.h"
fi
# The flags of MariaDB's rocksdblib target on Linux as debian/rules configures it (its
# storage/rocksdb/{CMakeLists.txt,build_rocksdb.cmake}), plus what build_rocksdb.cmake.patch adds
# for the adapter and compaction_job.cc: ROCKSDB_RINGMERGE and three include directories. No
# warning fires in these files today (RocksDB's headers included), so -Werror keeps it that way.
grep -q 'COMPILE_DEFINITIONS ROCKSDB_RINGMERGE' "$cpatch" && grep -q 'cpp/rocksdb-6.29.5/\*.cc' "$cpatch" &&
  grep -q 'cpp/common/\*.cc' "$cpatch" ||
  die "$cpatch no longer adds cpp/common/*.cc and cpp/rocksdb-6.29.5/*.cc with ROCKSDB_RINGMERGE: update this script"
CXXFLAGS=(
  -std=gnu++11 -fsyntax-only -Werror -O2 -fPIC -fstack-protector --param=ssp-buffer-size=4
  -Wall -Wextra -Wenum-compare -Wenum-conversion -Wmissing-braces -Wno-format-truncation
  -Wno-init-self -Wno-nonnull-compare -Wno-unused-parameter -Wnon-virtual-dtor
  -Woverloaded-virtual -Wsuggest-override -Wvla -Wwrite-strings -Wframe-larger-than=16384
  -Wno-range-loop-construct -fno-builtin-memcmp -DNDEBUG -DDBUG_OFF -D_FORTIFY_SOURCE=2
  -D_FILE_OFFSET_BITS=64 -DOS_LINUX -DROCKSDB_PLATFORM_POSIX -DROCKSDB_LIB_IO_POSIX
  -DROCKSDB_FALLOCATE_PRESENT -DROCKSDB_MALLOC_USABLE_SIZE -DROCKSDB_SUPPORT_THREAD_LOCAL
  -DROCKSDB_SCHED_GETCPU_PRESENT -DHAVE_SCHED_GETCPU=1 -DROCKSDB_AUXV_GETAUXVAL_PRESENT
  -DHAVE_TIMER_DELETE -DZLIB -DLZ4 -DSNAPPY -DZSTD
  -Duint64_t=u_int64_t -Duint32_t=u_int32_t -Duint16_t=u_int16_t -Duint8_t=u_int8_t
  -DROCKSDB_RINGMERGE -I"$here/cpp/rocksdb-6.29.5" -I"$here/cpp/common" -I"$here/cpp" -I"$cxxbridge"
  -I"$scratch/rocksdb" -I"$pristine/rocksdb" -I"$pristine/rocksdb/include"
)
# Patched RocksDB files first (compaction_job.cc takes longest), then the adapter; JOBS at a time.
shopt -s nullglob
glue=("$here"/cpp/common/*.cc "$here"/cpp/rocksdb-6.29.5/*.cc)
((${#glue[@]} && ${#patched[@]})) || die "nothing to compile: no adapter .cc or no patched .cc"
sources=("${patched[@]}" "${glue[@]}")
mkdir -p "$scratch/logs"
compile() { # each file's diagnostics in its own log; .ok marks a clean compile
  g++ "${CXXFLAGS[@]}" "$1" >"$scratch/logs/${1##*/}.log" 2>&1 && touch "$scratch/logs/${1##*/}.ok"
}
for f in "${sources[@]}"; do
  compile "$f" &
  while (($(jobs -rp | wc -l) >= JOBS)); do wait -n || true; done
done
wait || true
failed=0
for f in "${sources[@]}"; do
  l="$scratch/logs/${f##*/}"
  [ -f "$l.ok" ] && continue
  failed=$((failed + 1)) && log "compile error in $f:"
  grep -m 8 -A 4 -E 'error|fatal' "$l.log" | head -40 >&2 || head -40 "$l.log" >&2
done
((failed == 0)) || die "$failed of ${#sources[@]} files do not compile as MariaDB compiles them"
# Self-check: as many clean compiles as files to compile, none skipped or lost.
nok=$(find "$scratch/logs" -name '*.ok' | wc -l)
((nok == ${#sources[@]})) || die "compiled $nok files cleanly, expected ${#sources[@]}"
ok "g++ -std=gnu++11 -fsyntax-only -Werror: $nok files (${#glue[@]} adapter, ${#patched[@]} patched)"
# Self-check: the same flags must fail on an #error that only the adapter's define reaches, after
# an adapter header found through the include path (a missing header is a fatal error instead).
printf '#include "%s"\n#ifdef ROCKSDB_RINGMERGE\n#error ringmerge-canary\n#endif\n' \
  ringmerge_compaction_input.h >"$scratch/canary.cc"
if g++ "${CXXFLAGS[@]}" "$scratch/canary.cc" >"$scratch/canary.log" 2>&1 ||
  ! grep -q '#error ringmerge-canary' "$scratch/canary.log" || grep -q 'fatal error' "$scratch/canary.log"; then
  head -20 "$scratch/canary.log" >&2
  die "the canary compile did not fail as it must: the compile step cannot be trusted"
fi
ok "canary compile fails as it must"
log "all ok in $(($(date +%s) - t0)) s"
