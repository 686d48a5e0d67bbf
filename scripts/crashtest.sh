#!/usr/bin/env bash
# RocksDB's crash test (tools/db_crashtest.py driving db_stress, both from the patched tree that
# scripts/rocksdb-suites.sh builds) with ringmerge on: blackbox (db_stress killed with SIGKILL
# every --interval seconds, then reopened and verified against its expected state) and whitebox
# (RocksDB's own kill points inside its write and compaction paths).
#
#   scripts/crashtest.sh                  4 min: blackbox + whitebox, native, 4 runs of 60 s
#   scripts/crashtest.sh --minutes 6 --modes native,bpf      CI (scripts/test.sh; --modes
#                                         native where the kernel refuses BPF arenas): 4 runs
#                                         of 90 s, each profile once, ~8-9 min wall on 2 cores
#   scripts/crashtest.sh --minutes 64 --modes native,bpf --profiles all
#                                         long run: every profile in every mode and kind,
#                                         16 runs of 4 min, 32 min per mode (est. ~75 min wall)
#   scripts/crashtest.sh --kinds blackbox --modes native,off --profiles plain
#   scripts/crashtest.sh --bin DIR        db_stress and db_crashtest.py from DIR (no build)
#
# Profiles (scripts/crashtest_report.py, PROFILES): lz4-rangedel (LZ4, range deletions),
# zstd-dict-partitioned (ZSTD with dictionaries, partitioned index and filters), myrocks-faults
# (LZ4 + ZSTD bottommost with dictionaries, range deletions, partitioned index, injected read
# faults), plain (uncompressed, every compaction eligible). They rotate across the runs of one
# invocation so that every mode runs every profile once (--profiles rotate, the default; or a
# list to rotate over); --profiles all runs each in every mode and kind. Every run also passes no ingestion (global seqno), no blob
# files, and the stock-bug flags of scripts/exclusions.toml; everything else stays
# db_crashtest.py's randomized defaults. db_stress always wraps its file system
# (DbStressFSWrapper), so RINGMERGE_WRAPPED_FS=verify.
#
# A run fails on db_crashtest.py's exit status or verification failures, and on what
# db_crashtest.py lets pass: a db_stress run it killed on its own timeout (a hang), an outcome
# file missing or empty, an accelerated share below the profile's stated minimum, a profile
# flag its sanitizing rewrote, no accelerated input of the kind the profile is for, and in a
# bpf run any bpf_unavailable (scripts/crashtest_report.py says how each is detected).
# Output: target/crashtest/results.md, results.json, per run <kind>.<mode>.<profile>.{log,outcomes}.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
minutes=4
kinds=blackbox,whitebox
modes=native
profiles=rotate
out="$here/target/crashtest"
bin=
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift ;;
    --kinds) kinds=$2; shift ;;
    --modes) modes=$2; shift ;;
    --profiles) profiles=$2; shift ;;
    --out) out=$(realpath -m "$2"); shift ;;
    --bin) bin=$(realpath "$2"); shift ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
  shift
done
log() { printf '[crashtest] %s\n' "$*" >&2; }
report="$here/scripts/crashtest_report.py"

# Read the plan and the exclusions before building: a bad profile name or exclusion entry stops
# here.
plan=$(python3 "$report" plan --kinds "$kinds" --modes "$modes" --profiles "$profiles")
excluded_blackbox=$(python3 "$report" excluded-flags --kind blackbox)
excluded_whitebox=$(python3 "$report" excluded-flags --kind whitebox)
if [ -z "$bin" ]; then
  "$here/scripts/rocksdb-suites.sh" --build-only
  bin="$here/target/suites/bin"
fi
[ -x "$bin/db_stress" ] && [ -f "$bin/db_crashtest.py" ] ||
  { log "no db_stress / db_crashtest.py in $bin"; exit 1; }
mkdir -p "$out"
runs=$(wc -l <<<"$plan")
secs=$((minutes * 60 / runs))
interval=$((secs / 4 < 60 ? (secs / 4 > 15 ? secs / 4 : 15) : 60))
[ "$secs" -ge 60 ] || log "warning: ${secs}s per run ($runs runs in $minutes min) is short"
# Whitebox runs db_stress until a kill point fires or its ops are done, and checks --duration
# only between runs: at the default odds (1 in 888887) one run took 9 min of a 1 min budget on
# 2 cores, so kill points fire 10x more often and a run's ops are capped. Its no-kill runs
# (universal, FIFO, leveled) then take minutes on the Debug db_stress, and db_crashtest.py lets a
# run overrun --duration by up to 15 min before it kills it: in a 30 min run, one 20000-ops
# leveled run with reopen=20 took 17+ min, hence 5000. The kill runs get 100x that: one in
# kill mode 1 (kill odds 1 in 8889, WritableFileWriter's points excluded) went 16.5 min without a
# kill at 5000 (500k ops per thread; db_crashtest.py killed it at --duration + 15 min and counted
# that as passing; crashtest_report.py now fails such a run), which put the whole CI at 31 min
# instead of 16; hence 1500.
WHITEBOX=(--random_kill_odd=88887 --ops_per_thread=1500)
# db_crashtest.py deletes the DB after a run it timed out (it counts it as passing), so the
# evidence of a hang is gone by the time crashtest_report.py fails the run. A run still going
# HANG_SNAPSHOT_AFTER seconds past its budget (no run that ended by itself overran by more than
# ~3 min here; the harness kills at 15 min) gets db_stress's thread stacks (gdb, if installed;
# else the kernel's wait channels) and the DB's LOGs saved in <run>.hang/ first.
HANG_SNAPSHOT_AFTER=${HANG_SNAPSHOT_AFTER:-600}
watch_hang() {  # pid of the run, seconds, run name, its TEST_TMPDIR
  local pid=$1 after=$2 name=$3 tmp=$4 t=0 p task dir="$out/$3.hang"
  while [ "$t" -lt "$after" ]; do
    sleep 5
    t=$((t + 5))
    kill -0 "$pid" 2>/dev/null || return 0
  done
  mkdir -p "$dir"
  log "$name: still running ${after}s after it started; saving stacks and LOGs in $dir"
  for p in $(pgrep -f -- "--db=$tmp/" || true); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = db_stress ] || continue
    for task in /proc/"$p"/task/*; do
      echo "${task##*/} $(cat "$task/comm") $(cat "$task/wchan")"
    done >"$dir/threads.$p.txt" 2>/dev/null
    if command -v gdb >/dev/null; then
      timeout 120 gdb -p "$p" -batch -ex 'thread apply all bt' >"$dir/stacks.$p.txt" 2>&1
    fi
  done
  cp "$tmp"/rocksdb_crashtest_*/LOG* "$dir/" 2>/dev/null || true
}
status=0
rm -rf "$out/results.json" "$out/results.md" "$out"/*.log "$out"/*.outcomes "$out"/*.loghits \
  "$out"/*.hang
: >"$out/runs.txt"
n=0
while read -r kind mode profile <&3; do
  n=$((n + 1))
  name="$kind.$mode.$profile"
  [ ! -e "$out/$name.log" ] || name="$name.$n"  # the same run twice (e.g. --kinds blackbox,blackbox)
  tmp="$out/tmp-$name"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  mapfile -t PROFILE < <(python3 "$report" flags "$profile")
  excluded=$excluded_blackbox
  [ "$kind" = blackbox ] || excluded=$excluded_whitebox
  STOCK_BUGS=()
  [ -z "$excluded" ] || mapfile -t STOCK_BUGS <<<"$excluded"
  args=(--duration="$secs")
  if [ "$kind" = blackbox ]; then args+=(--interval="$interval"); else args+=("${WHITEBOX[@]}"); fi
  log "$name: ${secs}s (db_stress: $bin/db_stress; log: $out/$name.log)"
  start=$(date +%s)
  rm -rf "$out/$name.hang"
  set +e
  (cd "$bin" && TEST_TMPDIR="$tmp" RINGMERGE_MODE="$mode" RINGMERGE_WRAPPED_FS=verify \
    RINGMERGE_OUTCOME_LOG="$out/$name.outcomes" \
    python3 db_crashtest.py "$kind" --stress_cmd="$bin/db_stress" "${args[@]}" \
      "${PROFILE[@]}" "${STOCK_BUGS[@]}") </dev/null >"$out/$name.log" 2>&1 &
  run=$!
  watch_hang "$run" "$((secs + HANG_SNAPSHOT_AFTER))" "$name" "$tmp" &
  watcher=$!
  wait "$run"
  rc=$?
  kill "$watcher" 2>/dev/null
  wait "$watcher" 2>/dev/null
  set -e
  end=$(date +%s)
  # The DB's LOG says once per process when the BPF program did not load; db_crashtest.py
  # deletes the DB after a passing run, so this finds only what a failing run left behind (every
  # accelerated outcome line carries the same marker).
  grep -rHs -m1 --include='LOG' --include='LOG.old.*' \
    -e bpf_unavailable -e 'the BPF merge is unavailable' "$tmp" >"$out/$name.loghits" || true
  [ "$rc" = 0 ] || { log "$name: db_crashtest.py exited $rc: tail of $out/$name.log"; tail -30 "$out/$name.log" >&2; }
  echo "$kind $mode $profile $rc $((end - start)) $end $name" >>"$out/runs.txt"
  rm -rf "$tmp"
done 3<<<"$plan"
python3 "$report" report "$out" || status=1
[ "$status" = 0 ] || log "FAILED: see the failed checks above ($out/results.md)"
exit $status
