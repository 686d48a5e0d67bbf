#!/usr/bin/env bash
# RocksDB's crash test (tools/db_crashtest.py driving db_stress, both from the patched tree that
# scripts/rocksdb-suites.sh builds) with ringmerge on: blackbox (db_stress killed with SIGKILL
# every --interval seconds, then reopened and verified against its expected state) and whitebox
# (RocksDB's own kill points inside its write and compaction paths).
#
#   scripts/crashtest.sh                  4 min: blackbox + whitebox, native, 2 profiles
#   scripts/crashtest.sh --minutes 6 --modes native,bpf      CI (scripts/test.sh): 4 runs of
#                                         90 s, one profile each, ~8 min wall on 2 cores
#   scripts/crashtest.sh --minutes 64 --modes native,bpf --profiles all
#                                         long run: every profile in every mode and kind,
#                                         16 runs of 4 min, 32 min per mode (~75 min wall)
#   scripts/crashtest.sh --kinds blackbox --modes native,off --profiles plain
#   scripts/crashtest.sh --bin DIR        db_stress and db_crashtest.py from DIR (no build)
#
# Profiles (scripts/crashtest_report.py, PROFILES): lz4-rangedel (LZ4, range deletions),
# zstd-dict-partitioned (ZSTD with dictionaries, partitioned index and filters), myrocks-faults
# (LZ4 + ZSTD bottommost with dictionaries, range deletions, partitioned index, injected read
# faults), plain (uncompressed, every compaction eligible). They rotate across the runs of one
# invocation (--profiles rotate, the default; or a list to rotate over); --profiles all runs
# each in every mode and kind. Every run also passes no ingestion (global seqno), no blob
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
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
  shift
done
log() { printf '[crashtest] %s\n' "$*" >&2; }
report="$here/scripts/crashtest_report.py"

# Read the plan and the exclusions before building: a bad profile name or exclusion entry stops
# here.
plan=$(python3 "$report" plan --kinds "$kinds" --modes "$modes" --profiles "$profiles")
excluded=$(python3 "$report" excluded-flags)
STOCK_BUGS=()
[ -z "$excluded" ] || mapfile -t STOCK_BUGS <<<"$excluded"
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
status=0
rm -f "$out/results.json" "$out/results.md" "$out"/*.log "$out"/*.outcomes "$out"/*.loghits
: >"$out/runs.txt"
while read -r kind mode profile <&3; do
  name="$kind.$mode.$profile"
  tmp="$out/tmp-$name"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  mapfile -t PROFILE < <(python3 "$report" flags "$profile")
  args=(--duration="$secs")
  if [ "$kind" = blackbox ]; then args+=(--interval="$interval"); else args+=("${WHITEBOX[@]}"); fi
  log "$name: ${secs}s (db_stress: $bin/db_stress; log: $out/$name.log)"
  start=$(date +%s)
  set +e
  (cd "$bin" && TEST_TMPDIR="$tmp" RINGMERGE_MODE="$mode" RINGMERGE_WRAPPED_FS=verify \
    RINGMERGE_OUTCOME_LOG="$out/$name.outcomes" \
    python3 db_crashtest.py "$kind" --stress_cmd="$bin/db_stress" "${args[@]}" \
      "${PROFILE[@]}" "${STOCK_BUGS[@]}") </dev/null >"$out/$name.log" 2>&1
  rc=$?
  set -e
  end=$(date +%s)
  # The DB's LOG says once per process when the BPF program did not load; db_crashtest.py
  # deletes the DB after a passing run, so this finds only what a failing run left behind (every
  # accelerated outcome line carries the same marker).
  grep -rHs -m1 --include='LOG' --include='LOG.old.*' \
    -e bpf_unavailable -e 'the BPF merge is unavailable' "$tmp" >"$out/$name.loghits" || true
  [ "$rc" = 0 ] || { log "$name: db_crashtest.py exited $rc: tail of $out/$name.log"; tail -30 "$out/$name.log" >&2; }
  echo "$kind $mode $profile $rc $((end - start)) $end" >>"$out/runs.txt"
  rm -rf "$tmp"
done 3<<<"$plan"
python3 "$report" report "$out" || status=1
[ "$status" = 0 ] || log "FAILED: see the failed checks above ($out/results.md)"
exit $status
