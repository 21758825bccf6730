#!/usr/bin/env bash
# spank_deepops.so under process faults on a real Slurm, as the lab's
# unprivileged user. Each fault is followed by a leak check (no process of the
# test user, no new mount under the lab folder, no file under the runtime
# folder, every node's image cache consistent with an empty tmp/) and by a
# container step that must work:
#  1. scancel while the step's image import runs (blobs dripped by
#     tests/support/faultproxy.py): the job leaves the queue within 30 s and
#     the stopped import publishes nothing;
#  2. scancel while the container starts (an admin hook that blocks): the job
#     leaves the queue within 30 s, before the hook is released;
#  3. scancel while the task runs;
#  4. the node's slurmd restarted while a container step runs: the step
#     finishes with its output and exit 0;
#  5. a node dies (its slurmd, slurmstepd and the step's processes SIGKILLed)
#     under an srun -N2 container step: srun ends non-zero, the other node
#     cleans up, and once the node is back an srun -N2 container step works.
# The lab is left as found (plugin out, every node up and idle), also on failure.
#
# Usage: slurm_faults_test.sh PLUGIN DEEPOPS_CTR
#   DEEPOPS_TEST_LAB   the lab (default main: loopback, 2 nodes, registries)
# shellcheck disable=SC2016 # the single-quoted commands run in the container
# shellcheck disable=SC2317 # predicates called through wait_until, cleanup by the trap
set -euo pipefail
PLUGIN=$(readlink -f "$1")
CTR=$(readlink -f "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
LAB=$HERE/../lab/lab
FAULTPROXY=$HERE/../support/faultproxy.py
LAB_NAME=${DEEPOPS_TEST_LAB:-main}
# shellcheck disable=SC1090,SC1091
source "/var/lib/deepops-lab/$LAB_NAME/env"
[[ $DEEPOPS_LAB_NODES -ge 2 ]] || { echo "FAIL lab $LAB_NAME has fewer than 2 nodes"; exit 1; }
USER_NAME=$DEEPOPS_LAB_USER
LAB_ROOT=$(dirname "$DEEPOPS_LAB")
ETC=$DEEPOPS_LAB/deepops/etc
HOOK=$ETC/hooks.d/50-faults-test-block
IMG=$DEEPOPS_LAB_REGISTRY/deepops/tiny
work=$(mktemp -d "$DEEPOPS_LAB_SHARED/faults-test.XXXXXX")
chmod 0755 "$work"
mkdir -p "$work/cache" "$work/data" "$work/out" "$work/marks"
chown "$USER_NAME:" "$work/cache" "$work/data" "$work/out" "$work/marks"
MARKS=$work/marks # bound at /marks in the containers: the tasks' signs of life
bg_pids=()

# shellcheck source=tests/support/checks.sh
source "$(dirname "$0")/../support/checks.sh"
# as_user COMMAND...: in the lab's environment, as the test user, from $work.
as_user() { "$LAB" run --name "$LAB_NAME" -- bash -c 'cd "$0" && exec "$@"' "$work" "$@"; }

# ---- the lab's state, restored by the trap
node_states() { sinfo -h -N -o '%N %t' 2>/dev/null | sort -u; }
all_idle() { [[ $(sinfo -h -N -o '%t' 2>/dev/null | grep -cx idle) -eq $DEEPOPS_LAB_NODES ]]; }
queue_empty() { [[ -z $(squeue -h -u "$USER_NAME" -o %i 2>/dev/null) ]]; }
slurmd_pid() { cat "$DEEPOPS_LAB/run/slurmd-$1.pid" 2>/dev/null; }
slurmd_alive() { local p; p=$(slurmd_pid "$1") && [[ -n $p ]] && kill -0 "$p" 2>/dev/null; }
# restore_node NODE: its slurmd running, the node back in service.
restore_node() {
  local node=$1
  slurmd_alive "$node" || "$LAB" restart-slurmd --name "$LAB_NAME" -- "$node" >/dev/null 2>&1 || true
  # ReturnToService=2 may already have brought it back: then resume is refused.
  if ! sinfo -h -n "$node" -N -o '%t' | grep -qx idle; then
    scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
  fi
}
cleanup() {
  local pid n
  for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -f "$HOOK"
  scancel -u "$USER_NAME" >/dev/null 2>&1 || true
  wait_until 300 queue_empty || true
  for ((n = 1; n <= DEEPOPS_LAB_NODES; n++)); do restore_node "n$n"; done
  # Takes the plugin out and restarts every slurmd, waiting until all are idle.
  "$LAB" plugin --name "$LAB_NAME" >/dev/null 2>&1 || true
  wait_until 300 all_idle || echo "FAIL the lab's nodes are not all idle after the test: $(node_states | tr '\n' ' ')"
  rm -f "$ETC/conf.d/faults-test.conf"
  rm -rf "$work"
}
trap cleanup EXIT
wait_until 300 all_idle || { echo "FAIL the lab's nodes are not all idle before the test: $(node_states | tr '\n' ' ')"; exit 1; }

# ---- a registry that drips blobs, for an import that lasts long enough to cancel
python3 "$FAULTPROXY" --upstream "$DEEPOPS_LAB_REGISTRY" --fault drip --rate 16384 --drip-max 20 \
  --lifetime 600 >"$work/proxy.out" 2>"$work/proxy.log" &
bg_pids+=($!)
proxy_ready() { grep -q '^ready [0-9]*$' "$work/proxy.out"; }
wait_until 100 proxy_ready || { echo "FAIL faultproxy did not start: $(head -c 400 "$work/proxy.log")"; exit 1; }
SLOW_REGISTRY=127.0.0.1:$(awk '/^ready/ {print $2}' "$work/proxy.out")

# Each node gets its own cache and data folder, as on a cluster with local disks.
"$LAB" plugin --name "$LAB_NAME" -- "$PLUGIN" >/dev/null
cat >"$ETC/conf.d/faults-test.conf" <<CONF
CACHE_PATH $work/cache/\${SLURMD_NODENAME}
DATA_PATH $work/data/\${SLURMD_NODENAME}
ALLOW_HTTP $DEEPOPS_LAB_REGISTRY,$SLOW_REGISTRY
CONF
mounts_before=$(awk -v d="$DEEPOPS_LAB/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort)

# ---- the leak check
# The test user's processes, less those of other labs (their environment names
# another lab folder, or they hold files under another lab folder only): other
# labs may run as the same user.
user_pids() {
  local pid lab_env
  for pid in $(pgrep -u "$USER_NAME" || true); do
    lab_env=$({ tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null | sed -n 's/^DEEPOPS_LAB=//p' | head -1)
    [[ -n $lab_env && $lab_env != "$DEEPOPS_LAB" ]] && continue
    if [[ -z $lab_env ]] &&
      [[ -n $(find "/proc/$pid/cwd" "/proc/$pid/fd" -maxdepth 1 -lname "$LAB_ROOT/*" 2>/dev/null | head -1) ]] &&
      [[ -z $(find "/proc/$pid/cwd" "/proc/$pid/fd" -maxdepth 1 -lname "$DEEPOPS_LAB/*" 2>/dev/null | head -1) ]]; then
      continue
    fi
    if [[ -d /proc/$pid ]]; then echo "$pid"; fi
  done
  return 0
}
new_mounts() {
  comm -13 <(echo "$mounts_before") \
    <(awk -v d="$DEEPOPS_LAB/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort) | grep . || true
}
# (RUNTIME_FILES_IGNORE: a name pattern left out, for what only a later step can remove.)
runtime_files() {
  find "$DEEPOPS_LAB/deepops/run" -mindepth 2 ! -name "${RUNTIME_FILES_IGNORE:-}" 2>/dev/null || true
}
# cache_problems: for every node's cache, a line per entry that is not a
# readable squashfs of the recorded size, and per scratch folder left in tmp/.
cache_problems() {
  local cache
  for cache in "$work"/cache/n*; do
    [[ -d $cache ]] || continue
    as_user env DEEPOPS_CACHE_PATH="$cache" "$CTR" list --json 2>&1 | python3 -c '
import json, os, subprocess, sys
text = sys.stdin.read()
try:
    entries = json.loads(text)
except ValueError:
    sys.exit("%s: list --json: %s" % (sys.argv[1], text[:300]))
for img in entries:
    path, size = img["path"], img["size"]
    if not os.path.exists(path) or os.path.getsize(path) != size:
        print("%s: missing or not of the recorded size %d" % (path, size))
    elif subprocess.run(["unsquashfs", "-s", path], capture_output=True).returncode != 0:
        print("%s: not a readable squashfs" % path)
' "$cache" || true
    find "$cache/tmp" -mindepth 1 -maxdepth 1 -printf "$cache/tmp/%f: scratch left\n" 2>/dev/null || true
  done
}
is_clean() { [[ -z $(user_pids) && -z $(new_mounts) && -z $(runtime_files) && -z $(cache_problems) ]]; }
# leak_check NAME: nothing left, within a bounded time for the steps' ends.
leak_check() {
  local name=$1
  if wait_until 300 is_clean; then
    pass "$name: no process, mount, runtime file or cache scratch left; the cache is consistent"
    return 0
  fi
  local pids
  pids=$(user_pids | tr '\n' ' ')
  fail "$name: left processes [${pids}] ($(for p in $pids; do tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null; echo -n '; '; done | head -c 300))," \
    "mounts [$(new_mounts | tr '\n' ' ')], runtime files [$(runtime_files | head -5 | tr '\n' ' ')]," \
    "cache [$(cache_problems | head -5 | tr '\n' ' ')]"
}
# next_job_works NAME NODES IMAGE: a container step on NODES (n1, or -N2)
# runs after the fault, one task per node.
next_job_works() {
  local name=$1 nodes=$2 image=$3 want=ok where=(-w n1)
  if [[ $nodes == 2 ]]; then
    want=$'n1 ok\nn2 ok'
    where=(-N2)
  else want="n1 ok"; fi
  local got rc=0
  got=$(as_user timeout 120 srun "${where[@]}" --container-image="$image" \
    sh -c 'echo "$SLURMD_NODENAME ok"' 2>"$work/stderr") || rc=$?
  got=$(sort <<<"$got")
  if [[ $rc -eq 0 && $got == "$want" ]]; then pass "$name: the next container step works"; else
    fail "$name: the next container step: rc $rc, got '$got', want '$want' ($(head -c 400 "$work/stderr"))" \
      "; the registry proxy's last lines: $(tail -n 5 "$work/proxy.log" | tr '\n' ' ')"
  fi
}

# ---- background steps
# start_step TAG SRUN_ARGS...: srun as the user in the background (bounded by
# timeout), its stdout/stderr in $work/out/TAG.{out,err}, its job named
# faults-TAG; the exit status lands in $work/out/TAG.rc.
start_step() {
  local tag=$1
  shift
  (
    rc=0
    as_user timeout 280 srun -J "faults-$tag" "$@" >"$work/out/$tag.out" 2>"$work/out/$tag.err" || rc=$?
    echo "$rc" >"$work/out/$tag.rc"
  ) &
  bg_pids+=($!)
}
step_ended() { [[ -s $work/out/$1.rc ]]; }
step_rc() { cat "$work/out/$1.rc"; }
job_of() { squeue -h -u "$USER_NAME" -n "faults-$1" -o %i 2>/dev/null | head -1 || true; }
job_gone() { [[ -z $(squeue -h -u "$USER_NAME" -n "faults-$1" -o %i 2>/dev/null) ]]; }
has_job() { [[ -n $(job_of "$1") ]]; }
marked() { [[ -e $MARKS/$1 ]]; }
stderr_of() { head -c 600 "$work/out/$1.err" 2>/dev/null | tr '\n' '|'; }
# cancel TAG: scancel the step's job, then srun must end and the job leave the queue.
cancel() {
  local tag=$1 job
  job=$(job_of "$tag")
  if [[ -z $job ]]; then
    fail "$tag: no job to cancel ($(stderr_of "$tag"))"
    return 1
  fi
  scancel "$job" || true
  if ! wait_until 600 step_ended "$tag"; then
    fail "$tag: srun still runs 120 s after scancel"
    return 1
  fi
  if ! wait_until 600 job_gone "$tag"; then
    fail "$tag: job $job still in the queue 120 s after scancel ($(squeue -h -j "$job" -o '%t %R'))"
    return 1
  fi
}

# cancel_promptly NAME WHAT NOTE: scancel step NAME's job, which must leave the
# queue within 30 s and its srun end within 120 s.
cancel_promptly() {
  local name=$1 what=$2 note=$3 job cancelled_at
  job=$(job_of "$name")
  scancel "$job" || true
  cancelled_at=$SECONDS
  if wait_until 150 job_gone "$name"; then
    pass "$what: the job leaves the queue in $((SECONDS - cancelled_at)) s$note"
  else
    fail "$what: job $job still in the queue 30 s after scancel ($(squeue -h -j "$job" -o '%t %R'))"
  fi
  if wait_until 600 step_ended "$name"; then pass "$what: srun ends (exit $(step_rc "$name"))"; else
    fail "$what: srun still runs 120 s after scancel"
  fi
}

# ---- 1. scancel during an import
proxy_drips() { grep -q 'fault drip GET .*/blobs/sha256:' "$work/proxy.log"; }
importing() { grep -q '^deepops: n1: importing .* MB downloaded' "$work/out/import.err"; }
start_step import -w n1 --container-image="$SLOW_REGISTRY/deepops/tiny" true
if wait_until 300 proxy_drips && wait_until 300 importing && has_job import; then
  # Slurm acts on a cancel only once user_init, where the import runs, has
  # returned: the plugin asks slurmctld every 5 s and stops the import. The
  # job must leave the queue well before the dripped import could end, and
  # the import must publish nothing.
  cancel_promptly import "scancel during an import" ""
  published=$(as_user env DEEPOPS_CACHE_PATH="$work/cache/n1" "$CTR" list --json 2>&1 | tr -d ' \n')
  if [[ $published == "[]" ]]; then pass "scancel during an import: the stopped import published nothing"; else
    fail "scancel during an import: the cache of n1 has an image after the stopped import: $published"
  fi
else
  fail "scancel during an import: the import never showed progress ($(stderr_of import))"
fi
leak_check "scancel during an import"
next_job_works "scancel during an import" 1 "$SLOW_REGISTRY/deepops/tiny"

# ---- 2. scancel during the container's start: an admin hook that blocks it
mkdir -p "$ETC/hooks.d"
cat >"$HOOK.tmp" <<HOOK
#!/bin/sh
# Written by slurm_faults_test.sh: blocks the start until released (100 s at most).
touch '$MARKS/hook-started'
i=0
while [ ! -e '$MARKS/hook-release' ] && [ \$i -lt 500 ]; do sleep 0.2; i=\$((i + 1)); done
HOOK
chmod 0755 "$HOOK.tmp"
mv "$HOOK.tmp" "$HOOK"
start_step hook -w n1 --container-image="$IMG" sleep 300
if wait_until 300 marked hook-started && has_job hook; then
  # The hook still blocks (up to 100 s): the plugin must stop the start (the
  # hook dies of the keeper group's SIGTERM) and the job leave the queue
  # before the hook is released.
  cancel_promptly hook "scancel during the start" ", the hook never released"
else
  fail "scancel during the start: the hook never ran ($(stderr_of hook))"
fi
touch "$MARKS/hook-release"
rm -f "$HOOK"
leak_check "scancel during the start"
next_job_works "scancel during the start" 1 "$IMG"

# ---- 3. scancel during the run
start_step run -N2 --container-image="$IMG" --container-mounts="$MARKS:/marks" \
  sh -c 'touch /marks/run-$SLURM_NODEID && exec sleep 300'
if wait_until 300 marked run-0 && wait_until 300 marked run-1 && has_job run; then
  if cancel run; then
    rc=$(step_rc run)
    if [[ $rc -ne 0 ]]; then pass "scancel during the run: srun ends with exit $rc"; else
      fail "scancel during the run: srun exit 0 ($(stderr_of run))"
    fi
  fi
else
  fail "scancel during the run: the tasks never ran ($(stderr_of run))"
fi
leak_check "scancel during the run"
next_job_works "scancel during the run" 2 "$IMG"

# ---- 4. slurmd restarted under a running container step
start_step restart -w n1 --container-image="$IMG" --container-mounts="$MARKS:/marks" \
  sh -c 'touch /marks/restart-started; i=0
    while [ ! -e /marks/restart-go ] && [ $i -lt 1000 ]; do sleep 0.2; i=$((i + 1)); done
    [ -e /marks/restart-go ] && echo "finished in $(readlink -f /bin/sh)"'
if wait_until 300 marked restart-started; then
  if "$LAB" restart-slurmd --name "$LAB_NAME" -- n1 >"$work/out/restart-slurmd.log" 2>&1; then
    pass "slurmd restart: n1's slurmd restarted under a running step"
  else fail "slurmd restart: lab restart-slurmd failed: $(tail -3 "$work/out/restart-slurmd.log")"; fi
  touch "$MARKS/restart-go"
  if wait_until 600 step_ended restart && [[ $(step_rc restart) == 0 ]] &&
    [[ $(cat "$work/out/restart.out") == "finished in /bin/busybox" ]]; then
    pass "slurmd restart: the step finishes in its container, with its output and exit 0"
  else
    fail "slurmd restart: rc $(step_rc restart 2>/dev/null || echo none), output '$(head -c 200 "$work/out/restart.out")' ($(stderr_of restart))"
  fi
else
  fail "slurmd restart: the step never ran ($(stderr_of restart))"
fi
touch "$MARKS/restart-go"
wait_until 300 job_gone restart || fail "slurmd restart: the job never left the queue"
leak_check "slurmd restarted mid-step"
next_job_works "slurmd restarted mid-step" 2 "$IMG"

# ---- 5. a node dies under srun -N2
# descendants PID...: every process under them (by parent pid), them included.
descendants() {
  local -a todo=("$@")
  local p c
  while [[ ${#todo[@]} -gt 0 ]]; do
    p=${todo[0]}
    todo=("${todo[@]:1}")
    echo "$p"
    for c in $(pgrep -P "$p" || true); do todo+=("$c"); done
  done
}
# node_stepds NODE JOB: that node's slurmstepd processes of the job: they hold
# the node's slurmd log open (loopback mode: every node's daemons share this host).
node_stepds() {
  local node=$1 job=$2 pid
  for pid in $(pgrep -f "^slurmstepd: \[$job\." || true); do
    [[ $(ps -o user= -p "$pid" 2>/dev/null) == root ]] || continue
    if find "/proc/$pid/fd" -maxdepth 1 -lname "$DEEPOPS_LAB/log/slurmd-$node.log" 2>/dev/null | grep -q .; then
      echo "$pid"
    fi
  done
}
# job_tasks NODE JOB: the job's task processes on the node (their environment).
job_tasks() {
  local node=$1 job=$2 pid envs
  for pid in $(pgrep -u "$USER_NAME" || true); do
    envs=$({ tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null) || continue
    if grep -qx "SLURM_JOB_ID=$job" <<<"$envs" && grep -qx "SLURMD_NODENAME=$node" <<<"$envs"; then
      echo "$pid"
    fi
  done
  return 0
}
# kill_node NODE JOB: SIGKILL the node's slurmd, its slurmstepd of the job and
# everything under them, frozen first so that nothing forks away meanwhile.
kill_node() {
  local node=$1 job=$2 stepds victims
  stepds=$(node_stepds "$node" "$job")
  [[ -n $stepds ]] || return 1
  # shellcheck disable=SC2086 # one pid per word
  victims=$(descendants $stepds)
  # shellcheck disable=SC2086
  kill -STOP $victims 2>/dev/null || true
  # shellcheck disable=SC2086
  victims=$( (descendants $stepds; job_tasks "$node" "$job") | sort -un)
  # shellcheck disable=SC2086
  kill -KILL "$(slurmd_pid "$node")" $victims 2>/dev/null || true
  echo "$victims" >"$work/out/killed-$node"
}
all_dead() {
  local p
  while read -r p; do
    if [[ -n $p ]] && kill -0 "$p" 2>/dev/null; then return 1; fi
  done <"$work/out/killed-$1"
  return 0
}
start_step nodefail -N2 --container-image="$IMG" --container-mounts="$MARKS:/marks" \
  sh -c 'touch /marks/nodefail-$SLURMD_NODENAME && exec sleep 300'
if wait_until 300 marked nodefail-n1 && wait_until 300 marked nodefail-n2 && has_job nodefail; then
  job=$(job_of nodefail)
  if kill_node n2 "$job" && wait_until 100 all_dead n2; then
    pass "node failure: n2's slurmd, slurmstepd and step processes SIGKILLed ($(wc -w <"$work/out/killed-n2") processes)"
  else fail "node failure: could not kill n2's processes of job $job"; fi
  # Slurm notices the dead node after SlurmdTimeout and ends the job.
  if wait_until 1000 step_ended nodefail; then
    rc=$(step_rc nodefail)
    if [[ $rc -ne 0 && $rc -ne 124 ]]; then pass "node failure: srun ends with exit $rc"; else
      fail "node failure: srun exit $rc ($(stderr_of nodefail))"
    fi
  else fail "node failure: srun still runs 200 s after n2 died ($(stderr_of nodefail))"; fi
  wait_until 600 job_gone nodefail || fail "node failure: job $job never left the queue ($(squeue -h -j "$job" -o '%t %R'))"
else
  fail "node failure: the step never ran on both nodes ($(stderr_of nodefail))"
fi
# n2's keeper died with its node, and with it the record that lets other steps
# join the step's container (step-JOB.0.n2.json): the user's next step on n2
# removes it, which the check after the node came back covers.
RUNTIME_FILES_IGNORE="step-*.n2.json" leak_check "node failure: n1 cleaned up"
restore_node n2
if wait_until 600 all_idle; then pass "node failure: n2 back, every node idle"; else
  fail "node failure: n2 not back: $(node_states | tr '\n' ' ')"
fi
next_job_works "node failure" 2 "$IMG"
leak_check "after the node came back"

echo "slurm_faults_test (lab $LAB_NAME): $failures failure(s)"
exit $((failures > 0))
