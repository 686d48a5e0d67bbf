#!/usr/bin/env bash
# Regenerates rocksdb-patch/10.1.3/0001-ringmerge-compaction-input.patch from an edited RocksDB tree:
#   scripts/make-patch.sh EDITED_TREE [extra/file ...]
# It diffs the files the patch already touches (plus any named) against the pristine 10.1.3
# tree, with stable headers so the patch's hash (the build cache key) changes only with content.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
edited=$1; shift
patch_file="$here/rocksdb-patch/10.1.3/0001-ringmerge-compaction-input.patch"
pristine=$("$here/scripts/fetch-rocksdb.sh")
files=$( (grep '^diff --git a/' "$patch_file" | awk '{print substr($3,3)}'; printf '%s\n' "$@") | sort -u)
out=$(mktemp)
for f in $files; do
  diff -u --label "a/$f" --label "b/$f" "$pristine/$f" "$edited/$f" | sed "1i diff --git a/$f b/$f" >>"$out" || true
done
mv "$out" "$patch_file"
echo "wrote $patch_file ($(grep -c '^diff --git' "$patch_file") files)"
