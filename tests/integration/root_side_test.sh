#!/usr/bin/env bash
# The plugin's root side, from outside, on a real Slurm (real srun as the
# lab's unprivileged user):
#   a. during a step, the keeper is deepops-keeper (its /proc/PID/exe), runs
#      with the job's uid in every slot, and maps nothing of slurmstepd's
#   b. an entrypoint, and separately a hooks.d hook, that leave `sleep 1000 &`
#      behind: the step completes at once with the command's exit code, and
#      the sleeper is gone afterwards
#   c. a keeper that writes a 100 MB report, or none at all, fails the step
#      with a clear message, the keeper is stopped, and slurmstepd's memory
#      stays bounded (its peak, VmHWM, as the fake keeper reads it)
#
# Usage: root_side_test.sh PLUGIN DEEPOPS_CTR
#   DEEPOPS_TEST_LAB   the lab (default main: loopback, 2 nodes, registries)
# shellcheck disable=SC2016 # the single-quoted commands run in the container
set -euo pipefail
PLUGIN=$(readlink -f "$1")
CTR=$(readlink -f "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/support/lab_test.sh
source "$HERE/../support/lab_test.sh"
lab_test_init root-side
USER_UID=$(id -u "$USER_NAME")
KEEPER=$DEEPOPS_LAB/deepops/lib/deepops-keeper
CONF=$ETC/conf.d/root-side-test.conf
HOOK=$ETC/hooks.d/50-root-side-test.sh
lab_test_files=("$CONF" "$HOOK")
# shellcheck disable=SC2317 # called by the clean-up
on_cleanup() { pkill -KILL -u "$USER_NAME" -f 'sleep 1000' 2>/dev/null || true; }
mkdir -p "$work/data" "$work/cache" "$work/fake-big" "$work/fake-silent"
chown -R "$USER_NAME:" "$work"

# shellcheck source=tests/support/checks.sh
source "$HERE/../support/checks.sh"

"$LAB" plugin --name "$LAB_NAME" -- "$PLUGIN" >/dev/null
cat >"$CONF" <<CONF
CACHE_PATH $work/cache/\${SLURMD_NODENAME}
DATA_PATH $work/data/\${SLURMD_NODENAME}
CONF
IMG=$DEEPOPS_LAB_REGISTRY/deepops/tiny
as_user timeout 120 srun --container-image="$IMG" true >/dev/null 2>&1 || true  # the import

# sleepers: how many `sleep 1000` the user has left.
sleepers() { pgrep -u "$USER_NAME" -f -c '^sleep 1000$' || true; }
# shellcheck disable=SC2317 # called through wait_until
no_sleepers() { [[ $(sleepers) == 0 ]]; }

# ---- a. the keeper during a step
as_user timeout 120 srun -w n1 --container-image="$IMG" --container-mounts="$work:/w" \
  sh -c 'for i in $(seq 600); do [ -e /w/done ] && exit 0; sleep 0.1; done; exit 1' \
  >"$work/a.out" 2>&1 &
step=$!
keeper_pid() { pgrep -u "$USER_NAME" -x deepops-keeper | head -1; }
# shellcheck disable=SC2317 # called through wait_until
keeper_running() { [[ -n $(keeper_pid) ]]; }
if wait_until 300 keeper_running; then
  kp=$(keeper_pid)
  exe=$(readlink "/proc/$kp/exe")
  uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$kp/status")
  parent=$(cat "/proc/$(awk '/^PPid:/ {print $2}' "/proc/$kp/status")/comm")
  slurm_maps=$(grep -c slurmstepd "/proc/$kp/maps" || true)
  if [[ $exe == "$KEEPER" ]]; then pass "the keeper is deepops-keeper ($exe)"; else
    fail "the keeper's exe is $exe, not $KEEPER"
  fi
  if [[ $uids == "$USER_UID $USER_UID $USER_UID $USER_UID" ]]; then
    pass "the keeper's uids are the job's: $uids"
  else fail "the keeper's uids: $uids"; fi
  if [[ $parent == slurmstepd && $slurm_maps == 0 ]]; then
    pass "the keeper is slurmstepd's child and maps nothing of it"
  else fail "the keeper's parent is $parent, with $slurm_maps mappings of slurmstepd"; fi
else
  fail "no deepops-keeper of $USER_NAME during a step: $(cat "$work/a.out")"
fi
touch "$work/done"
if wait "$step"; then pass "that step ended with its command"; else
  fail "that step: $(cat "$work/a.out")"
fi
rm -f "$work/done"

# ---- b. what an entrypoint or a hook leaves behind
as_user "$CTR" import -q --cache "$work/cache/host" --allow-http "$DEEPOPS_LAB_REGISTRY" \
  -o "$work/ep.sqsh" "$IMG" >/dev/null
python3 - "$work/ep.json" <<'PY'
import json, sys
p = sys.argv[1]
meta = json.load(open(p))
meta["config"]["entrypoint"] = ["/bin/sh", "-c", "sleep 1000 & exec \"$@\"", "entry"]
json.dump(meta, open(p, "w"))
PY
chown "$USER_NAME:" "$work/ep.sqsh" "$work/ep.json"
# step_ends NAME COMMAND...: the step exits 7 (its command's code) within 60 s
# (a leftover holding a pipe would keep it until the 1000 s), and no
# sleeper is left once it has.
step_ends() {
  local name=$1 rc=0
  shift
  as_user timeout 60 "$@" sh -c 'exit 7' >"$work/b.out" 2>&1 || rc=$?
  if [[ $rc -eq 7 ]]; then pass "$name: the step ends with its command's code"; else
    fail "$name: exit $rc, want 7: $(head -c 400 "$work/b.out")"
  fi
  if wait_until 100 no_sleepers; then pass "$name: no sleeper is left"; else
    fail "$name: $(sleepers) 'sleep 1000' left after the step"
    pkill -KILL -u "$USER_NAME" -f '^sleep 1000$' || true
  fi
}
step_ends "an entrypoint that leaves sleep 1000 &" \
  srun -w n1 --container-image=./ep.sqsh --container-entrypoint
install -d -m 0755 "$ETC/hooks.d"
printf '#!/bin/sh\nsleep 1000 &\nexit 0\n' >"$HOOK"
chmod 0755 "$HOOK"
step_ends "a hooks.d hook that leaves sleep 1000 &" srun -w n1 --container-image="$IMG"
rm -f "$HOOK"

# ---- c. a keeper that lies: plugins beside a fake deepops-keeper
# fake DIR BODY: a copy of the plugin with a keeper script beside it.
fake() {
  install -m 0755 "$PLUGIN" "$1/spank_deepops.so"
  printf '#!/bin/sh\n%s\n' "$2" >"$1/deepops-keeper"
  chmod 0755 "$1/deepops-keeper"
}
# The fake keeper notes slurmstepd's peak memory once it is told to stop
# (slurmstepd stopped reading: whatever it kept, it holds now).
peak="$work/peak"
fake "$work/fake-big" "trap 'grep VmHWM /proc/\$PPID/status >$peak; exit 0' TERM
cat <&3 >/dev/null
{ head -c 104857600 /dev/zero | tr '\\000' x; echo; } >&4 &
wait; wait"
"$LAB" plugin --name "$LAB_NAME" -- "$work/fake-big/spank_deepops.so" >/dev/null
rc=0
as_user timeout 120 srun -w n1 --container-image="$IMG" true >"$work/c.out" 2>&1 || rc=$?
if [[ $rc -ne 0 ]] && grep -q "report larger than 8 MiB" "$work/c.out"; then
  pass "a 100 MB report fails the step: $(grep -o 'deepops: .*larger[^.]*' "$work/c.out" | head -1)"
else fail "a 100 MB report: exit $rc: $(head -c 400 "$work/c.out")"; fi
if wait_until 100 test -s "$peak"; then
  kib=$(awk '{print $2}' "$peak")
  if [[ $kib -lt 81920 ]]; then pass "slurmstepd's peak memory stayed at $((kib / 1024)) MiB"; else
    fail "slurmstepd's peak memory reached $((kib / 1024)) MiB reading a 100 MB report"
  fi
else fail "the fake keeper was not stopped (no peak noted)"; fi

fake "$work/fake-silent" 'cat <&3 >/dev/null
exec sleep 1000'
"$LAB" plugin --name "$LAB_NAME" -- "$work/fake-silent/spank_deepops.so" start_timeout=3 >/dev/null
rc=0
as_user timeout 120 srun -w n1 --container-image="$IMG" true >"$work/c.out" 2>&1 || rc=$?
if [[ $rc -ne 0 ]] && grep -q "did not start within 3 s" "$work/c.out"; then
  pass "a keeper that never reports fails the step at start_timeout"
else fail "a silent keeper: exit $rc: $(head -c 400 "$work/c.out")"; fi
if wait_until 100 no_sleepers; then pass "and it was stopped"; else
  fail "the silent keeper is still there"
fi

echo "root side: $failures failure(s)"
[[ $failures -eq 0 ]]
