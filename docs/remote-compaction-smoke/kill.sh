#!/usr/bin/env bash
# A worker killed at claim|file: the primary falls back to local and the data verifies.
set -u
D=/work/remote/target/rocksdb/bin/ringmerge_driver
S=/work/remote/target/remote-smoke
at=$1; shift
name=kill-$at
rm -rf $S/$name; mkdir -p $S/$name; cd $S/$name
env -u RINGMERGE_OUTCOME_LOG RINGMERGE_MODE=native nice $D run --db db-local --out dump-local.txt "$@" >/dev/null 2>&1; echo "local: exit $?"
env -u RINGMERGE_OUTCOME_LOG RINGMERGE_MODE=native RINGMERGE_DRIVER_KILL_AT=$at nice $D run --db db-remote --out dump-remote.txt --expect expect.txt "$@" --remote jobs --remote-spawn >stdout.txt 2>stderr.txt; echo "remote with workers killed at $at: exit $?"
echo "primary LOG 'fallback to local by API (Wait)': $(grep -c 'fallback to local by API (Wait)' db-remote/LOG); primary LOG accelerated: $(grep -c 'ringmerge: accelerated' db-remote/LOG)"
RINGMERGE_MODE=native $D verify --db db-remote --expect expect.txt "$@"; echo "verify: exit $?"
cmp -s dump-local.txt dump-remote.txt && echo "dump == local (byte)" || echo "dump != local"
echo "jobs=$(ls -d jobs/*/ | wc -l) dead=$(ls jobs/*/dead | wc -l) installed=$(ls jobs/*/installed 2>/dev/null | wc -l) results=$(ls jobs/*/result 2>/dev/null | wc -l)"
echo "dead reasons: $(cat jobs/*/dead | sort | uniq -c | tr '\n' ' ')"
echo "partial SSTs left in out/: $(ls jobs/*/out/*.sst 2>/dev/null | wc -l) ($(stat -c %s jobs/*/out/*.sst 2>/dev/null | sort -u | tr '\n' ' ')bytes)"
head -2 stderr.txt
