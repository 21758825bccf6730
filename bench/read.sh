#!/usr/bin/env bash
# Benchmark of reading an image's files: K readers at once, each reading
# every file of a folder of the image (many small files and a few large
# ones: a stand-in for a Python package import and for shared libraries),
# inside `deepops-ctr start`, beside the same folder unpacked on the host,
# which is what Enroot's `create` gives (the physical limit: the kernel's
# own filesystem and page cache), and beside the stock squashfuse_ll
# (one-threaded) on the same .sqsh (the old way of a FUSE runtime). Also
# `python3 -c 'import numpy, ...'` (PY_IMPORT) from the image, K at once.
#   cold   page cache dropped before the run (echo 3 > drop_caches)
#   warm   the run again, page cache kept; every run is a new start (a new
#          mount), as the next step of a job is
# Every cell runs RUNS times, rows interleaved (cold, then warm, for host,
# deepops-ctr and squashfuse_ll in turn), median of each. Prints a table of
# seconds and ratios over the host, and a verdict against the target
# (bench/README.md, Targets: container <= 1.25x the host at every K up to
# nproc, cold and warm). Never fails on a time.
#
# Usage (root): bench/read.sh [DEEPOPS_CTR]
#   DEEPOPS_CTR  the binary to measure (default: $BUILD_DIR/runtime/deepops-ctr,
#                BUILD_DIR default ./build); copied, with deepops-ctr-import
#                from beside it. Not built here.
# Env: IMAGE (default large: tests/images/build-large.sh; any image of
#      tests/images/ with /usr and sh), PY_IMPORT (the modules the python rows
#      import, default numpy and five large stdlib packages), FOLDER (read by each reader, default
#      /usr), READERS (default "1 2 NPROC 8", 8 only where nproc >= 8),
#      RUNS (default 3), PYTHON (default 1: the import rows, where the image
#      has python3 with numpy and scipy), OLD_CTR (another deepops-ctr, e.g.
#      a build of an earlier commit: a column of its own, same runs).
# Starts its own lab `bread` (1 node, loopback, ports 18300..18330) and
# always tears it down.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CTR_SRC=${1:-${DEEPOPS_CTR:-${BUILD_DIR:-$REPO/build}/runtime/deepops-ctr}}
IMAGE=${IMAGE:-large}
FOLDER=${FOLDER:-/usr}
RUNS=${RUNS:-3}
PYTHON=${PYTHON:-1}
PY_IMPORT=${PY_IMPORT:-numpy, asyncio, email.mime.multipart, http.client, unittest, xml.dom.minidom}
LAB=bread
PORTS=18300
TARGET=1.25

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
say() { printf 'bench: %s\n' "$*" >&2; }

[[ $(id -u) -eq 0 ]] || die "run as root (it starts a lab and drops the page cache)"
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 && $RUNS -le 100 ]] || die "RUNS must be an integer from 1 to 100"
[[ $PY_IMPORT =~ ^[A-Za-z0-9_.,\ ]+$ ]] || die "PY_IMPORT must be a list of modules, e.g. 'numpy, json'"
[[ $FOLDER == /* && $FOLDER != *..* && $FOLDER =~ ^[A-Za-z0-9/._-]+$ ]] || die "FOLDER must be an absolute path, e.g. /usr"
cores=$(nproc)
if [[ -n ${READERS:-} ]]; then
  read -r -a readers <<<"$READERS"
else
  readers=(1 2 "$cores")
  ((cores >= 8)) && readers+=(8)
fi
mapfile -t readers < <(printf '%s\n' "${readers[@]}" | sort -nu)
for k in "${readers[@]}"; do
  [[ $k =~ ^[0-9]+$ && $k -ge 1 && $k -le 64 ]] || die "READERS: '$k' is not a count from 1 to 64"
done
for tool in squashfuse_ll unsquashfs unshare skopeo bc; do
  command -v "$tool" >/dev/null || die "$tool is missing (packaging/install-deps.sh)"
done
[[ -x $CTR_SRC ]] || die "no deepops-ctr at $CTR_SRC; build it: cmake --build build --target deepops-ctr, or pass its path"

tests/images/build.sh "$IMAGE"

work=
cleanup() {
  if [[ -n $work ]]; then
    grep -F " $work/" /proc/self/mountinfo | awk '{ print $5 }' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  fi
  tests/lab/lab down --name "$LAB" >/dev/null 2>&1 || true
  if [[ -n $work ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
say "starting lab $LAB"
tests/lab/lab up --name "$LAB" --mode loopback --nodes 1 --ports "$PORTS" --no-images --no-apt >/dev/null
# shellcheck disable=SC1090
source "${DEEPOPS_LAB_ROOT:-/var/lib/deepops-lab}/$LAB/env"
REG=$DEEPOPS_LAB_REGISTRY
LAB_USER=$DEEPOPS_LAB_USER
skopeo copy -q --dest-tls-verify=false --preserve-digests \
  "oci:${DEEPOPS_IMAGE_CACHE:-/var/cache/deepops-lab/images}/$IMAGE:latest" "docker://$REG/deepops/$IMAGE:latest"

# Everything the lab user touches lives in one private folder it owns.
work=$(mktemp -d /var/tmp/deepops-bench-read.XXXXXX)
CTR=$work/deepops-ctr
cp "$CTR_SRC" "$CTR"
ways=(host ctr private sqfuse)
if [[ -n ${OLD_CTR:-} ]]; then
  [[ -x $OLD_CTR ]] || die "OLD_CTR: no binary at $OLD_CTR"
  mkdir -p "$work/old"
  cp "$OLD_CTR" "$work/old/deepops-ctr"
  if [[ -x $(dirname "$OLD_CTR")/deepops-ctr-import ]]; then
    cp "$(dirname "$OLD_CTR")/deepops-ctr-import" "$work/old/deepops-ctr-import"
  fi
  ways+=(old)
fi
if [[ -x $(dirname "$CTR_SRC")/deepops-ctr-import ]]; then
  cp "$(dirname "$CTR_SRC")/deepops-ctr-import" "$work/deepops-ctr-import"
fi
mkdir -p "$work/mnt" "$work/times"
# The reader: K copies at once of "read every file under DIR", each its own
# find | xargs cat; the caller times the whole.
cat >"$work/readers.sh" <<'EOF'
#!/bin/sh
# readers.sh K DIR: K readers at once, each reading every file under DIR;
# fails if one does.
k=$1 dir=$2 i=0 pids=
while [ "$i" -lt "$k" ]; do
  (find "$dir" -type f -print0 | xargs -0 -n 256 cat >/dev/null) &
  pids="$pids $!"
  i=$((i + 1))
done
for p in $pids; do wait "$p" || exit 1; done
EOF
# The pythons are started by a python, not by sh: sh gives background jobs
# /dev/null, which an unpacked tree has no node for.
cat >"$work/imports.sh" <<EOF
#!/bin/sh
# imports.sh K: K pythons at once, each importing $PY_IMPORT; fails if one does.
exec python3 -c 'import subprocess, sys
k = int(sys.argv[1])
ps = [subprocess.Popen([sys.executable, "-c", "import $PY_IMPORT"]) for _ in range(k)]
sys.exit(max(p.wait() for p in ps))' "\$1"
EOF
chmod 0755 "$work/readers.sh" "$work/imports.sh"
chown -R "$LAB_USER:" "$work"
chmod 0700 "$work"

as_user() { tests/lab/lab run --name "$LAB" -- env DEEPOPS_CACHE_PATH="$work/cache" "$@"; }

say "importing $IMAGE as $LAB_USER"
SQSH=$(as_user "$CTR" import -q --allow-http "$REG" "$REG/deepops/$IMAGE") ||
  die "deepops-ctr import of $REG/deepops/$IMAGE failed (exit $?)"
[[ -f $SQSH ]] || die "import printed '$SQSH', not an image file"
say "unpacking it for the host rows (unsquashfs, as Enroot's create)"
as_user unshare -Ur unsquashfs -q -no-progress -d "$work/tree" "$SQSH" >/dev/null
[[ -d $work/tree$FOLDER ]] || die "the image has no $FOLDER"
files=$(find "$work/tree$FOLDER" -type f | wc -l)
bytes=$(du -sb --apparent-size "$work/tree$FOLDER" | cut -f1)

# The command of each way, as the lab user; WHAT is "read" or "python".
ctr_cmd() { # WHAT K
  local run="/bench/readers.sh $2 $FOLDER"
  [[ $1 == python ]] && run="/bench/imports.sh $2"
  echo "$CTR start -m $work:/bench $REG/deepops/$IMAGE $run"
}
old_cmd() { ctr_cmd "$@" | sed "s|^$CTR |$work/old/deepops-ctr |"; }
private_cmd() { echo "DEEPOPS_IMAGE_MOUNT_LINGER=0 $(ctr_cmd "$@")"; }
host_cmd() {
  if [[ $1 == python ]]; then
    echo "unshare -Ur chroot $work/tree /bin/sh -s $2 <$work/imports.sh"
  else
    echo "$work/readers.sh $2 $work/tree$FOLDER"
  fi
}
sqfuse_cmd() {
  local run="$work/readers.sh $2 $work/mnt$FOLDER"
  [[ $1 == python ]] && run="chroot $work/mnt /bin/sh -s $2 <$work/imports.sh"
  echo "unshare -Urm sh -c 'squashfuse_ll $SQSH $work/mnt && $run; umount $work/mnt'"
}

has_python=0
if [[ $PYTHON == 1 ]] && as_user bash -c "$(host_cmd python 1)" 2>/dev/null; then
  has_python=1
fi

# measure KEY COMMAND STATE: one timed run (seconds, appended to times/KEY),
# after dropping the page cache when STATE is cold.
measure() {
  local key=$1 cmd=$2 state=$3 t0 t1
  if [[ $state == cold ]]; then
    sync
    echo 3 >/proc/sys/vm/drop_caches
  fi
  t0=$EPOCHREALTIME
  as_user bash -c "$cmd" >/dev/null 2>"$work/times/$key.err" ||
    die "failed: $cmd: $(tail -5 "$work/times/$key.err")"
  t1=$EPOCHREALTIME
  echo "scale=3; (${t1/./} - ${t0/./}) / 1000000" | bc >>"$work/times/$key"
}

whats=(read)
((has_python)) && whats+=(python)
[[ $PYTHON == 1 ]] && ((!has_python)) && say "no python rows: python3 -c 'import $PY_IMPORT' fails in the image"

for what in "${whats[@]}"; do
  for k in "${readers[@]}"; do
    say "measuring: $what, $k at once, $RUNS rounds"
    for ((r = 0; r < RUNS; r++)); do
      for way in "${ways[@]}"; do
        cmd=$("${way}_cmd" "$what" "$k")
        measure "$what.$k.$way.cold" "$cmd" cold
        measure "$what.$k.$way.warm" "$cmd" warm
      done
    done
  done
done

median() { sort -n "$1" | awk '{ t[NR] = $1 } END { print NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2 }'; }
ratio() { echo "scale=4; $1 / $2" | bc -l; }

# Lab-user processes left behind by the starts, polled a bounded time: an
# image's server outlives its last container by IMAGE_MOUNT_LINGER (10 s).
leftovers() {
  local f n=0
  while read -r f; do
    [[ $(stat -c %U "${f%/environ}" 2>/dev/null) == "$LAB_USER" ]] && n=$((n + 1))
  done < <(grep -lzxF "DEEPOPS_LAB=$DEEPOPS_LAB" /proc/[0-9]*/environ 2>/dev/null)
  echo "$n"
}
for _ in $(seq 1 150); do
  left=$(leftovers)
  [[ $left -eq 0 ]] && break
  sleep 0.1
done

printf '\nImage %s: %s as squashfs; %s holds %s files, %s MB.\n' "$IMAGE" \
  "$(($(stat -c %s "$SQSH") / 1000000)) MB" "$FOLDER" "$files" "$((bytes / 1000000))"
printf 'Machine: %s cores, kernel %s; %s; load average at the end: %s.\n' "$cores" "$(uname -r)" \
  "$(date -u +%Y-%m-%dT%H:%MZ)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'As %s; median of %s runs per cell, seconds of wall time for all K readers to finish.\n' "$LAB_USER" "$RUNS"
printf 'read: each reader reads every file under %s (find | xargs cat).' "$FOLDER"
((has_python)) && printf ' python: each runs python3 -c '"'"'import %s'"'"'.' "$PY_IMPORT"
printf '\nhost: the image unpacked (unsquashfs, as Enroot'"'"'s create). deepops-ctr: a new start per run, the\n'
printf 'image'"'"'s mount shared with the previous start (IMAGE_MOUNT_LINGER, default 10 s); own mount: the same with\n'
printf 'IMAGE_MOUNT_LINGER=0, a fresh mount per start.\n'
printf 'squashfuse_ll: the stock one-threaded server on the same .sqsh, in a user namespace.\n\n'
printf '%-7s %3s %-5s %8s %12s %7s %12s %7s %14s %7s' what K state host deepops-ctr "x host" "own mount" "x host" squashfuse_ll "x host"
[[ -n ${OLD_CTR:-} ]] && printf ' %12s %7s' "OLD_CTR" "x host"
printf '\n'
verdict=MET
worst=0
for what in "${whats[@]}"; do
  for k in "${readers[@]}"; do
    for state in cold warm; do
      h=$(median "$work/times/$what.$k.host.$state")
      c=$(median "$work/times/$what.$k.ctr.$state")
      s=$(median "$work/times/$what.$k.sqfuse.$state")
      rc=$(ratio "$c" "$h")
      p=$(median "$work/times/$what.$k.private.$state")
      printf '%-7s %3s %-5s %8.2f %12.2f %6.2fx %12.2f %6.2fx %14.2f %6.2fx' "$what" "$k" "$state" "$h" "$c" "$rc" \
        "$p" "$(ratio "$p" "$h")" "$s" "$(ratio "$s" "$h")"
      if [[ -n ${OLD_CTR:-} ]]; then
        o=$(median "$work/times/$what.$k.old.$state")
        printf ' %12.2f %6.2fx' "$o" "$(ratio "$o" "$h")"
      fi
      printf '\n'
      if [[ $what == read ]] && ((k <= cores)); then
        (($(echo "$rc > $TARGET" | bc -l))) && verdict=MISSED
        (($(echo "$rc > $worst" | bc -l))) && worst=$rc
      fi
    done
  done
done
printf '\nlab-user processes left after all runs: %s\n' "$left"
printf 'verdict: target %s (read, every K up to %s, cold and warm: deepops-ctr <= %sx the host; worst %.2fx)\n' \
  "$verdict" "$cores" "$TARGET" "$worst"
