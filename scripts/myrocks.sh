#!/usr/bin/env bash
# ringmerge under MyRocks: Debian 12's MariaDB 1:10.11.18 (RocksDB 6.29.5 in ha_rocksdb.so), with
# the plugin rebuilt from Debian's source plus ringmerge, against the same plugin with ringmerge
# off, in the same run.
#
#   scripts/myrocks.sh [--quick] [--modes off,native[,bpf]] [--no-mtr]
#
# 1. installs Debian's MariaDB packages pinned at 1:10.11.18-0+deb12u1 (the plugin must match the
#    server's build exactly) and sysbench, with the system service kept from starting;
# 2. builds the patched ha_rocksdb.so (scripts/build-myrocks.sh; cached, cold ~15 min);
# 3. per mode, a private server (own datadir and socket, TCP on 127.0.0.1 only, the patched plugin
#    from its own plugin dir, RINGMERGE_MODE in its environment, small CF options so levels form):
#    a deterministic SQL load (det.t: the same rows in every mode), sysbench prepare +
#    oltp_write_only + oltp_insert (4 client threads), a memtable flush, then a full manual compaction
#    (SET GLOBAL rocksdb_compact_cf='default'), timed by wall clock and by the server's CPU (every
#    thread: RocksDB's, ringmerge's helpers, io_uring workers are all threads of mariadbd);
# 4. reads the data back: det.t's CHECKSUM TABLE, row digest and secondary-index digests (read
#    with FORCE INDEX) must equal across modes; sysbench's tables must read the same before and
#    after the manual compaction, and each index the same through itself and the primary key;
# 5. MyRocks' own MTR suite `rocksdb` with ringmerge off and on (skipped by --no-mtr; --quick runs
#    a fixed subset): the failed sets must be equal; a test failing in one mode only is rerun
#    three times in both before it counts;
# 6. writes target/myrocks/report.md and results.json, prints the report, and exits non-zero if a
#    check failed (data differs, < 95% of subcompactions accelerated in the sysbench run, a
#    server did not start, MTR sets differ).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/target/myrocks"
VERSION=1:10.11.18-0+deb12u1
quick=0 modes=off,native,bpf mtr=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --modes) modes=$2; shift ;;
    --no-mtr) mtr=0 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
  shift
done
log() { printf '[myrocks] %s\n' "$*" >&2; }
server_pid=
# A private server must not outlive the script (its port would refuse the next run).
stop_server() { [ -z "$server_pid" ] || { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; } || true; }
trap stop_server EXIT
die() { log "FAILED: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (apt, the plugin file MTR loads)"

# --- 1. packages ----------------------------------------------------------------------------------
pkgs=(mariadb-server mariadb-client mariadb-client-core mariadb-server-core mariadb-common
      mariadb-plugin-rocksdb mariadb-test mariadb-test-data
      mariadb-plugin-provider-bzip2 mariadb-plugin-provider-lz4 mariadb-plugin-provider-lzma
      mariadb-plugin-provider-lzo mariadb-plugin-provider-snappy libmariadb3)
want=()
for p in "${pkgs[@]}"; do
  [ "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null)" = "$VERSION" ] || want+=("$p=$VERSION")
done
dpkg-query -W -f='${Status}' sysbench 2>/dev/null | grep -q "install ok installed" || want+=(sysbench)
if ((${#want[@]})); then
  log "installing ${want[*]}"
  # policy-rc.d 101: the packages must not start (or restart) the system's MariaDB service.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d; stop_server' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --allow-downgrades "${want[@]}" >"$out.apt.log" 2>&1 ||
    { tail -20 "$out.apt.log" >&2; die "apt-get install"; }
  rm -f /usr/sbin/policy-rc.d
  trap stop_server EXIT
fi
apt-mark hold "${pkgs[@]}" >/dev/null

# --- 2. the plugin ----------------------------------------------------------------------------------
"$here/scripts/build-myrocks.sh"
plugin="$out/plugin/ha_rocksdb.so"

# --- 3. a private server per mode -------------------------------------------------------------------
if [ "$quick" = 1 ]; then
  # One sysbench table: its secondary index is built by MyRocks' bulk load (an ingested file,
  # which falls back), and the quick load has few compactions to set that one against.
  tables=1 rows=60000 events=20000 det_batches=4 cf_mb=2
else
  tables=4 rows=150000 events=100000 det_batches=8 cf_mb=4
fi
# The sysbench rows are random (its seed does not make prepare repeatable), so they are checked
# within each mode; det.t is what must be equal across modes. Threads: a client per core and more,
# so compactions compete with foreground work as in production.
sb_threads=4
sb_common=(--db-driver=mysql --mysql-user=root --mysql-db=sbtest --mysql-storage-engine=rocksdb
           --tables=$tables --table-size=$rows --rand-seed=20261203 --percentile=99
           --report-interval=0)

# What the data must read back as: table checksums, a digest of every row by the primary key, and
# of every secondary-index entry by the index and by the primary key (they must agree), and a
# range lookup through the index. det.* must equal across modes; sbtest.* (random) must equal
# before and after the manual compaction, in each mode.
digests() {
  local t f=$1
  : >"$f"
  for t in det.t $(seq -f "sbtest.sbtest%g" 1 "$tables"); do
    # A range of k that holds rows: sysbench draws k around the middle of 1..rows.
    local idx=k lo=100 hi=20000
    [ "$t" = det.t ] || idx="k_${t#sbtest.sbtest}" lo=$((rows * 9 / 20)) hi=$((rows * 11 / 20))
    {
      echo "$t checksum $(q "CHECKSUM TABLE $t" | cut -f2)"
      echo "$t rows $(q "select count(*), bit_xor(crc32(concat_ws(',', id, k, c, pad))) from $t")"
      echo "$t index-by-pk $(q "select count(*), bit_xor(crc32(concat(k, ':', id))) from $t force index (primary)")"
      echo "$t index-by-index $(q "select count(*), bit_xor(crc32(concat(k, ':', id))) from $t force index ($idx) where k >= 0")"
      echo "$t index-lookups $(q "select count(*), bit_xor(crc32(concat_ws(',', id, k, c))) from $t force index ($idx) where k between $lo and $hi")"
    } >>"$f"
  done
}

# A corrupt SST: a fresh L0 file (a table's rows, flushed) gets bytes flipped a third of the way
# in, inside a data block, and a compaction reads it. RocksDB fails the compaction with its
# Corruption status; MyRocks then, by design (Rdb_event_listener::OnBackgroundError), persists a
# corruption marker and aborts the server, with ringmerge on or off. The check: the same in every
# mode, a Corruption in the error log, and after a restart with
# rocksdb_allow_to_start_after_corruption=1 the rest of the data reads as before (nothing lost).
corrupt_phase() {
  log "$mode: a corrupt SST, then a compaction over it"
  q "create database bad"
  q "create table bad.t (id int primary key, v char(200)) engine=rocksdb"
  q "insert into bad.t select seq, repeat(md5(seq), 6) from seq_1_to_20000"
  q "SET GLOBAL rocksdb_force_flush_memtable_now=1"
  # bad.t's file, by MyRocks' own map of index numbers to SST files.
  local sst
  sst=$(q "select m.sst_name from information_schema.rocksdb_index_file_map m
           join information_schema.rocksdb_ddl d
             on m.index_number = d.index_number and m.column_family = d.column_family
           where d.table_schema = 'bad' order by m.sst_name desc limit 1")
  [ -n "$sst" ] || die "$mode: no SST file holds bad.t after the flush"
  sst="$d/data/#rocksdb/${sst#./}"
  [ -f "$sst" ] || die "$mode: $sst (bad.t's SST) does not exist"
  python3 -c 'import os, sys
f = sys.argv[1]; n = os.path.getsize(f); fd = os.open(f, os.O_RDWR)
off = n // 3; b = os.pread(fd, 16, off); os.pwrite(fd, bytes(x ^ 0x5a for x in b), off); os.close(fd)' "$sst"
  basename "$sst" >"$d/corrupted-sst"
  local errlines
  errlines=$(wc -l <"$d/error.log")
  q "SET GLOBAL rocksdb_compact_cf='default'" >"$d/corrupt-compact.out" 2>&1 || true
  local i exited=false
  for i in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || { exited=true; break; }
    q "select 1" >/dev/null 2>&1 || true
    sleep 1
  done
  wait "$pid" 2>/dev/null || true
  server_pid=
  [ "$exited" = true ] || { mariadb-admin --defaults-file="$d/my.cnf" shutdown; wait "$pid" || true; }
  # What the aborted server's LOG kept (a logger's buffer dies with the process).
  cp "$d/data/#rocksdb/LOG" "$d/rocksdb-corruption.LOG"
  tail -n +"$((errlines + 1))" "$d/error.log" | grep -i "corrupt" | head -5 >"$d/corruption-errors" || true
  log "$mode: restart with rocksdb_allow_to_start_after_corruption=1"
  start_server --rocksdb-allow-to-start-after-corruption=1
  python3 -c 'import json, sys; print(json.dumps({"server_aborted": sys.argv[1] == "true",
      "det_after": sys.argv[2]}))' "$exited" "det.t checksum $(q "CHECKSUM TABLE det.t" | cut -f2)" \
    >"$d/corruption.json"
}

# Starts mariadbd for $mode on $d (extra arguments go to mariadbd) and waits until it answers.
start_server() {
  RINGMERGE_MODE=$mode RINGMERGE_OUTCOME_LOG="$d/outcomes" \
    mariadbd --defaults-file="$d/my.cnf" "$@" >>"$d/mariadbd.out" 2>&1 &
  pid=$!
  server_pid=$pid
  local i
  for i in $(seq 1 60); do
    mariadb --defaults-file="$d/my.cnf" -e 'select 1' >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { tail "$d/error.log" >&2; die "$mode: mariadbd exited"; }
    sleep 1
  done
  q "select 1" >/dev/null || die "$mode: the server did not answer in 60 s"
}

server_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

q() { mariadb --defaults-file="$d/my.cnf" -D mysql -N -B -e "$1"; }

run_mode() {
  mode=$1 d="$out/$1"
  local port=$2
  rm -rf "$d"
  mkdir -p "$d/plugin" "$d/data"
  cp -f "$plugin" "$d/plugin/ha_rocksdb.so"
  cat >"$d/my.cnf" <<EOF
[mariadbd]
datadir=$d/data
socket=$d/mysqld.sock
pid-file=$d/mysqld.pid
log-error=$d/error.log
port=$port
bind-address=127.0.0.1
user=root
plugin-dir=$d/plugin
plugin-load-add=ha_rocksdb.so
default-storage-engine=rocksdb
max_connections=20
# Small memtables and files so a load of a few hundred MB forms several levels.
rocksdb_default_cf_options=write_buffer_size=${cf_mb}m;target_file_size_base=${cf_mb}m;max_bytes_for_level_base=$((cf_mb * 4))m;level0_file_num_compaction_trigger=4
[client]
socket=$d/mysqld.sock
user=root
EOF
  mariadb-install-db --defaults-file="$d/my.cnf" --auth-root-authentication-method=normal \
    >"$d/install.log" 2>&1 || { tail "$d/install.log" >&2; die "$mode: mariadb-install-db"; }
  start_server
  q "select plugin_status from information_schema.plugins where plugin_name='ROCKSDB'" |
    grep -q ACTIVE || die "$mode: the ROCKSDB plugin is not active"
  # The deterministic part: the same rows in every mode (sysbench's are random, even seeded).
  log "$mode: deterministic SQL load ($det_batches x 50000 rows, updates, deletes)"
  q "create database det"
  q "create table det.t (id int primary key, k int, c char(120), pad char(60), key k(k)) engine=rocksdb"
  local b
  for b in $(seq 0 $((det_batches - 1))); do
    q "insert into det.t select seq, (seq * 7919) % 100003, md5(seq), left(sha1(seq), 60) from seq_$((b * 50000 + 1))_to_$(((b + 1) * 50000))"
  done
  q "update det.t set c = md5(id + 1) where id % 7 = 0"
  q "delete from det.t where id % 11 = 0"
  q "update det.t set k = k + 1 where id % 5 = 0"
  q "insert into det.t select seq, seq % 1000, sha1(seq), md5(seq) from seq_$((det_batches * 50000 + 1))_to_$((det_batches * 50000 + 30000))"
  q "create database sbtest"
  local sb=(sysbench "${sb_common[@]}" --mysql-socket="$d/mysqld.sock")
  log "$mode: sysbench prepare ($tables tables x $rows rows)"
  "${sb[@]}" --threads=1 oltp_insert prepare >"$d/sb-prepare.log" 2>&1 || { tail "$d/sb-prepare.log" >&2; die "$mode: prepare"; }
  local w
  for w in oltp_write_only oltp_insert; do
    log "$mode: sysbench $w ($events events, $sb_threads threads)"
    "${sb[@]}" --threads="$sb_threads" --events="$events" --time=0 "$w" run >"$d/sb-$w.log" 2>&1 ||
      { tail "$d/sb-$w.log" >&2; die "$mode: $w"; }
  done
  q "SET GLOBAL rocksdb_force_flush_memtable_now=1"
  # Let the automatic compactions the load started finish, so the manual one is measured alone:
  # every compaction_started event in the LOG has its compaction_finished, twice 2 s apart.
  local settled=0 started finished
  for i in $(seq 1 300); do
    started=$(grep -c '"event": "compaction_started"' "$d/data/#rocksdb/LOG" || true)
    finished=$(grep -c '"event": "compaction_finished"' "$d/data/#rocksdb/LOG" || true)
    if [ "$started" = "$finished" ]; then settled=$((settled + 1)); else settled=0; fi
    [ "$settled" -ge 2 ] && break
    sleep 2
  done
  digests "$d/before.txt"
  log "$mode: full manual compaction (rocksdb_compact_cf='default')"
  local t0 c0 t1 c1
  t0=$(date +%s.%N) c0=$(server_cpu_ticks "$pid")
  q "SET GLOBAL rocksdb_compact_cf='default'"
  t1=$(date +%s.%N) c1=$(server_cpu_ticks "$pid")
  python3 -c 'import json, sys; a = sys.argv[1:]; print(json.dumps({
      "wall_seconds": float(a[1]) - float(a[0]), "cpu_seconds": (int(a[3]) - int(a[2])) / int(a[4]),
      "peak_rss_kib": int(a[5])}))' "$t0" "$t1" "$c0" "$c1" "$(getconf CLK_TCK)" \
    "$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")" >"$d/manual.json"
  log "$mode: reading the data back"
  digests "$d/after.txt"
  # The LOG of the run so far: RocksDB's logger flushes on a line written >= 5 s after its last
  # flush, so wait, make it write one (a flush logs), and copy.
  sleep 6
  q "SET GLOBAL rocksdb_force_flush_memtable_now=1"
  cp "$d/data/#rocksdb/LOG" "$d/rocksdb.LOG"
  corrupt_phase
  mariadb-admin --defaults-file="$d/my.cnf" shutdown || kill "$pid"
  wait "$pid" || true
  server_pid=
}

port=33200
IFS=, read -r -a mode_list <<<"$modes"
for m in "${mode_list[@]}"; do
  if [ "$m" = bpf ] && ! why=$(python3 "$here/scripts/bpf_arena_probe.py" 2>&1); then
    log "SKIPPED mode bpf: $why"
    echo "$why" >"$out/bpf.skipped"
    continue
  fi
  rm -f "$out/$m.skipped"
  run_mode "$m" $((port++))
done

# --- 5. MTR -----------------------------------------------------------------------------------------
if [ "$mtr" = 1 ]; then
  "$here/scripts/myrocks-mtr.sh" $([ "$quick" = 1 ] && echo --quick) --plugin "$plugin" --out "$out/mtr"
fi

# --- 6. report --------------------------------------------------------------------------------------
python3 "$here/scripts/myrocks_report.py" --out "$out" --modes "$modes" \
  --tables "$tables" --rows "$rows" --events "$events" $([ "$mtr" = 1 ] && echo --mtr)
