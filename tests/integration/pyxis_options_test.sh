#!/usr/bin/env bash
# spank_deepops.so's option checks where they must behave as Pyxis 0.24's,
# from the user's side: real srun, as the lab's unprivileged user.
#   a. boolean PYXIS_CONTAINER_* variables (WRITABLE=0 is read-only, READONLY=0
#      writable, other words ignored)
#   b. --container-readonly with --container-writable (and --X with --no-X) refused
#   c. --container-env with an empty name refused
#   d. relative --container-mounts sources, from srun's working directory
#   e. Enroot's bind flags (unbindable, propagation, noatime, ...) applied
#   f. a relative --container-workdir, from the container's /
#
# Usage: pyxis_options_test.sh PLUGIN
#   DEEPOPS_TEST_LAB   the lab (default main: loopback, 2 nodes, registries)
# shellcheck disable=SC2016 # the single-quoted commands run in the container
set -euo pipefail
PLUGIN=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/support/lab_test.sh
source "$HERE/../support/lab_test.sh"
lab_test_init pyxis-options
CONF=$ETC/conf.d/pyxis-options-test.conf
lab_test_files=("$CONF")
mkdir -p "$work/data" "$work/cache" "$work/dir/sub" "$work/bin"
echo relative-ok >"$work/dir/sub/somefile"
echo flagged >"$work/data/file"
printf '#!/bin/sh\necho ran\n' >"$work/bin/prog"
chmod 0755 "$work/bin/prog"
chown -R "$USER_NAME:" "$work"

# shellcheck source=tests/support/checks.sh
source "$HERE/../support/checks.sh"
# in_dir DIR COMMAND...: in the lab's environment, as the test user, from DIR.
in_dir() { "$LAB" run --name "$LAB_NAME" -- bash -c 'cd "$0" && exec "$@"' "$@"; }
# expect NAME WANT COMMAND...: from $work, stdout (trimmed) must equal WANT, exit 0.
expect() { expect_in "$work" "$@"; }
expect_in() {
  local dir=$1 name=$2 want=$3 got rc=0
  shift 3
  got=$(in_dir "$dir" timeout 120 "$@" 2>"$work/stderr") || rc=$?
  if [[ $rc -eq 0 && $got == "$want" ]]; then pass "$name"; else
    fail "$name: rc $rc, got '$got', want '$want' ($(head -c 400 "$work/stderr"))"
  fi
}
# expect_fail NAME PATTERN COMMAND...: must exit non-zero with PATTERN on stderr.
expect_fail() {
  local name=$1 pattern=$2 rc=0
  shift 2
  in_dir "$work" timeout 120 "$@" >"$work/stdout" 2>"$work/stderr" || rc=$?
  if [[ $rc -eq 0 ]]; then
    fail "$name: exit 0, want a failure ($(head -c 400 "$work/stdout"))"
  elif grep -q -- "$pattern" "$work/stderr"; then pass "$name"; else
    fail "$name: exit $rc, stderr does not mention '$pattern': $(head -c 400 "$work/stderr")"
  fi
}

# A writable root by default, so that a variable asking for read-only shows.
"$LAB" plugin --name "$LAB_NAME" -- "$PLUGIN" >/dev/null
cat >"$CONF" <<CONF
CACHE_PATH $work/cache/\${SLURMD_NODENAME}
DATA_PATH $work/data-\${SLURMD_NODENAME}
ROOTFS_WRITABLE yes
CONF
IMG=${DEEPOPS_LAB_REGISTRY:-}/deepops/tiny
probe='touch /probe 2>/dev/null && echo writable || echo read-only'
uid=$(id -u "$USER_NAME")

# ---- a. boolean variables as Pyxis reads them
expect "a: the site default here is writable" "writable" \
  srun --container-image="$IMG" sh -c "$probe"
expect_fail "a: PYXIS_CONTAINER_WRITABLE=0 is read-only" "Read-only file system" \
  env PYXIS_CONTAINER_WRITABLE=0 srun --container-image="$IMG" touch /x
expect "a: DEEPOPS_CONTAINER_WRITABLE=0 is read-only" "read-only" \
  env DEEPOPS_CONTAINER_WRITABLE=0 srun --container-image="$IMG" sh -c "$probe"
expect "a: PYXIS_CONTAINER_WRITABLE=no is read-only" "read-only" \
  env PYXIS_CONTAINER_WRITABLE=no srun --container-image="$IMG" sh -c "$probe"
expect "a: PYXIS_CONTAINER_READONLY=1 is read-only" "read-only" \
  env PYXIS_CONTAINER_READONLY=1 srun --container-image="$IMG" sh -c "$probe"
expect "a: PYXIS_CONTAINER_READONLY=0 is writable" "writable" \
  env PYXIS_CONTAINER_READONLY=0 srun --container-image="$IMG" sh -c "$probe"
expect "a: WRITABLE=1 wins over READONLY=1" "writable" \
  env PYXIS_CONTAINER_WRITABLE=1 PYXIS_CONTAINER_READONLY=1 srun --container-image="$IMG" sh -c "$probe"
expect "a: an invalid WRITABLE is ignored (READONLY=y counts)" "read-only" \
  env PYXIS_CONTAINER_WRITABLE=maybe PYXIS_CONTAINER_READONLY=y srun --container-image="$IMG" sh -c "$probe"
expect "a: PYXIS_CONTAINER_WRITABLE=TRUE is ignored, no error" "writable" \
  env PYXIS_CONTAINER_WRITABLE=TRUE srun --container-image="$IMG" sh -c "$probe"
expect "a: --container-writable wins over PYXIS_CONTAINER_WRITABLE=0" "writable" \
  env PYXIS_CONTAINER_WRITABLE=0 srun --container-image="$IMG" --container-writable sh -c "$probe"
expect "a: PYXIS_CONTAINER_REMAP_ROOT=1" "0" \
  env PYXIS_CONTAINER_REMAP_ROOT=1 srun --container-image="$IMG" id -u
expect "a: PYXIS_CONTAINER_REMAP_ROOT=0" "$uid" \
  env PYXIS_CONTAINER_REMAP_ROOT=0 srun --container-image="$IMG" id -u
expect "a: PYXIS_CONTAINER_REMAP_ROOT=sure is ignored, no error" "$uid" \
  env PYXIS_CONTAINER_REMAP_ROOT=sure srun --container-image="$IMG" id -u

# ---- b. opposite flags together
expect_fail "b: --container-readonly --container-writable is refused" \
  "both --container-writable and --container-readonly were specified" \
  srun --container-image="$IMG" --container-readonly --container-writable true
expect_fail "b: --container-writable --container-readonly is refused" \
  "both --container-writable and --container-readonly were specified" \
  srun --container-image="$IMG" --container-writable --container-readonly true
expect_fail "b: --container-remap-root --no-container-remap-root is refused" \
  "both --container-remap-root and --no-container-remap-root were specified" \
  srun --container-image="$IMG" --container-remap-root --no-container-remap-root true

# ---- c. --container-env with an empty name
expect_fail "c: --container-env FOO, is refused" "container-env: invalid format" \
  srun --container-image="$IMG" --container-env FOO, true
expect_fail "c: --container-env A,,B is refused" "container-env: invalid format" \
  srun --container-image="$IMG" --container-env=A,,B true

# ---- d. relative mount sources, from srun's working directory
expect_in "$work/dir" "d: --container-mounts ./:/mnt" "relative-ok" \
  srun --container-image="$IMG" --container-mounts ./:/mnt cat /mnt/sub/somefile
expect_in "$work/dir/sub" "d: --container-mounts ../sub:/m:ro on two nodes" "relative-ok
relative-ok" \
  srun -N2 --container-image="$IMG" --container-mounts=../sub:/m:ro cat /m/somefile
expect_in "$work/dir" "d: PYXIS_CONTAINER_MOUNTS=./sub:/m" "relative-ok" \
  env PYXIS_CONTAINER_MOUNTS=./sub:/m srun --container-image="$IMG" cat /m/somefile
expect_in "$work/dir" "d: a relative target is from the container's /" "relative-ok" \
  srun --container-image="$IMG" --container-mounts=./sub:./m cat /m/somefile
expect_fail "d: a missing relative source is named by its absolute path at submit" \
  "$work/nope does not exist" \
  srun --container-image="$IMG" --container-mounts=./nope:/x true
expect_fail "d: a source without ./ is refused, as Pyxis does" "write ./data" \
  srun --container-image="$IMG" --container-mounts=data:/data true

# ---- e. Enroot's bind flags, applied
# bind_info FLAGS [MORE]: /m's mountinfo line in a step that binds $work/data
# there with FLAGS, then the output of the shell command MORE.
bind_info() {
  in_dir "$work" timeout 120 srun --container-image="$IMG" --container-mounts="$work/data:/m:$1" \
    sh -c 'grep " /m " /proc/self/mountinfo; eval "$0"' "${2:-true}" 2>"$work/stderr" || true
}
out=$(bind_info unbindable)
if grep -q ' unbindable ' <<<"$out"; then pass "e: unbindable shows in /proc/self/mountinfo"; else
  fail "e: unbindable: mountinfo '$out' ($(head -c 400 "$work/stderr"))"
fi
out=$(bind_info ro+rshared 'cat /m/file')
if grep -q ' shared:[0-9]' <<<"$out" && grep -q '^flagged$' <<<"$out"; then
  pass "e: ro+rshared: the bind is shared"
else fail "e: ro+rshared: '$out' ($(head -c 400 "$work/stderr"))"; fi
expect_fail "e: unbindable+ro: writes fail" "Read-only file system" \
  srun --container-image="$IMG" --container-mounts="$work/data:/m:unbindable+ro" touch /m/new
out=$(bind_info nodev+noexec)
if grep -q 'nodev' <<<"$out" && grep -q 'noexec' <<<"$out"; then
  pass "e: nodev+noexec are set on the bind"
else fail "e: nodev+noexec: '$out' ($(head -c 400 "$work/stderr"))"; fi
expect_fail "e: noexec: a program on the bind cannot run" "ermission denied" \
  srun --container-image="$IMG" --container-mounts="$work/bin:/b:noexec" /b/prog
expect "e: without noexec it runs" "ran" \
  srun --container-image="$IMG" --container-mounts="$work/bin:/b:rprivate+nosuid" /b/prog
expect_fail "e: an unknown flag is refused, naming it and the accepted ones" \
  "unknown mount flag 'bogus'.*unbindable" \
  srun --container-image="$IMG" --container-mounts="$work/data:/m:ro+bogus" true

# ---- f. a relative working directory, from the container's /
expect "f: --container-workdir=../ is /" "/" srun --container-image="$IMG" --container-workdir=../ pwd
expect "f: --container-workdir=etc is /etc" "/etc" srun --container-image="$IMG" --container-workdir=etc pwd
expect "f: PYXIS_CONTAINER_WORKDIR=./usr/../etc is /etc" "/etc" \
  env PYXIS_CONTAINER_WORKDIR=./usr/../etc srun --container-image="$IMG" pwd

echo "pyxis_options_test (lab $LAB_NAME): $failures failure(s)"
exit $((failures > 0))
