#!/usr/bin/env bash
# MyRocks' own MTR suite `rocksdb` (Debian's mariadb-test 1:10.11.18) against a rebuilt
# ha_rocksdb.so, with RINGMERGE_MODE=off and =native; called by scripts/myrocks.sh.
#
#   scripts/myrocks-mtr.sh --plugin <ha_rocksdb.so> --out <dir> [--quick]
#
# mysql-test-run loads the plugin from the server's plugin dir, so the rebuilt file replaces
# Debian's for the run and Debian's is put back on exit (also on error or Ctrl-C).
# Writes <dir>/results.json: per mode the passed/failed/skipped tests and the outcome log's
# path; and, for every test that failed in one mode only, three reruns in each mode, so a test
# that is flaky in stock is told from one ringmerge breaks. The report decides pass/fail.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
quick=0 plugin= out=
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --plugin) plugin=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ -f "$plugin" ] && [ -n "$out" ] || { echo "usage: $0 --plugin <so> --out <dir> [--quick]" >&2; exit 2; }
log() { printf '[myrocks-mtr] %s\n' "$*" >&2; }

mtrdir=/usr/share/mysql/mysql-test
sysplugin=/usr/lib/mysql/plugin/ha_rocksdb.so
[ -x "$mtrdir/mariadb-test-run" ] || { log "FAILED: no $mtrdir/mariadb-test-run (mariadb-test)"; exit 1; }
rm -rf "$out"
mkdir -p "$out"
cp -f "$sysplugin" "$out/debian-ha_rocksdb.so"
restore() { cp -f "$out/debian-ha_rocksdb.so" "$sysplugin"; }
trap restore EXIT
cp -f "$plugin" "$sysplugin"

# --quick: tests that compact (manual and automatic), delete, use range deletions, TTL and the
# reverse column families (which fall back: see docs/ports/myrocks-status.md).
tests=()
[ "$quick" = 1 ] && tests=(rocksdb.compact_deletes rocksdb.singledelete rocksdb.delete
  rocksdb.issue100_delete rocksdb.rocksdb_range2 rocksdb.ttl_primary rocksdb.rocksdb_cf_reverse
  rocksdb.records_in_range rocksdb.blind_delete_rc rocksdb.rocksdb_concurrent_delete)

run_mtr() {  # mode, name, then mysql-test-run arguments
  local mode=$1 name=$2
  shift 2
  (cd "$mtrdir" && RINGMERGE_MODE=$mode RINGMERGE_OUTCOME_LOG="$out/$name.outcomes" \
     ./mariadb-test-run --vardir="$out/var-$name" --force --max-test-fail=0 --retry=0 "$@" \
     >"$out/$name.log" 2>&1) || true
  rm -rf "$out/var-$name"
}

for mode in off native; do
  log "mode $mode: mariadb-test-run --suite=rocksdb ${tests[*]:-(all)}"
  start=$(date +%s)
  if [ "$quick" = 1 ]; then
    run_mtr "$mode" "$mode" --parallel=2 "${tests[@]}"
  else
    run_mtr "$mode" "$mode" --parallel=2 --suite=rocksdb
  fi
  echo $(($(date +%s) - start)) >"$out/$mode.seconds"
done

# Tests that failed in one mode only: three reruns in each mode.
python3 - "$out" <<'PY' >"$out/differing"
import re, sys
out = sys.argv[1]
res = re.compile(r"^(rocksdb\.\S+)( '[^']*')?\s+(?:w\d+ )?\[ (pass|fail) \]")
def failed(mode):  # test and combination ('write_committed', ...)
    return {(m.group(1), m.group(2)) for line in open(f"{out}/{mode}.log", errors="replace")
            if (m := res.match(line)) and m.group(3) == "fail"}
for t in sorted({name for name, _ in failed("off") ^ failed("native")}):
    print(t)
PY
while read -r t; do
  [ -n "$t" ] || continue
  for mode in off native; do
    log "rerunning $t with ringmerge $mode (--repeat=3)"
    run_mtr "$mode" "rerun-$mode-$t" --repeat=3 "$t"
  done
done <"$out/differing"
log "done: $out"
