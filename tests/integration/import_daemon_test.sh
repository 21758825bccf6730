#!/usr/bin/env bash
# `deepops-ctr import` from local image stores, as the unprivileged lab user,
# with Debian's Podman run rootless by deepops-ctr itself; no network, no
# registry, no Slurm, no GPU:
#   1. a Podman image made offline (`podman import` of a busybox-static rootfs)
#   2. podman://localhost/NAME:TAG imported, started, a file of it read
#   3. new content under the same tag: imported anew and started, never the
#      cached old one; the same content again is a cache hit
#   4. podman://nosuchimage:1: exit 1, a message naming the image
#   5. dockerd://busybox:1 with no Docker daemon: "not installed" (no docker
#      client) or "cannot reach its daemon" (a client, no daemon)
#   6. podman:// with no podman in PATH: "not installed"
#   7. deepops-enroot import podman://: Enroot's default file name, started
#
# Podman runs rootless with the test's own storage (tests/support/
# rootless_podman.sh); its pause process is stopped at the end, and the
# storage removed.
#
# Usage: import_daemon_test.sh DEEPOPS_CTR [DEEPOPS_ENROOT]  (DEEPOPS_LAB_USER:
# the user, default deepops-test, created as the lab creates it when missing)
set -euo pipefail
CTR=$(readlink -f "$1")
ENROOT=$(if [[ -n ${2:-} ]]; then readlink -f "$2"; fi)
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/support/checks.sh
source "$HERE/../support/checks.sh"
# shellcheck source=tests/support/rootless_podman.sh
source "$HERE/../support/rootless_podman.sh"
USER_NAME=${DEEPOPS_LAB_USER:-deepops-test}
NAME=localhost/deepops-daemon-test
BUSYBOX=$(command -v busybox || true)
for need in podman newuidmap "$BUSYBOX"; do
  if [[ -z $need ]] || ! command -v "$need" >/dev/null; then
    echo "FAIL ${need:-busybox} is missing: run packaging/install-deps.sh"
    exit 1
  fi
done

if ! getent passwd "$USER_NAME" >/dev/null; then
  useradd --create-home --user-group --shell /bin/bash "$USER_NAME"
fi
# As the lab does: unprivileged squashfuse needs Debian's 0666 /dev/fuse.
if [[ -e /dev/fuse && $(stat -c %a /dev/fuse) != 666 ]]; then chmod 0666 /dev/fuse; fi

work=$(mktemp -d /tmp/import-daemon-test.XXXXXX)
PODMAN_ENV=()
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  podman_stop "$work" as_user
  [[ -n ${KEEP_WORK:-} ]] || rm -rf "$work"
}
trap cleanup EXIT
chmod 0755 "$work"
cd "$work"
mkdir -p home cache data runtime conf nobin
chmod 0700 runtime
chown "$USER_NAME:" home cache data runtime
podman_prepare "$USER_NAME" "$work"

# as_user COMMAND...: as the user, in a clean environment of the test's
# (PATH from USER_PATH when set).
as_user() {
  runuser -u "$USER_NAME" -- env -i HOME="$work/home" USER="$USER_NAME" LOGNAME="$USER_NAME" \
    PATH="${USER_PATH:-/usr/local/bin:/usr/bin:/bin}" "${PODMAN_ENV[@]}" \
    DEEPOPS_CACHE_PATH="$work/cache" DEEPOPS_DATA_PATH="$work/data" \
    DEEPOPS_RUNTIME_PATH="$work/runtime" DEEPOPS_SYSCONF_DIR="$work/conf" \
    DEEPOPS_IMAGE_MOUNT_LINGER=0 "$@"
}


# run_ctr OUT [VAR=value...] ARGS...: `deepops-ctr ARGS...` as the user (with
# those variables), its output in OUT; its exit status.
run_ctr() {
  local out=$1 vars=() rc=0
  shift
  while [[ $# -gt 0 && $1 == *=* ]]; do
    vars+=("$1")
    shift
  done
  as_user "${vars[@]}" "$CTR" "$@" >"$out" 2>&1 || rc=$?
  return "$rc"
}

# ---- 1, 2: an image of the user's Podman, imported and started
podman_image "$work" "$NAME:1" one as_user
if sqsh1=$(as_user "$CTR" import -q "podman://$NAME:1" 2>import1.err) && [[ -f $sqsh1 ]]; then
  pass "import podman://$NAME:1 as $USER_NAME ($sqsh1)"
else fail "import podman://$NAME:1: '${sqsh1:-}' $(head -c 600 import1.err)"; fi
got=$(as_user "$CTR" start "$sqsh1" cat /etc/deepops-daemon-test 2>&1 || true)
if [[ $got == one ]]; then pass "start: the image's file reads 'one'"; else
  fail "start of the first import: got '$got'"
fi

# ---- 3: the same tag, new content
podman_image "$work" "$NAME:1" two as_user
sqsh2=$(as_user "$CTR" import -q "podman://$NAME:1" 2>import2.err || true)
if [[ -f $sqsh2 && $sqsh2 != "$sqsh1" ]]; then pass "new content under the tag is imported anew"; else
  fail "re-import after the change: '$sqsh2' (first: '$sqsh1') $(head -c 600 import2.err)"
fi
got=$(as_user "$CTR" start "$sqsh2" cat /etc/deepops-daemon-test 2>&1 || true)
if [[ $got == two ]]; then pass "start: the new content 'two', not the cached 'one'"; else
  fail "start of the second import: got '$got'"
fi
mkdir -p cache2
chown "$USER_NAME:" cache2
if run_ctr import4.out DEEPOPS_CACHE_PATH="$work/cache2" import "podman://$NAME:1" &&
  grep -q "^imported " import4.out && ! grep -q "mirror" import4.out; then
  pass "an import's summary names no mirror for a daemon's image"
else fail "import into a second cache: $(head -c 600 import4.out)"; fi
if run_ctr import3.out import "podman://$NAME:1" && grep -qx "$sqsh2" import3.out &&
  ! grep -q "^imported" import3.out; then
  pass "the same content again is found in the cache"
else fail "third import: $(head -c 600 import3.out)"; fi
if [[ -z $(ls -A cache/tmp 2>/dev/null) ]]; then pass "no scratch left in the cache"; else
  fail "left in cache/tmp: $(ls cache/tmp)"
fi

# ---- 7: Enroot's command on a Podman image
if [[ -n $ENROOT ]]; then
  # In the user's home, which is the user's to write.
  rm -f "$work/home/localhost+deepops-daemon-test+1.sqsh"
  # shellcheck disable=SC2016 # $1.. are the inner shell's
  if as_user bash -c 'cd "$1" && "$2" import "podman://$3:1"' _ "$work/home" "$ENROOT" "$NAME" \
    >enroot.out 2>&1 && [[ -f $work/home/localhost+deepops-daemon-test+1.sqsh ]] &&
    [[ $(as_user "$ENROOT" start "$work/home/localhost+deepops-daemon-test+1.sqsh" \
      cat /etc/deepops-daemon-test 2>&1) == two ]]; then
    pass "enroot import podman://$NAME:1 writes localhost+deepops-daemon-test+1.sqsh, which starts"
  else fail "enroot import podman://: $(head -c 600 enroot.out)"; fi
fi

# ---- 4: an image Podman does not have
rc=0
run_ctr missing.out import podman://nosuchimage:1 || rc=$?
if [[ $rc -eq 1 ]] && grep -q "podman://nosuchimage:1" missing.out &&
  grep -q "image not known" missing.out && grep -q "hint: podman pull" missing.out; then
  pass "podman://nosuchimage:1: exit 1, naming the image, hint to pull"
else fail "podman://nosuchimage:1: exit $rc: $(head -c 600 missing.out)"; fi

# ---- 5: no Docker daemon. DOCKER_HOST names a socket that nothing serves,
# so that a daemon running on this machine cannot change the outcome.
rc=0
run_ctr docker.out DOCKER_HOST="unix://$work/no-docker.sock" import dockerd://busybox:1 || rc=$?
if [[ $rc -eq 1 ]] && grep -Eq "docker is not installed here \(no \`docker\` in PATH\)|dockerd://busybox:1: docker cannot reach its daemon: .*Cannot connect to the Docker daemon" docker.out; then
  pass "dockerd://busybox:1 without a daemon: $(grep -m1 error: docker.out)"
else fail "dockerd://busybox:1: exit $rc: $(head -c 600 docker.out)"; fi

# ---- 6: no podman in PATH
rc=0
USER_PATH=$work/nobin run_ctr nopodman.out import "podman://$NAME:1" || rc=$?
if [[ $rc -eq 1 ]] && grep -q "podman is not installed here (no \`podman\` in PATH)" nopodman.out; then
  pass "podman:// with no podman in PATH: not installed"
else fail "podman:// without podman: exit $rc: $(head -c 600 nopodman.out)"; fi

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
