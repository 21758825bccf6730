#!/usr/bin/env bash
# The image's read path under parallel load, as the lab's unprivileged user
# on lab main, through the plugin:
#   a. 2 x nproc tasks of one step, each reading every file under /usr of
#      the Debian+OpenMPI image at once through the step's squashfs servers,
#      agree with the image itself: each file's sha256 as unsquashfs (another
#      reader of the same .sqsh) extracts it
#   b. the servers of a step are several processes (one per CPU) and none
#      outlives its step
#   c. the same for the layered test image's /data (hard links within and
#      across layers, whiteouts, an opaque folder, UTF-8 and 200-byte names,
#      a deep path), read by its own busybox as root in the container
#      (remap-root: files of any mode), against the same busybox over
#      unsquashfs's tree
#
# Usage: read_path_test.sh PLUGIN DEEPOPS_CTR
#   DEEPOPS_TEST_LAB   the lab (default main: loopback, 2 nodes, registries)
# shellcheck disable=SC2016 # the single-quoted commands run in the container
set -euo pipefail
PLUGIN=$(readlink -f "$1")
CTR=$(readlink -f "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/support/checks.sh
source "$HERE/../support/checks.sh"
# shellcheck source=tests/support/lab_test.sh
source "$HERE/../support/lab_test.sh"
lab_test_init read-path
mkdir -p "$work/out" "$work/cache"
chown -R "$USER_NAME:" "$work"
IMG=$DEEPOPS_LAB_REGISTRY/deepops/debian-openmpi
"$LAB" plugin --name "$LAB_NAME" -- "$PLUGIN" >/dev/null

# ---- the oracle: the same image, extracted by unsquashfs on the host
sqsh=$(as_user env DEEPOPS_CACHE_PATH="$work/cache" "$CTR" import -q --allow-http \
  "$DEEPOPS_LAB_REGISTRY" "$IMG" 2>"$work/import.err") || fail "import: $(cat "$work/import.err")"
unsquashfs -q -no-progress -d "$work/tree" "$sqsh" usr >/dev/null ||
  fail "unsquashfs of $sqsh failed"
(cd "$work/tree" && find usr -type f -print0 | sort -z | xargs -0 sha256sum) |
  sed 's|  usr/|  /usr/|' >"$work/expected"
files=$(wc -l <"$work/expected")
((files > 1000)) || fail "the oracle lists only $files files"

# ---- a. 2 x nproc readers at once, one step, one node
readers=$((2 * $(nproc)))
as_user srun -N1 -w n1 -n "$readers" -O --container-image="$IMG" --container-mounts="$work:$work" \
  sh -c 'find /usr -type f -print0 | sort -z | xargs -0 sha256sum >'"$work"'/out/sums.$SLURM_PROCID;
         grep -lx deepops-sqfs /proc/[0-9]*/comm | wc -l >'"$work"'/out/servers.$SLURM_PROCID' \
  >"$work/a.out" 2>&1 || fail "the readers' step failed: $(tail -5 "$work/a.out")"
agree=0
for ((r = 0; r < readers; r++)); do
  if cmp -s "$work/expected" "$work/out/sums.$r"; then
    agree=$((agree + 1))
  else
    echo "reader $r: $(diff "$work/expected" "$work/out/sums.$r" 2>&1 | head -4)" >&2
  fi
done
if ((agree == readers)); then
  pass "$readers readers at once: all $files files of /usr match unsquashfs's sha256, in every reader"
else fail "$((readers - agree)) of $readers readers read something else than the image holds"; fi

# ---- b. several servers, gone with the step
# The container sees the host's /proc: the step's own servers, as no other
# step of this user runs now. One per CPU the keeper may use, up to 8: the
# lab binds nothing (no task plugin), so the host's CPUs.
servers=$(cat "$work/out/servers.0" 2>/dev/null || echo none)
want=$(($(nproc) < 8 ? $(nproc) : 8))
if [[ $servers == "$want" ]]; then
  pass "the step's image was served by $servers processes (one per CPU, up to 8)"
else fail "servers during the step: '$servers', expected $want"; fi
# shellcheck disable=SC2317 # called through wait_until
no_servers() { ! pgrep -u "$USER_NAME" deepops-sqfs >/dev/null; }
if wait_until 100 no_servers; then pass "no squashfs server outlives its step"; else
  fail "servers left: $(pgrep -a -u "$USER_NAME" deepops-sqfs | head -3)"
fi

# ---- c. the layered image, every file of /data, 2 x nproc readers at once
LAYERED=$DEEPOPS_LAB_REGISTRY/deepops/layered
sqsh=$(as_user env DEEPOPS_CACHE_PATH="$work/cache" "$CTR" import -q --allow-http \
  "$DEEPOPS_LAB_REGISTRY" "$LAYERED" 2>"$work/import.err") || fail "import: $(cat "$work/import.err")"
# The oracle's tools: the image's own busybox, extracted with the tree, so
# both sides print alike and the host needs no busybox of its own.
unsquashfs -q -no-progress -d "$work/layered" "$sqsh" data bin/busybox >/dev/null ||
  fail "unsquashfs of $sqsh failed"
bb=$work/layered/bin/busybox
(cd "$work/layered" && "$bb" find data -type f -print0 | "$bb" xargs -0 "$bb" sha256sum) |
  LC_ALL=C sort >"$work/expected-layered"
files=$(wc -l <"$work/expected-layered")
((files > 10)) || fail "the layered oracle lists only $files files"
as_user srun -N1 -w n1 -n "$readers" -O --container-image="$LAYERED" --container-remap-root \
  --container-mounts="$work:$work" \
  /bin/busybox sh -c 'cd / && busybox find data -type f -print0 | busybox xargs -0 busybox sha256sum \
    >'"$work"'/out/layered.$SLURM_PROCID' >"$work/c.out" 2>&1 ||
  fail "the layered readers' step failed: $(tail -5 "$work/c.out")"
agree=0
for ((r = 0; r < readers; r++)); do
  if LC_ALL=C sort "$work/out/layered.$r" 2>/dev/null | cmp -s "$work/expected-layered" -; then
    agree=$((agree + 1))
  else
    echo "layered reader $r: $(LC_ALL=C sort "$work/out/layered.$r" | diff "$work/expected-layered" - 2>&1 | head -4)" >&2
  fi
done
if ((agree == readers)); then
  pass "$readers readers at once: all $files files of the layered image's /data match unsquashfs's"
else fail "$((readers - agree)) of $readers readers of the layered image read something else"; fi

echo "read_path_test (lab $LAB_NAME): $failures failure(s)"
[[ $failures -eq 0 ]]
