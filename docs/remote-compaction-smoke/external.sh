#!/usr/bin/env bash
# The primary without --remote-spawn, and workers started by a shell loop (an external pool).
# $1: kill-at for the workers ("" none, "none-running": no worker at all, timeout 1 s).
set -u
D=/work/remote/target/rocksdb/bin/ringmerge_driver
S=/work/remote/target/remote-smoke
at=$1; shift
name=external-${at:-ok}
rm -rf $S/$name; mkdir -p $S/$name/jobs; cd $S/$name
env -u RINGMERGE_OUTCOME_LOG RINGMERGE_MODE=native nice $D run --db db-local --out dump-local.txt "$@" >/dev/null 2>&1
timeout_flag=(); [ "$at" = none-running ] && timeout_flag=(--remote-timeout 1)
env -u RINGMERGE_OUTCOME_LOG RINGMERGE_MODE=native nice $D run --db db-remote --out dump-remote.txt --expect expect.txt "$@" --remote jobs "${timeout_flag[@]}" >stdout.txt 2>stderr.txt &
primary=$!
if [ "$at" != none-running ]; then
  while kill -0 $primary 2>/dev/null; do
    for j in jobs/*/; do
      j=${j%/}; case $j in *.tmp) continue;; esac
      [ -e $j/claim ] || [ -e $j/dead ] || [ ! -e $j/input ] && continue
      ka=(); [ -n "$at" ] && ka=(--kill-at $at)
      RINGMERGE_MODE=native $D worker --job $PWD/$j "${ka[@]}" >$j/worker.txt 2>&1 &
    done
    sleep 0.05
  done
fi
wait $primary; echo "primary ($name): exit $?"
echo "primary LOG fallback (Wait): $(grep -c 'fallback to local by API (Wait)' db-remote/LOG); Received remote result: $(grep -c 'Received remote compaction result' db-remote/LOG)"
RINGMERGE_MODE=native $D verify --db db-remote --expect expect.txt "$@"; echo "verify: exit $?"
cmp -s dump-local.txt dump-remote.txt && echo "dump == local (byte)" || echo "dump != local"
echo "jobs=$(ls -d jobs/*/ | wc -l) dead=$(ls jobs/*/dead 2>/dev/null | wc -l) installed=$(ls jobs/*/installed 2>/dev/null | wc -l) accelerated_in_workers=$(cat jobs/*/out/LOG 2>/dev/null | grep -c 'ringmerge: accelerated')"
echo "dead reasons: $(cat jobs/*/dead 2>/dev/null | sort | uniq -c | tr '\n' ' ')"
