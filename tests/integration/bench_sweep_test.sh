#!/usr/bin/env bash
# deepops-bench sweep on the 4-node network-namespace lab: with every link
# free it names no node; with one node's link throttled by tc (both ways) it
# names that node as slow, and only that one, and exits 1. Runs as the lab
# user inside `salloc -N4`, as an admin would.
#
# Usage: bench_sweep_test.sh DEEPOPS_BENCH   (DEEPOPS_TEST_LAB: another lab than net)
set -euo pipefail
BENCH=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
LAB=$HERE/../lab/lab
NAME=${DEEPOPS_TEST_LAB:-net}
work=$(mktemp -d)
chmod 1777 "$work" # the lab user writes the JSON here
# shellcheck source=tests/support/checks.sh
source "$(dirname "$0")/../support/checks.sh"
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  "$LAB" throttle --name "$NAME" -- 3 off >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# sweep OUT JSON: a cpu sweep of the lab's 4 nodes, one pair at a time (its
# nodes share this machine's two cores, so figures wander: outliers are
# nodes below half the others, where the throttled one is near 2%), 4 MiB
# per all-reduce; its exit status.
sweep() {
  local rc=0
  "$LAB" run --name "$NAME" -- timeout 600 salloc -N4 "$BENCH" sweep --backend cpu --size 4M \
    -n 3 -w 1 --parallel 1 --threshold 0.5 --timeout 120 -J "$2" >"$1" 2>&1 || rc=$?
  return $rc
}
# slow_nodes JSON: the nodes the sweep called slow, space-separated.
slow_nodes() {
  python3 -c 'import json,sys; print(" ".join(n["node"] for n in json.load(open(sys.argv[1]))["node_verdicts"] if n["slow"]))' "$1"
}

rc=0
sweep "$work/free.out" "$work/free.json" || rc=$?
if [[ $rc == 0 ]] && [[ -z $(slow_nodes "$work/free.json") ]] && grep -q "^PASS: 4 nodes, 6 pairs" "$work/free.out"; then
  pass "sweep with every link free: 6 pairs, no slow node, exit 0"
else fail "free links (exit $rc): $(cat "$work/free.out")"; fi

"$LAB" throttle --name "$NAME" -- 3 200mbit
rc=0
sweep "$work/slow.out" "$work/slow.json" || rc=$?
if [[ $rc == 1 ]] && [[ $(slow_nodes "$work/slow.json") == n3 ]] &&
  grep -q "^SLOW NODE: n3: its best pair reaches" "$work/slow.out" &&
  grep -q "^# ring without n3: busbw" "$work/slow.out" && ! grep -q "^SLOW LINK" "$work/slow.out"; then
  pass "n3 throttled to 200 Mbit/s: sweep names n3 (and no other node or link), exit 1"
else fail "throttled n3 (exit $rc): $(cat "$work/slow.out")"; fi

rc=0
"$LAB" run --name "$NAME" -- "$BENCH" sweep --backend cpu >"$work/out" 2>&1 || rc=$?
if [[ $rc == 2 ]] && grep -q "sweep runs inside an allocation" "$work/out"; then
  pass "sweep outside an allocation: says to use salloc, exit 2"
else fail "outside an allocation (exit $rc): $(cat "$work/out")"; fi

echo "bench_sweep_test: $failures failure(s)"
exit $((failures > 0))
