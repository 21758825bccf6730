#!/usr/bin/env bash
# The Ansible role: packaging/ansible/playbooks/deepops-containers.yml run by
# ansible-playbook (ansible-core from Debian) against localhost installs this
# build's deb, writes the plugstack line and settings, pre-stages the lab's
# tiny image into a system cache, and ends with a validated node (the cpu
# backend here: no GPU). The lab's Slurm, reading the installed drop-in, then
# runs that image from the system cache, leaving the user's cache empty. A
# validation that cannot pass fails the play. Root; lab main.
#
# Usage: ansible_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
LAB=$SRC/tests/lab/lab
# shellcheck source=tests/support/package_fixture.sh
source "$SRC/tests/support/package_fixture.sh"
NAME=${DEEPOPS_TEST_LAB:-main}
CACHE=/var/lib/deepops-ansible-test/system-cache
work=$(mktemp -d)
chmod 755 "$work"
# shellcheck source=tests/support/checks.sh
source "$(dirname "$0")/../support/checks.sh"
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  remove_everything "$LAB" "$NAME"
  rm -rf "$work" "$(dirname "$CACHE")"
}
trap cleanup EXIT
# shellcheck disable=SC1090
source "/var/lib/deepops-lab/$NAME/env"
IMG=$DEEPOPS_LAB_REGISTRY/deepops/tiny

make_packages "$BUILD" "$work" DEB
deb=$(ls "$work"/"$PKG"_*.deb)

# play EXTRA_JSON: the playbook against localhost (as root: no become), the
# lab's slurmd is not a service, so no restart; its exit status.
# The cluster validation judges nodes at half the others (--threshold 0.5):
# the lab's nodes share this machine's cores, so their figures wander.
play() {
  ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 timeout 600 ansible-playbook -i localhost, -c local \
    "$SRC/packaging/ansible/playbooks/deepops-containers.yml" \
    -e deepops_containers_hosts=localhost -e ansible_become=false \
    -e deepops_containers_package_file="$deb" -e deepops_containers_restart_slurmd=false \
    -e deepops_containers_system_cache="$CACHE" \
    -e "{\"deepops_containers_prestage_images\": [\"$IMG\"],
         \"deepops_containers_import_options\": [\"--allow-http\", \"$DEEPOPS_LAB_REGISTRY\"],
         \"deepops_containers_validate_nodes\": \"n[1-2]\",
         \"deepops_containers_validate_cluster_options\": [\"--size\", \"4M\", \"-n\", \"3\", \"--threshold\", \"0.5\"],
         \"deepops_containers_validate_environment\": {\"SLURM_CONF\": \"$SLURM_CONF\"},
         \"deepops_containers_validate_options\": [\"-b\", \"1M\", \"-e\", \"4M\", \"-f\", \"2\"]}" \
    -e "$1"
}

rc=0
play '{}' >"$work/play.out" 2>&1 || rc=$?
if [[ $rc == 0 ]] && grep -q "the cluster validated: PASS: 2 node(s): every node's own all-reduce correct" "$work/play.out" &&
  grep -q "# stage 2: the ring over all 2 nodes" "$work/play.out" && grep -q "failed=0" "$work/play.out"; then
  pass "ansible-playbook against localhost: installed, configured, pre-staged, validated by deepops-bench validate over the lab's nodes (PASS)"
else fail "playbook (exit $rc): $(tail -40 "$work/play.out")"; fi

plugin=$(dpkg -L "$PKG" 2>/dev/null | grep '/spank_deepops\.so$' || true)
if grep -qx "optional $plugin runtime_path=/run/deepops container_scope=job" \
  /etc/slurm/plugstack.conf.d/deepops.conf 2>/dev/null &&
  grep -qx "SYSTEM_CACHE $CACHE" /etc/deepops/conf.d/50-ansible.conf 2>/dev/null &&
  compgen -G "$CACHE/images/*.sqsh" >/dev/null; then
  pass "the plugstack line names the installed plugin; SYSTEM_CACHE set; the image is in the system cache"
else fail "configuration: $(cat /etc/slurm/plugstack.conf.d/deepops.conf /etc/deepops/conf.d/50-ansible.conf 2>&1; find "$CACHE" 2>&1 | head)"; fi

# The lab's Slurm through the installed drop-in: the pre-staged image runs and
# nothing lands in the user's own cache.
"$LAB" plugin --name "$NAME" -- system >/dev/null
# shellcheck disable=SC2016 # the lab user's $HOME
user_cache=$("$LAB" run --name "$NAME" -- sh -c 'echo $HOME/.cache/deepops/images')
"$LAB" run --name "$NAME" -- rm -rf "$(dirname "$user_cache")"
out=$("$LAB" run --name "$NAME" -- srun -N1 --container-image="$IMG" echo from-system-cache 2>&1 || true)
if grep -q "^from-system-cache$" <<<"$out" && ! compgen -G "$user_cache/*.sqsh" >/dev/null; then
  pass "srun --container-image runs the pre-staged image from the system cache (the user's cache stays empty)"
else fail "srun with the system cache: $out; $(ls "$user_cache" 2>&1)"; fi
"$LAB" plugin --name "$NAME" >/dev/null

rc=0
play '{"deepops_containers_validate_expect": 100000}' >"$work/fail.out" 2>&1 || rc=$?
if [[ $rc != 0 ]] && grep -q "deepops-bench on the cluster: exit 1: FAIL: the ring of all nodes (below its figure)" "$work/fail.out"; then
  pass "a cluster below the expected bandwidth fails the play, with validate's FAIL line"
else fail "failing validation (exit $rc): $(tail -30 "$work/fail.out")"; fi

rc=0
play '{"deepops_containers_validate_mode": "node", "deepops_containers_validate_expect": 100000}' \
  >"$work/node.out" 2>&1 || rc=$?
if [[ $rc != 0 ]] && grep -q "deepops-bench on localhost: exit 1: FAIL: busbw .* below the expected 100000.00 GB/s" "$work/node.out"; then
  pass "node mode: a node below the expected bandwidth fails the play, with allreduce's FAIL line"
else fail "failing node validation (exit $rc): $(tail -30 "$work/node.out")"; fi

echo "ansible_test: $failures failure(s)"
exit $((failures > 0))
