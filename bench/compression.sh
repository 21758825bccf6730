#!/usr/bin/env bash
# Chooses deepops-ctr's default squashfs compression by measurement: imports
# one image (an OCI layout, so the network is out of the picture) with each
# setting, and reports the import time, the image size, and the time to read
# every file back through squashfuse (what a container does), each read with
# the page cache dropped first.
#
# Usage (root): bench/compression.sh [IMAGE]   IMAGE: large (default), debian-openmpi, ...
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${1:-large}
BUILD=${BUILD_DIR:-$PWD/build}
CTR=$BUILD/runtime/deepops-ctr
[[ $(id -u) -eq 0 ]] || { echo "bench: run as root (drops caches, mounts)" >&2; exit 1; }
packaging/install-deps.sh >/dev/null
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" --target deepops-ctr >/dev/null
tests/images/build.sh "$IMAGE"
LAYOUT=${DEEPOPS_IMAGE_CACHE:-/var/cache/deepops-lab/images}/$IMAGE

work=$(mktemp -d /var/tmp/deepops-compression.XXXXXX)
cleanup() {
  if mountpoint -q "$work/mnt"; then umount "$work/mnt"; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/mnt"

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
seconds() { local t0=$1; echo "$(date +%s.%N) - $t0" | bc; }

printf '%-10s %10s %10s %12s\n' "setting" "import" "size" "read back"
for setting in zstd:1 zstd:3 zstd:6 lz4:0 gzip:0 none:0; do
  comp=${setting%:*} level=${setting#*:}
  rm -rf "$work/cache"
  drop_caches
  t0=$(date +%s.%N)
  sqsh=$(DEEPOPS_CACHE_PATH=$work/cache "$CTR" import -q --compression "$comp" --level "$level" "oci:$LAYOUT:latest")
  import=$(seconds "$t0")
  size=$(($(stat -c %s "$sqsh") / 1000000))
  drop_caches
  squashfuse_ll "$sqsh" "$work/mnt"
  t0=$(date +%s.%N)
  tar -C "$work/mnt" -cf - . | cat >/dev/null
  read_back=$(seconds "$t0")
  umount "$work/mnt"
  printf '%-10s %8.2f s %7d MB %10.2f s\n' "$setting" "$import" "$size" "$read_back"
done
