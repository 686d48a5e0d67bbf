#!/usr/bin/env bash
# Prints the path of the pristine RocksDB 10.1.3 tree. The only route to the source here is the
# crates.io package rust-librocksdb-sys =0.36.0+10.1.3, whose rocksdb/ folder is byte-identical to
# upstream tag v10.1.3; `cargo fetch` puts it in cargo's registry cache without building anything.
set -euo pipefail

CACHE=${RINGMERGE_CACHE:-$HOME/.cache/ringmerge}
proj="$CACHE/fetch-rocksdb"
mkdir -p "$proj/src"
cat >"$proj/Cargo.toml" <<'EOF'
[package]
name = "fetch-rocksdb"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
rust-librocksdb-sys = { version = "=0.36.0+10.1.3", default-features = false }
EOF
[ -f "$proj/src/main.rs" ] || echo 'fn main() {}' >"$proj/src/main.rs"
cargo fetch --quiet --manifest-path "$proj/Cargo.toml" >&2
dir=$(cargo metadata --quiet --format-version 1 --manifest-path "$proj/Cargo.toml" |
  python3 -c 'import json,sys,os
m=json.load(sys.stdin)
p=[x for x in m["packages"] if x["name"]=="rust-librocksdb-sys"][0]
print(os.path.join(os.path.dirname(p["manifest_path"]),"rocksdb"))')
[ -f "$dir/db/compaction/compaction_job.cc" ] || { echo "fetch-rocksdb: no RocksDB tree at $dir" >&2; exit 1; }
echo "$dir"
