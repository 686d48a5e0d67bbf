#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): installs what it needs, builds the patched
# RocksDB 10.1.3 with ringmerge (cached outside the clone), then runs formatting and lint checks,
# the Rust unit tests and the differential tests against real RocksDB, real io_uring, real files.
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

step "summary"
echo "cargo tests and fuzz smoke run done"
echo "${passed} passed, ${failed} failed"
