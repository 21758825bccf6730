#!/usr/bin/env bash
# Benchmark of `deepops-ctr import`: a cold import of the >= 2 GB lab image
# beside the standalone cost of each piece on the same data, measured in the
# same run (these machines are noisy, so results are ratios):
#   download   all blobs over loopback, 4 at a time, to disk (curl)
#   sha256     of the compressed blobs (openssl)
#   gunzip     every layer, sequentially and 2 at a time (pigz -d, one thread each)
#   squashfs   the merged tree on disk into a squashfs (mksquashfs, zstd level 1,
#              our default), i.e. compression with nothing else around it
#   old way    Enroot's pipeline: extract every layer to disk (umoci unpack),
#              then mksquashfs (-comp lzo -noD, Enroot's default), plus the
#              extraction Enroot does before a first start (unsquashfs)
# Prints a table: each time, and the import over the slowest piece.
#
# Usage (root): bench/import.sh [IMAGE]    IMAGE: large (default), debian-openmpi, ...
# Env: RUNS (imports to time, default 3), BUILD_DIR (default ./build).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
IMAGE=${1:-large}
RUNS=${RUNS:-3}
BUILD=${BUILD_DIR:-$REPO/build}
CTR=$BUILD/runtime/deepops-ctr
[[ $(id -u) -eq 0 ]] || { echo "bench: run as root (it starts a lab registry)" >&2; exit 1; }

packaging/install-deps.sh >/dev/null
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" --target deepops-ctr >/dev/null
tests/images/build.sh "$IMAGE"

work=$(mktemp -d /var/tmp/deepops-bench.XXXXXX)
cleanup() { tests/lab/lab down --name bench >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
tests/lab/lab up --name bench --nodes 1 --ports 18000 --no-images --no-apt >/dev/null
# shellcheck disable=SC1091
source /var/lib/deepops-lab/bench/env
unset DEEPOPS_LAB # the bench's own processes are not lab stragglers
REG=$DEEPOPS_LAB_REGISTRY
skopeo copy -q --dest-tls-verify=false --preserve-digests \
  "oci:/var/cache/deepops-lab/images/$IMAGE:latest" "docker://$REG/deepops/$IMAGE:latest"

declare -A T
now() { date +%s.%N; }
timed() { # NAME COMMAND...: wall seconds into T[NAME]
  local name=$1 t0
  shift
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  t0=$(now)
  "$@"
  T[$name]=$(echo "$(now) - $t0" | bc)
}

manifest=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/deepops/$IMAGE/manifests/latest")
mapfile -t blobs < <(jq -r '.layers[].digest' <<<"$manifest")
compressed=$(jq '[.layers[].size] | add' <<<"$manifest")

mkdir -p "$work/blobs"
download() {
  printf '%s\n' "${blobs[@]}" | xargs -P 4 -I{} curl -fsS -o "$work/blobs/{}" "http://$REG/v2/deepops/$IMAGE/blobs/{}"
}
timed download download
timed sha256 bash -c "cat '$work'/blobs/* >/dev/null; openssl dgst -sha256 '$work'/blobs/* >/dev/null"
timed gunzip_seq bash -c "for b in '$work'/blobs/*; do pigz -d -p 1 -c \"\$b\" >/dev/null; done"
timed gunzip_par2 bash -c "ls '$work'/blobs/* | xargs -P 2 -I{} sh -c 'pigz -d -p 1 -c {} >/dev/null'"
uncompressed=$(for b in "$work"/blobs/*; do pigz -d -c "$b" | wc -c; done | paste -sd+ | bc)

skopeo copy -q --src-tls-verify=false "docker://$REG/deepops/$IMAGE:latest" "oci:$work/oci:x"
timed extract umoci unpack --image "$work/oci:x" "$work/bundle" >/dev/null
timed squashfs mksquashfs "$work/bundle/rootfs" "$work/zstd.sqsh" -comp zstd -Xcompression-level 1 -processors "$(nproc)" -quiet -no-progress
timed mksquashfs_lzo mksquashfs "$work/bundle/rootfs" "$work/lzo.sqsh" -comp lzo -noD -processors "$(nproc)" -quiet -no-progress
timed create unsquashfs -q -d "$work/created" "$work/lzo.sqsh" >/dev/null
rm -rf "$work/bundle" "$work/created" "$work/oci" "$work/blobs" "$work"/*.sqsh

imports=() rss=()
for _ in $(seq 1 "$RUNS"); do
  rm -rf "$work/cache"
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f '%e %M' -o "$work/time" env DEEPOPS_CACHE_PATH="$work/cache" \
    "$CTR" import -q --allow-http "$REG" "$REG/deepops/$IMAGE" >/dev/null
  read -r secs kb <"$work/time"
  imports+=("$secs")
  rss+=("$kb")
done
sorted=$(printf '%s\n' "${imports[@]}" | sort -n)
imp_min=$(head -n1 <<<"$sorted")
imp_med=$(sed -n "$(((RUNS + 1) / 2))p" <<<"$sorted")
rss_max=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n1)
image_size=$(du -b "$work"/cache/images/*.sqsh | cut -f1)

slowest=0 slowest_name=
for piece in download sha256 gunzip_par2 squashfs; do
  if (($(echo "${T[$piece]} > $slowest" | bc))); then slowest=${T[$piece]} slowest_name=$piece; fi
done
old_way=$(echo "${T[extract]} + ${T[mksquashfs_lzo]}" | bc)
row() { printf '%-44s %9.2f s %8.2fx\n' "$1" "$2" "$(echo "$2 / $slowest" | bc -l)"; }

printf '\nImage %s: %d layers, %s MB compressed, %s MB uncompressed; our squashfs %s MB\n' "$IMAGE" \
  "${#blobs[@]}" "$((compressed / 1000000))" "$((uncompressed / 1000000))" "$((image_size / 1000000))"
printf 'Machine: %s cores; times are wall clock, page cache dropped before each step\n\n' "$(nproc)"
printf '%-44s %11s %9s\n' "step" "time" "/slowest"
row "piece: download blobs (4 parallel)" "${T[download]}"
row "piece: sha256 of blobs (openssl)" "${T[sha256]}"
row "piece: gunzip layers, one after another" "${T[gunzip_seq]}"
row "piece: gunzip layers, 2 at a time" "${T[gunzip_par2]}"
row "piece: mksquashfs of merged tree (zstd -1)" "${T[squashfs]}"
row "old way: extract all layers (umoci unpack)" "${T[extract]}"
row "old way: mksquashfs -comp lzo -noD" "${T[mksquashfs_lzo]}"
row "old way: import total (extract + squash)" "$old_way"
row "old way: + create (unsquashfs) before start" "$(echo "$old_way + ${T[create]}" | bc)"
row "deepops-ctr import, cold (min of $RUNS)" "$imp_min"
row "deepops-ctr import, cold (median of $RUNS)" "$imp_med"
printf '\nslowest piece: %s (%.2f s). import median / slowest piece: %.2fx (target <= 1.5x)\n' \
  "$slowest_name" "$slowest" "$(echo "$imp_med / $slowest" | bc -l)"
printf 'old way / import median: %.2fx faster; old way + create / import median: %.2fx\n' \
  "$(echo "$old_way / $imp_med" | bc -l)" "$(echo "($old_way + ${T[create]}) / $imp_med" | bc -l)"
printf 'peak RSS of the import: %d MiB (target <= 256 MiB)\n' "$((rss_max / 1024))"
