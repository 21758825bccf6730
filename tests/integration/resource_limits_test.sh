#!/usr/bin/env bash
# `deepops-ctr start` and `create` against exhausted resources, as the lab's
# unprivileged user, with the runtime folder (RUNTIME_PATH) and the data
# folder (DATA_PATH) each on a small tmpfs of theirs:
#  - a runtime folder out of inodes: start fails naming the folder;
#  - a runtime folder out of space: start still runs (it only ever holds an
#    empty folder there);
#  - a data folder too small for create, or out of inodes: create fails
#    naming the problem, and no container or half-made folder is left;
#  - a named container whose writes fill its data folder (bytes, then
#    inodes): the command sees "No space left on device", the container
#    survives it and frees the space again;
#  - a tmpfs mount inside the container, filled: the same inside.
# After each: no process of the test left, no mount left under its folders,
# the runtime folder empty.
#
# Usage: resource_limits_test.sh DEEPOPS_CTR  (DEEPOPS_TEST_LAB: another lab than main)
# shellcheck disable=SC2016 # the single-quoted commands run in the container
set -euo pipefail
CTR=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
LAB=$HERE/../lab/lab
LAB_NAME=${DEEPOPS_TEST_LAB:-main}
# shellcheck disable=SC1090,SC1091
source "/var/lib/deepops-lab/$LAB_NAME/env"
USER_NAME=$DEEPOPS_LAB_USER
USER_UID=$(id -u "$USER_NAME")
USER_GID=$(id -g "$USER_NAME")
work=$(mktemp -d /tmp/resource-test.XXXXXX)
chmod 0755 "$work"
# Marks every process this test starts (the user's environment is inherited
# by deepops-ctr, its FUSE server and the container), so that leftovers can
# be told from other tests' processes of the same user.
MARK="DEEPOPS_RESOURCE_TEST=$work"

small_mounts() { grep -F " $work/" /proc/self/mountinfo | cut -d' ' -f5 || true; }
marked_procs() {
  local p
  for p in /proc/[0-9]*; do
    if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "$MARK"; then echo "${p#/proc/}"; fi
  done
}
cleanup() {
  local p m
  for p in $(marked_procs); do kill -KILL "$p" 2>/dev/null || true; done
  for m in $(small_mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/cache" "$work/runtime" "$work/data" "$work/conf"
chmod 0700 "$work/runtime"
chown "$USER_NAME:" "$work/cache" "$work/runtime" "$work/data"

# shellcheck source=tests/support/checks.sh
source "$(dirname "$0")/../support/checks.sh"

# mount_small NAME OPTIONS: a tmpfs of the user's, mode 0700, at $work/NAME.
mount_small() {
  mkdir -p "$work/$1"
  mount -t tmpfs -o "$2,uid=$USER_UID,gid=$USER_GID,mode=0700" tmpfs "$work/$1"
}
unmount_small() { if mountpoint -q "$work/$1"; then umount "$work/$1"; fi; }

# as_user [VAR=value...] ARGS...: deepops-ctr as the test user, with the
# test's cache and settings, and RUNTIME/DATA folders from RT and DATA.
RT=$work/runtime
DATA=$work/data
as_user() {
  local vars=()
  while [[ $# -gt 0 && $1 == *=* && $1 != -* ]]; do
    vars+=("$1")
    shift
  done
  "$LAB" run --name "$LAB_NAME" -- env "$MARK" DEEPOPS_CACHE_PATH="$work/cache" DEEPOPS_RUNTIME_PATH="$RT" \
    DEEPOPS_DATA_PATH="$DATA" DEEPOPS_SYSCONF_DIR="$work/conf" DEEPOPS_IMAGE_MOUNT_LINGER=0 "${vars[@]}" "$CTR" "$@"
}

# Each container mounts its own image (IMAGE_MOUNT_LINGER 0): an image
# server would rightly outlive the case that started it.
# run_case NAME WANT_RC PATTERN ARGS...: deepops-ctr ARGS as the user must
# exit WANT_RC ("nonzero" for any failure) with PATTERN in its stderr, then
# leave no process, no mount but the test's own tmpfs, and an empty runtime
# folder.
run_case() {
  local name=$1 want=$2 pattern=$3 rc=0
  shift 3
  local mounts_before
  mounts_before=$(small_mounts | sort)
  as_user "$@" >"$work/stdout" 2>"$work/stderr" || rc=$?
  local procs mounts_after left
  procs=$(marked_procs | tr '\n' ' ')
  mounts_after=$(small_mounts | sort)
  left=$(find "$RT" -mindepth 1 -maxdepth 1 -not -name filler -printf "%f ")
  if [[ $want == nonzero && $rc -eq 0 || $want != nonzero && $rc -ne $want ]]; then
    fail "$name: exit $rc, want $want: $(head -c 400 "$work/stderr")"
  elif ! grep -q -- "$pattern" "$work/stderr" "$work/stdout"; then
    fail "$name: output lacks '$pattern': $(head -c 400 "$work/stderr")"
  elif [[ -n $procs ]]; then
    fail "$name: processes left: $procs"
  elif [[ $mounts_before != "$mounts_after" ]]; then
    fail "$name: mounts changed: '$mounts_before' -> '$mounts_after'"
  elif [[ -n $left ]]; then
    fail "$name: the runtime folder holds: $left"
  else
    pass "$name: $(grep -m1 -- "$pattern" "$work/stderr" "$work/stdout" | head -c 160)"
    return 0
  fi
  return 1
}

IMG=$DEEPOPS_LAB_REGISTRY/deepops/tiny
as_user import -q --allow-http "$DEEPOPS_LAB_REGISTRY" "$IMG" >/dev/null

# ---- the runtime folder
# Out of inodes: the tmpfs root is the only inode, so no start folder fits.
mount_small rt "size=1m,nr_inodes=1"
RT=$work/rt
run_case "runtime folder out of inodes: start fails naming it" 125 "cannot create a folder in $RT: No space left" \
  start "$IMG" true || true
unmount_small rt
# Out of space: the folder only ever holds an empty folder (the container's
# scratch is a tmpfs of its own), so a full one does not stop a start.
mount_small rt "size=64k"
head -c 65536 /dev/zero >"$work/rt/filler" 2>/dev/null || true
chown "$USER_NAME:" "$work/rt/filler"
if [[ $(df --output=avail -k "$work/rt" | tail -1 | tr -d ' ') -ne 0 ]]; then fail "could not fill $work/rt"; fi
run_case "runtime folder out of space: start still runs" 0 "ran-fine" \
  start "$IMG" sh -c 'echo ran-fine' || true
rm -f "$work/rt/filler"
unmount_small rt
RT=$work/runtime

# ---- the data folder: create
# Too small for the image, which create must copy (another filesystem than the cache).
mount_small data "size=256k"
DATA=$work/data
run_case "data folder too small: create fails with ENOSPC" nonzero "^deepops-ctr: error: .*No space left on device" \
  create --name big "$IMG" || true
left=$(find "$DATA" -mindepth 1 -not -path "$DATA/containers" | head -5 | tr '\n' ' ')
if [[ -z $left ]]; then pass "data folder too small: nothing left in it"; else
  fail "data folder too small: a failed create left: $left"
fi
if [[ $(as_user list --containers --json) == "[]" ]]; then pass "data folder too small: no container listed"; else
  fail "data folder too small: listed: $(as_user list --containers --json)"
fi
unmount_small data
# Out of inodes.
mount_small data "size=16m,nr_inodes=4"
run_case "data folder out of inodes: create fails with ENOSPC" nonzero "^deepops-ctr: error: .*No space left on device" \
  create --name few "$IMG" || true
if grep -q "free inodes in" "$work/stderr"; then pass "data folder out of inodes: the hint says inodes"; else
  fail "data folder out of inodes: the hint does not say inodes: $(cat "$work/stderr")"
fi
left=$(find "$DATA" -mindepth 1 -not -path "$DATA/containers" | head -5 | tr '\n' ' ')
if [[ -z $left ]]; then pass "data folder out of inodes: nothing left in it"; else
  fail "data folder out of inodes: a failed create left: $left"
fi
unmount_small data

# ---- a named container filling its data folder
# 8 MiB: room for the image (about 1 MiB) and a little more.
mount_small data "size=8m,nr_inodes=200"
run_case "named container: create on a small data folder" 0 "dev" create --name dev "$IMG" || true
run_case "named container: a big write fails with ENOSPC inside" nonzero "No space left on device" \
  start dev sh -c 'dd if=/dev/zero of=/big bs=1M count=16' || true
run_case "named container: after ENOSPC it still starts and frees the space" 0 "freed" \
  start dev sh -c 'rm -f /big && echo freed' || true
run_case "named container: many files fail with ENOSPC (inodes) inside" nonzero "No space left on device" \
  start dev sh -c 'i=0; while [ $i -lt 1000 ]; do touch /f$i || exit 1; i=$((i+1)); done' || true
# The overlay itself needs an inode in the data folder to mount: with none
# left the start fails (saying so, leaving nothing behind) until one is freed.
run_case "named container: out of inodes, a start fails with ENOSPC" nonzero "No space left on device" \
  start dev true || true
rm -f "$DATA/containers/dev/upper/f"[0-9]
run_case "named container: with ten inodes freed it starts and frees the rest" 0 "freed" \
  start dev sh -c 'rm -f /f* && echo freed' || true
run_case "named container: remove" 0 "" remove dev || true
left=$(find "$DATA/containers" -mindepth 1 | head -5 | tr '\n' ' ')
if [[ -z $left ]]; then pass "named container: nothing left after remove"; else fail "left after remove: $left"; fi
unmount_small data
DATA=$work/data

# ---- a small tmpfs inside the container, filled
run_case "a full tmpfs mount inside: ENOSPC inside" nonzero "No space left on device" \
  start --mount "tmpfs /small tmpfs size=1m,x-create=dir" "$IMG" sh -c 'dd if=/dev/zero of=/small/big bs=1M count=4' || true
run_case "--rw root: a write is no error" 0 "wrote" \
  start --rw "$IMG" sh -c 'dd if=/dev/zero of=/big bs=1M count=4 2>/dev/null && echo wrote' || true

echo "resource limits: $failures failed"
[[ $failures -eq 0 ]]
