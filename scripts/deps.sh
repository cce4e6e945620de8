#!/usr/bin/env bash
# Checks that the Debian packages Ember needs are installed; installs the
# missing ones with apt-get when run as root, and otherwise says exactly
# what is missing. Usage: scripts/deps.sh build|test|bench
set -euo pipefail
need=(cmake ninja-build g++ clang llvm libgtest-dev libbpf-dev libzydis-dev systemtap-sdt-dev)
case "${1:-build}" in
  build) ;;
  test) need+=(libclang-rt-14-dev libdpdk-dev pkg-config libbenchmark-dev) ;;
  bench) need+=(libdpdk-dev pkg-config libbenchmark-dev) ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -eq 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "deps: installed ${missing[*]}"
else
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
