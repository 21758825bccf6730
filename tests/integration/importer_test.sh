#!/usr/bin/env bash
# Pyxis's importer protocol (plugstack.conf importer=PATH) with the example
# caching importer (examples/importers/caching-importer.sh), on the lab's
# real Slurm, as its unprivileged user:
#   a. two steps on two nodes: four `get` calls, one import in all, one
#      `release` per step and node, each after its get; the container is the image
#   b. the importer's failure reaches srun's stderr with its own message
#   c. a squashfs file does not go through the importer
#   d. importer= must be an absolute path (the plugin's arguments are checked)
#
# Usage: importer_test.sh PLUGIN DEEPOPS_CTR
#   DEEPOPS_TEST_LAB   the lab (default main: loopback, 2 nodes, registries)
# shellcheck disable=SC2016 # the single-quoted commands run in the container
set -euo pipefail
PLUGIN=$(readlink -f "$1")
CTR=$(readlink -f "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
IMPORTER=$(cd "$HERE/../../examples/importers" && pwd)/caching-importer.sh
# shellcheck source=tests/support/lab_test.sh
source "$HERE/../support/lab_test.sh"
lab_test_init importer
# shellcheck source=tests/support/checks.sh
source "$HERE/../support/checks.sh"
CONF=$ETC/conf.d/importer-test.conf
lab_test_files=("$CONF")
REG=$DEEPOPS_LAB_REGISTRY
chown "$USER_NAME:" "$work"
cat >"$CONF" <<CONF
CACHE_PATH $work/cache
CONF
LOG=$work/icache/importer.log
# job ARGS...: as the lab user from $work, with the importer's variables in
# the job's environment (srun passes it on, and the plugin to the importer).
job() {
  as_user env DEEPOPS_IMPORTER_CACHE="$work/icache" DEEPOPS_CTR="$CTR" \
    DEEPOPS_ALLOW_HTTP="$REG" DEEPOPS_CACHE_PATH="$work/user-cache" timeout 300 "$@"
}
count() { grep -c -- "$1" "$LOG" 2>/dev/null || true; }

"$LAB" plugin --name "$LAB_NAME" -- "$PLUGIN" "importer=$IMPORTER" >/dev/null

# ---- a. two steps on two nodes
for s in 1 2; do
  rc=0
  out=$(job srun -N2 --ntasks-per-node=1 --container-image="$REG/deepops/tiny" \
    sh -c 'test -x /bin/busybox && echo in-image' 2>"$work/err") || rc=$?
  if [[ $rc -eq 0 && $(grep -c '^in-image$' <<<"$out") -eq 2 ]]; then
    pass "a: step $s on 2 nodes starts the importer's squashfs"
  else fail "a: step $s: rc $rc: $out $(head -c 600 "$work/err")"; fi
  if grep -q "importing docker image: $REG/deepops/tiny" "$work/err" &&
    grep -q "imported docker image: $REG/deepops/tiny (by the site's importer" "$work/err"; then
    pass "a: step $s prints the importing and imported lines, as Pyxis's do"
  else fail "a: step $s lines: $(head -c 600 "$work/err")"; fi
done
if [[ $(count "^get docker://$REG/deepops/tiny ") -eq 4 ]]; then pass "a: get once per step and node (4)"
else fail "a: get calls: $(cat "$LOG")"; fi
if [[ $(count "^imported ") -eq 1 ]]; then pass "a: one import in all: the importer's cache served the rest"
else fail "a: imports: $(cat "$LOG")"; fi
# release is the node's last word on the step: wait for it (task_exit runs it).
releases_done() { [[ $(count "^release ") -ge 4 ]]; }
wait_until 150 releases_done || true
if [[ $(count "^release ") -eq 4 ]]; then pass "a: release once per step and node (4)"
else fail "a: release calls: $(cat "$LOG")"; fi
order_ok=1
while read -r step; do
  g=$(grep -n "^get .* $step\$" "$LOG" | head -1 | cut -d: -f1)
  r=$(grep -n "^release $step\$" "$LOG" | head -1 | cut -d: -f1)
  [[ -n $g && -n $r && $g -lt $r ]] || order_ok=0
done < <(awk '/^release /{print $2}' "$LOG")
if [[ $order_ok -eq 1 ]]; then pass "a: each release comes after its step's get"
else fail "a: order: $(cat "$LOG")"; fi
if [[ -z $(ls -A "$work/icache/steps") ]]; then pass "a: release dropped each step's record"
else fail "a: left in steps/: $(ls "$work/icache/steps")"; fi

# ---- b. the importer's failure on srun's stderr
rc=0
job srun -N1 --container-image="$REG/deepops/no-such-image" true >/dev/null 2>"$work/err" || rc=$?
if [[ $rc -ne 0 ]] && grep -q "caching-importer: importing docker://$REG/deepops/no-such-image" "$work/err" &&
  grep -q "failed with exit status" "$work/err" && grep -q "deepops-ctr: error" "$work/err"; then
  pass "b: the importer's failure and its stderr reach srun"
else fail "b: rc $rc: $(head -c 800 "$work/err")"; fi

# ---- c. a squashfs file is started as it is
before=$(count "^get ")
job "$CTR" import -q -o "$work/tiny.sqsh" "$REG/deepops/tiny" >/dev/null 2>&1
chown "$USER_NAME:" "$work/tiny.sqsh" "$work/tiny.json" 2>/dev/null || true
rc=0
out=$(job srun -N1 --container-image="$work/tiny.sqsh" echo from-file 2>"$work/err") || rc=$?
if [[ $rc -eq 0 && $out == from-file && $(count "^get ") -eq $before ]]; then
  pass "c: a squashfs file does not go through the importer"
else fail "c: rc $rc, out '$out', gets $before -> $(count "^get "): $(head -c 400 "$work/err")"; fi

# ---- d. a relative importer= is refused where srun loads the plugin
# (lab plugin's own check of srun fails on it too: the line is written all the same)
"$LAB" plugin --name "$LAB_NAME" -- "$PLUGIN" "importer=caching-importer.sh" >/dev/null 2>&1 || true
rc=0
job srun -N1 --container-image="$REG/deepops/tiny" true >/dev/null 2>"$work/err" || rc=$?
if [[ $rc -ne 0 ]] && grep -q "importer must be an absolute path" "$work/err"; then
  pass "d: importer= must be an absolute path"
else fail "d: rc $rc: $(head -c 400 "$work/err")"; fi

[[ $failures -eq 0 ]]
