#!/usr/bin/env bash
# Installs the Debian 12 packages ringmerge's build, tests and benchmarks need.
# Idempotent and quiet when everything is already there (CI calls it on every run).
set -euo pipefail

PKGS=(clang-19 cmake make g++ pkg-config ccache patch
      libgflags-dev liburing-dev libelf-dev zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
      bpftool linux-perf util-linux python3)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
