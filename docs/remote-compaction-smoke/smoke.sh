#!/usr/bin/env bash
# Smoke check of the driver's remote compaction: local vs remote (spawned workers).
set -u
D=/work/remote/target/rocksdb/bin/ringmerge_driver
S=/work/remote/target/remote-smoke
name=$1; shift
rm -rf $S/$name; mkdir -p $S/$name; cd $S/$name
run() { # tag mode [extra...]
  local tag=$1 mode=$2; shift 2
  env -u RINGMERGE_OUTCOME_LOG RINGMERGE_MODE=$mode nice $D run --db db-$tag --out dump-$tag.txt --expect expect-$tag.txt "$@" >stdout-$tag.txt 2>stderr-$tag.txt
  echo "$tag ($mode): exit $?"
}
keys() { grep -E '^  [0-9a-f]+ seq=|^visible' "$1"; }
run local-off off "$@"
run local-native native "$@"
run remote-off off "$@" --remote jobs-remote-off --remote-spawn
run remote-native native "$@" --remote jobs-remote-native --remote-spawn
cmp -s dump-local-off.txt dump-local-native.txt && echo "local off == local native (byte)" || echo "local off != local native"
cmp -s dump-remote-off.txt dump-remote-native.txt && echo "remote off == remote native (byte)" || { echo "remote off != remote native"; diff dump-remote-off.txt dump-remote-native.txt | head -5; }
cmp -s <(keys dump-local-off.txt) <(keys dump-remote-native.txt) && echo "local off == remote native (keys, visible)" || echo "local off != remote native (keys)"
cmp -s dump-local-off.txt dump-remote-native.txt && echo "  (also byte-identical)" || echo "  (full dumps differ: $(diff dump-local-off.txt dump-remote-native.txt | grep -c '^<') lines)"
for t in remote-off remote-native; do
  n=$(ls -d jobs-$t/*/ 2>/dev/null | wc -l)
  acc=$(cat jobs-$t/*/out/LOG 2>/dev/null | grep -c "ringmerge: accelerated")
  inst=$(cat jobs-$t/*/installed 2>/dev/null | grep -c OK)
  echo "$t: jobs=$n installed_ok=$inst worker_LOG_accelerated_lines=$acc dead=$(ls jobs-$t/*/dead 2>/dev/null | wc -l)"
done
