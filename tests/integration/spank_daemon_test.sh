#!/usr/bin/env bash
# --container-image=podman://IMAGE on the lab's real Slurm, as its
# unprivileged user: each node's keeper runs `podman save` as the job's user,
# with the step's environment (which names the user's Podman storage), and
# starts what it saved.
#   a. a step on two nodes runs in the Podman image, printing Pyxis's
#      importing and imported lines
#   b. a second step finds it in the cache
#   c. new content under the same tag is imported anew, never the cached one
#   d. an image Podman lacks fails the step, naming it, with Podman's reason
#
# Usage: spank_daemon_test.sh PLUGIN
#   DEEPOPS_TEST_LAB   the lab (default main: loopback, 2 nodes)
set -euo pipefail
PLUGIN=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/support/lab_test.sh
source "$HERE/../support/lab_test.sh"
lab_test_init daemon
# shellcheck source=tests/support/checks.sh
source "$HERE/../support/checks.sh"
# shellcheck source=tests/support/rootless_podman.sh
source "$HERE/../support/rootless_podman.sh"
for need in podman newuidmap; do
  command -v "$need" >/dev/null || { echo "FAIL $need is missing: run packaging/install-deps.sh"; exit 1; }
done
IMAGE=localhost/deepops-daemon-test:1
CONF=$ETC/conf.d/daemon-test.conf
lab_test_files=("$CONF")
podman_prepare "$USER_NAME" "$work"
mkdir -p "$work/cache"
chown "$USER_NAME:" "$work/cache"
"$LAB" plugin --name "$LAB_NAME" -- "$PLUGIN" >/dev/null # makes conf.d
cat >"$CONF" <<CONF
CACHE_PATH $work/cache
CONF
# podman_user ARGS...: as the lab user, with the test's Podman storage.
podman_user() { as_user env "${PODMAN_ENV[@]}" "$@"; }
# shellcheck disable=SC2317 # called by lab_test_cleanup
on_cleanup() { podman_stop "$work" podman_user; }

# step NODES: a step reading the image's file on NODES nodes; stdout in
# $work/out, stderr in $work/err, exit status in $rc.
step() {
  rc=0
  podman_user timeout 300 srun -N"$1" --ntasks-per-node=1 --container-image="podman://$IMAGE" \
    cat /etc/deepops-daemon-test >"$work/out" 2>"$work/err" || rc=$?
}
err() { head -c 800 "$work/err"; }
# lines WORD N: exactly N lines of stdout read WORD.
lines() { [[ $(grep -c "^$1\$" "$work/out") -eq $2 ]]; }

# ---- a. two nodes, the image imported from the user's Podman
podman_image "$work" "$IMAGE" one podman_user
step 2
if [[ $rc -eq 0 ]] && lines one 2; then pass "a: a step on 2 nodes runs in podman://$IMAGE"; else
  fail "a: rc $rc: $(head -c 300 "$work/out") $(err)"; fi
if [[ $(grep -c "importing docker image: podman://$IMAGE\$" "$work/err") -eq 2 &&
  $(grep -c "imported docker image: podman://$IMAGE (" "$work/err") -eq 2 ]]; then
  pass "a: each node prints Pyxis's importing and imported lines"
else fail "a: progress lines: $(err)"; fi

# ---- b. the same content again
step 2
if [[ $rc -eq 0 ]] && lines one 2 &&
  [[ $(grep -c "imported docker image: podman://$IMAGE (found in the cache)" "$work/err") -eq 2 ]]; then
  pass "b: a second step finds the image in the cache on both nodes"
else fail "b: rc $rc: $(head -c 300 "$work/out") $(err)"; fi

# ---- c. the tag now names other content
podman_image "$work" "$IMAGE" two podman_user
step 1
if [[ $rc -eq 0 ]] && lines two 1 && ! grep -q "found in the cache" "$work/err"; then
  pass "c: new content under the tag is imported anew"
else fail "c: rc $rc: $(head -c 300 "$work/out") $(err)"; fi

# ---- d. an image Podman does not have (no tag: the image is named once,
# as typed, then Podman's name for it)
rc=0
podman_user timeout 300 srun -N1 --container-image=podman://localhost/nosuchimage true \
  >"$work/out" 2>"$work/err" || rc=$?
if [[ $rc -ne 0 ]] &&
  grep -q "failed to import docker image podman://localhost/nosuchimage: the image localhost/nosuchimage:latest is not in podman: .*image not known" "$work/err" &&
  grep -q "podman pull localhost/nosuchimage:latest" "$work/err"; then
  pass "d: a missing image fails the step, naming it, with Podman's reason and the fix"
else fail "d: rc $rc: $(err)"; fi

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
