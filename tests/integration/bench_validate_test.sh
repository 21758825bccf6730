#!/usr/bin/env bash
# deepops-bench validate on the 4-node network-namespace lab, inside
# `salloc -N4` as the lab user, as an admin would run it after a deployment:
#   - every link and node free: PASS, exit 0, JSON and Prometheus files;
#   - n3's link throttled by tc: FAIL naming n3 (found by the sweep), exit 1;
#   - n2's slurmd (so its steps) held to 5% of a CPU by a cgroup quota: FAIL
#     naming n2 in the per-node stage, exit 1;
#   - outside an allocation: exit 2 with a hint.
#
# Usage: bench_validate_test.sh DEEPOPS_BENCH   (DEEPOPS_TEST_LAB: another lab than net)
set -euo pipefail
BENCH=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
LAB=$HERE/../lab/lab
NAME=${DEEPOPS_TEST_LAB:-net}
work=$(mktemp -d)
chmod 1777 "$work" # the lab user writes the JSON and metrics here
# shellcheck source=tests/support/checks.sh
source "$(dirname "$0")/../support/checks.sh"
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  "$LAB" throttle --name "$NAME" -- 3 off >/dev/null 2>&1 || true
  "$LAB" cpu-quota --name "$NAME" -- 2 off >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# validate OUT ITERS [OPTION...]: a cpu validation of the lab's 4 nodes; its
# exit status. The nodes share this machine's two cores, so figures wander:
# outliers are below half the others (a throttled link is near 3%, the
# CPU-starved node near 15%).
validate() {
  local out=$1 iters=$2 rc=0
  shift 2
  "$LAB" run --name "$NAME" -- timeout 600 salloc -N4 "$BENCH" validate --backend cpu \
    -n "$iters" -w 1 --threshold 0.5 --timeout 120 "$@" >"$out" 2>&1 || rc=$?
  return $rc
}
# json_get FILE EXPR: a Python expression over the JSON as j.
json_get() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

rc=0
validate "$work/free.out" 3 --size 4M -J "$work/free.json" --prometheus "$work/free.prom" || rc=$?
if [[ $rc == 0 ]] && grep -q "^PASS: 4 node(s): every node's own all-reduce correct and within 50% of the nodes' median" "$work/free.out" &&
  grep -q "^# stage 1: each node's own all-reduce (2 rank(s) each" "$work/free.out" &&
  grep -q "^# stage 2: the ring over all 4 nodes" "$work/free.out" &&
  grep -q "^# stage 3: the sweep over every pair of nodes (no figure to judge the ring by" "$work/free.out" &&
  [[ $(grep -c "^PASS\|^FAIL" "$work/free.out") == 1 ]]; then
  pass "every link and node free: three stages, one PASS line, exit 0"
else fail "free (exit $rc): $(cat "$work/free.out")"; fi

if [[ -s $work/free.json ]] && [[ $(json_get "$work/free.json" 'len(j["node_stage"]["runs"])') == 4 ]] &&
  [[ $(json_get "$work/free.json" 'all(r["busbw"] > 0 and r["ok"] for r in j["node_stage"]["runs"])') == True ]] &&
  [[ $(json_get "$work/free.json" 'j["ring"]["ok"] and j["sweep"]["pass"] and j["pass"]') == True ]] &&
  [[ $(json_get "$work/free.json" 'len(j["sweep"]["pairs"])') == 6 ]]; then
  pass "-J: every stage's measurements in one JSON (4 nodes' own runs, the ring, 6 pairs)"
else fail "JSON: $(head -40 "$work/free.json" 2>&1)"; fi

if grep -q '^deepops_bench_validate_pass{backend="cpu",nodes="4"} 1$' "$work/free.prom" &&
  [[ $(grep -c '^deepops_bench_validate_node_busbw_gbps{.*node="n[1-4]"} [0-9.e+-]*$' "$work/free.prom") == 4 ]] &&
  grep -q '^deepops_bench_validate_ring_busbw_gbps{backend="cpu",nodes="4"} ' "$work/free.prom"; then
  pass "--prometheus: per-node busbw, the ring and the verdict for node_exporter"
else fail "metrics: $(cat "$work/free.prom" 2>&1)"; fi

"$LAB" throttle --name "$NAME" -- 3 200mbit
rc=0
validate "$work/link.out" 3 --size 4M || rc=$?
if [[ $rc == 1 ]] && grep -q "^FAIL: n3 (slow with every peer: its network)$" "$work/link.out" &&
  grep -q "^SLOW NODE: n3: its best pair reaches" "$work/link.out" &&
  ! grep -q "^SLOW NODE: n[124]\|^SLOW LINK" "$work/link.out"; then
  pass "n3's link throttled to 200 Mbit/s: FAIL naming n3 (and nothing else), exit 1"
else fail "throttled n3 (exit $rc): $(cat "$work/link.out")"; fi
"$LAB" throttle --name "$NAME" -- 3 off

"$LAB" cpu-quota --name "$NAME" -- 2 5
rc=0
validate "$work/cpu.out" 5 --size 16M --sweep never || rc=$?
if [[ $rc == 1 ]] && grep -q "^FAIL: n2 (its own all-reduce is slow)$" "$work/cpu.out" &&
  grep -q "^SLOW NODE: n2: its own all-reduce reaches .* of the nodes' median" "$work/cpu.out" &&
  ! grep -q "^SLOW NODE: n[134]" "$work/cpu.out"; then
  pass "n2 held to 5% of a CPU: FAIL naming n2 in the per-node stage, exit 1"
else fail "slow n2 (exit $rc): $(cat "$work/cpu.out")"; fi
"$LAB" cpu-quota --name "$NAME" -- 2 off

rc=0
"$LAB" run --name "$NAME" -- "$BENCH" validate --backend cpu >"$work/out" 2>&1 || rc=$?
if [[ $rc == 2 ]] && grep -q "validate runs inside an allocation, as its srun steps do: salloc -N4 deepops-bench validate" "$work/out"; then
  pass "validate outside an allocation: says to use salloc, exit 2"
else fail "outside an allocation (exit $rc): $(cat "$work/out")"; fi

rc=0
"$LAB" run --name "$NAME" -- timeout 120 salloc -N1 "$BENCH" validate --backend cpu --profile no-such \
  >"$work/profile.out" 2>&1 || rc=$?
if [[ $rc == 2 ]] && grep -q "no-such" "$work/profile.out" && grep -q "/etc/deepops/bench" "$work/profile.out" &&
  ! grep -q "stage 1" "$work/profile.out"; then
  pass "an unknown profile: exit 2 before any run, naming where profiles are looked for"
else fail "unknown profile (exit $rc): $(cat "$work/profile.out")"; fi

echo "bench_validate_test: $failures failure(s)"
exit $((failures > 0))
