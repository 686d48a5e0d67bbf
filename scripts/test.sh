#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): installs what it needs, builds the patched
# RocksDB 10.1.3 with ringmerge (cached outside the clone), then runs formatting and lint checks,
# the Rust unit tests and the differential tests against real RocksDB, real io_uring, real files,
# then RocksDB's own compaction gtest suites and a CI-sized db_crashtest.py run with ringmerge on
# (built from the same patched tree in Debug; cold ~15 min more on 2 cores, run ~2 + ~6 min).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

step() { printf '\n=== %s ===\n' "$*"; }

step "system packages"
scripts/install-deps.sh
step "patch applies to pristine RocksDB 10.1.3"
pristine=$(scripts/fetch-rocksdb.sh)
for p in rocksdb-patch/*.patch; do
  patch -p1 --dry-run -s -d "$pristine" <"$p" >/dev/null
done
step "build patched RocksDB + ringmerge"
scripts/build-rocksdb.sh
step "cargo fmt --check"
cargo fmt --check
step "cargo clippy -- -D warnings"
cargo clippy --release --all-targets --quiet -- -D warnings
step "cargo test"
# --lib --tests: the crate has no doc tests, whose empty "0 passed" summary would close the run.
log=$(mktemp)
cargo test --release --lib --tests -- --test-threads=2 2>&1 | tee "$log"
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
rm -f "$log"
step "fuzz the block decoders (short run; scripts/fuzz.sh N for a long one)"
scripts/fuzz.sh 15

step "RocksDB gtest suites with ringmerge on (scripts/rocksdb-suites.sh)"
suites_rc=0
scripts/rocksdb-suites.sh --modes native,bpf || suites_rc=$?
step "db_crashtest.py blackbox + whitebox, CI size (scripts/crashtest.sh --minutes N for more)"
crash_rc=0
scripts/crashtest.sh --minutes 6 --modes native,bpf || crash_rc=$?

step "summary"
echo "cargo tests and fuzz smoke run done"
python3 - >target/suites/ci-counts <<'PY'
import json, sys
sys.stdout = sys.stderr  # the report goes to the log; the counts to ci-counts
s = json.load(open("target/suites/results.json"))
print("RocksDB suites: %d passed, %d failed (+%d known, by design), %d crashed/timed out; "
      "subcompactions accelerated %d, fallback %d" % (
          sum(r["passed"] for r in s), sum(len(r["failed"]) for r in s),
          sum(len(r["known_failures"]) for r in s),
          sum(len(r["crashed"]) + len(r["timed_out"]) for r in s),
          sum(r["accelerated_subcompactions"] for r in s),
          sum(r["fallback_subcompactions"] for r in s)))
c = json.load(open("target/crashtest/results.json"))
print("crash test: " + "; ".join("%s %.1f min exit %d, %d verification failures, accelerated %d, "
      "fallback %d" % (r["kind"], r["seconds"] / 60, r["exit"], r["verification_failures"],
      r["accelerated_subcompactions"], r["fallback_subcompactions"]) for r in c))
sys.stdout = sys.__stdout__
print(sum(r["passed"] for r in s) + sum(r["exit"] == 0 for r in c),
      sum(len(r["failed"]) + len(r["crashed"]) + len(r["timed_out"]) + len(r["not_run"])
          for r in s) + sum(r["exit"] != 0 for r in c))
PY
read -r sp sf <target/suites/ci-counts
echo "(totals: cargo tests, RocksDB gtests, crash test runs)"
echo "$((passed + sp)) passed, $((failed + sf)) failed"
[ "$suites_rc" = 0 ] && [ "$crash_rc" = 0 ]
