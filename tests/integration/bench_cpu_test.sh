#!/usr/bin/env bash
# deepops-bench allreduce, cpu backend: correct tables from every element
# type and reduction, a deliberately corrupted reduction caught in #wrong and
# the exit status, the --expect verdict, every launcher (-np, mpirun, and srun
# across the lab's two nodes, rank 0's rendezvous given as
# MASTER_ADDR/MASTER_PORT), and the nccl backend on a machine without a GPU.
#
# Usage: bench_cpu_test.sh DEEPOPS_BENCH   (DEEPOPS_TEST_LAB: another lab than main)
set -euo pipefail
BENCH=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
LAB=$HERE/../lab/lab
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=tests/support/checks.sh
source "$(dirname "$0")/../support/checks.sh"
# rows FILE: the table's data rows.
rows() { grep -E '^ +[0-9]+ +[0-9]+ ' "$1" || true; }
# all_right FILE N: N rows, each with 0 wrong out of place and in place.
all_right() {
  [[ $(rows "$1" | wc -l) == "$2" ]] && [[ -z $(rows "$1" | awk '$9 != 0 || $13 != 0') ]] &&
    grep -q "^# Out of bounds values : 0 OK" "$1" && grep -q "^PASS" "$1"
}

for d in float half bfloat16 int32; do
  for o in sum prod min max; do
    if timeout 120 "$BENCH" allreduce --backend cpu -np 3 -b 8 -e 256K -f 8 -n 2 -w 1 -d "$d" -o "$o" >"$work/out" 2>&1 &&
      all_right "$work/out" 6; then :; else fail "-np 3 -d $d -o $o: $(head -c 600 "$work/out")"; fi
  done
done
[[ $failures == 0 ]] && pass "-np 3: every type and reduction, 6 sizes each, 0 wrong, PASS"

rc=0
DEEPOPS_BENCH_TEST_CORRUPT=1 timeout 60 "$BENCH" allreduce --backend cpu -np 4 -b 1K -e 4K -f 2 -n 1 -w 0 >"$work/out" 2>&1 || rc=$?
if [[ $rc == 1 ]] && [[ -z $(rows "$work/out" | awk '$9 != 4 || $13 != 4') ]] &&
  grep -q "^# Out of bounds values : 24 FAILED" "$work/out" && grep -q "^FAIL: 24 wrong" "$work/out"; then
  pass "a corrupted reduction: one wrong element per rank in #wrong, FAIL, exit 1"
else fail "corruption (exit $rc): $(cat "$work/out")"; fi

rc=0
timeout 60 "$BENCH" allreduce --backend cpu -np 2 -b 1M -e 1M -n 2 -w 0 --expect 100000 >"$work/out" 2>&1 || rc=$?
if [[ $rc == 1 ]] && grep -q "^FAIL: busbw .* below the expected 100000.00 GB/s" "$work/out"; then
  pass "--expect above what the machine does: FAIL naming the figures, exit 1"
else fail "--expect (exit $rc): $(cat "$work/out")"; fi

rc=0
timeout 60 "$BENCH" allreduce --backend cpu -np 2 -b 64 -e 32 >"$work/out" 2>&1 || rc=$?
if [[ $rc == 2 ]] && grep -q "minimum size (-b) is above the maximum" "$work/out"; then
  pass "a usage error: its reason, exit 2"
else fail "usage error (exit $rc): $(cat "$work/out")"; fi

# -np out of bounds: refused before anything forks (-np 100000 once forked
# ~10,000 ranks; -np 0 and -3 ran one rank and printed PASS).
for np in 0 -3 100000; do
  rc=0
  timeout 30 "$BENCH" allreduce --backend cpu -np "$np" -b 8 -e 8 >"$work/out" 2>&1 || rc=$?
  if [[ $rc == 2 ]] && grep -q "not in range.*256" "$work/out" && ! grep -q "PASS\|^#" "$work/out"; then
    pass "-np $np: refused before any rank starts, exit 2"
  else fail "-np $np (exit $rc): $(head -c 300 "$work/out")"; fi
done
# A bad input is refused once, not once per rank.
rc=0
timeout 30 "$BENCH" allreduce --backend cpu -np 3 -o avg -b 8 -e 8 >"$work/out" 2>&1 || rc=$?
if [[ $rc == 2 && $(grep -c "unknown reduction 'avg'" "$work/out") == 1 ]]; then
  pass "-np 3 -o avg: one error line, exit 2"
else fail "-np 3 -o avg (exit $rc): $(head -c 300 "$work/out")"; fi

# No orphans: one rank SIGKILLed mid-run, then the parent SIGTERMed, then the
# parent SIGKILLed: every time, no rank is left (ps), and the parent says why.
mark=$work/np-run.json  # in every rank's command line: how ps finds them
ranks_left() { pgrep -f -- "$mark" | wc -l; }
# shellcheck disable=SC2317 # called through wait_until
no_ranks_left() { [[ $(ranks_left) == 0 ]]; }
start_long_run() {
  "$BENCH" allreduce --backend cpu -np 4 -b 1M -e 256M -n 500 -w 1 -J "$mark" >"$work/out" 2>&1 &
  parent=$!
  # shellcheck disable=SC2317 # called through wait_until
  four_ranks() { [[ $(pgrep -P "$parent" | wc -l) == 4 ]]; }
  wait_until 300 four_ranks || fail "-np 4: the four ranks never ran"
}
start_long_run
pgrep -P "$parent" | sed -n 2p | xargs -r kill -KILL
rc=0
wait "$parent" || rc=$?
if [[ $rc == 2 ]] && wait_until 100 no_ranks_left && grep -q "rank [0-9] died of signal 9 (Killed): stopping the other 3 ranks" "$work/out"; then
  pass "-np 4, one rank SIGKILLed: the others stopped, exit 2, none left"
else fail "-np 4, a rank killed (exit $rc, $(ranks_left) left): $(tail -c 300 "$work/out")"; fi
start_long_run
kill -TERM "$parent"
rc=0
wait "$parent" || rc=$?
if [[ $rc == 143 ]] && no_ranks_left && grep -q "signal 15 (Terminated): stopping the 4 ranks" "$work/out"; then
  pass "-np 4, the parent SIGTERMed: it reaps all four ranks first, exit 143"
else fail "-np 4, parent SIGTERMed (exit $rc, $(ranks_left) left): $(tail -c 300 "$work/out")"; fi
start_long_run
kill -KILL "$parent"
wait "$parent" 2>/dev/null || true
if wait_until 100 no_ranks_left; then
  pass "-np 4, the parent SIGKILLed: the ranks die with it"
else fail "-np 4, parent SIGKILLed: $(ranks_left) ranks left"; fi

# The nccl backend (the default) where there is no GPU: one clear message,
# even for several ranks, and exit 2.
if ldconfig -p | grep -q 'libcuda\.so\.1 '; then
  echo "SKIP no-GPU message: this machine has an NVIDIA driver"
else
  rc=0
  timeout 60 "$BENCH" allreduce -np 2 -b 1M -e 1M >"$work/out" 2>&1 || rc=$?
  if [[ $rc == 2 ]] && [[ $(grep -c "no GPU" "$work/out") == 1 ]] &&
    grep -q -- "--backend cpu" "$work/out" && ! grep -q "built without" "$work/out"; then
    pass "nccl backend without a GPU: one 'no GPU' line naming --backend cpu, exit 2"
  else fail "no GPU (exit $rc): $(cat "$work/out")"; fi
fi

# mpirun: ranks from OMPI_COMM_WORLD_*, as root here (CI runs as root).
port=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768-)
rc=0
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 mpirun --oversubscribe -np 3 \
  -x MASTER_ADDR=127.0.0.1 -x MASTER_PORT="$port" \
  "$BENCH" allreduce --backend cpu -b 8 -e 1M -f 8 -n 2 -w 1 >"$work/out" 2>&1 || rc=$?
if [[ $rc == 0 ]] && all_right "$work/out" 6 && grep -q "3 ranks on 1 node(s) (mpirun)" "$work/out"; then
  pass "mpirun -np 3: 6 sizes, 0 wrong, PASS"
else fail "mpirun (exit $rc): $(head -c 800 "$work/out")"; fi

# srun across the lab's nodes (loopback: rank 0 is on 127.0.0.1).
# shellcheck disable=SC1090
source "/var/lib/deepops-lab/${DEEPOPS_TEST_LAB:-main}/env"
port=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768-)
out=$("$LAB" run --name "${DEEPOPS_TEST_LAB:-main}" -- env MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" \
  timeout 300 srun -N2 -n4 "$BENCH" allreduce --backend cpu -b 8 -e 64M -f 2 -n 2 -w 1 2>&1 || true)
echo "$out" >"$work/srun"
if all_right "$work/srun" 24 && grep -q "4 ranks on 2 node(s) (srun)" "$work/srun"; then
  pass "srun -N2 -n4 allreduce -b 8 -e 64M -f 2: 24 sizes, 0 wrong, PASS"
else fail "srun -N2 -n4: $(head -c 800 "$work/srun")"; fi

# srun with no MASTER_ADDR: rank 0 is the step's first node; its name does not
# resolve in the lab, so the ranks take Slurm's NodeAddr for it.
out=$("$LAB" run --name "${DEEPOPS_TEST_LAB:-main}" -- \
  timeout 300 srun -N2 -n2 "$BENCH" allreduce --backend cpu -b 1M -e 4M -f 2 -n 2 -w 1 2>&1 || true)
echo "$out" >"$work/srun-auto"
if all_right "$work/srun-auto" 3 && grep -q "2 ranks on 2 node(s) (srun)" "$work/srun-auto"; then
  pass "srun -N2 -n2 without MASTER_ADDR: rank 0 found from the step's node list, 0 wrong, PASS"
else fail "srun without MASTER_ADDR: $(head -c 800 "$work/srun-auto")"; fi

# A rank of an srun step SIGKILLed mid-run: its peers notice the lost
# connection and end, each with one line naming the rank it lost, well
# before the ring's 60 s no-progress limit; none is left behind.
smark=/tmp/deepops-bench-peer-loss-$$.json # in every rank's command line; never written
step_ranks() { # the ranks themselves, not srun or timeout, whose command lines hold it too
  ps -u "${DEEPOPS_LAB_USER:-deepops-test}" -o pid=,comm=,args= |
    awk -v m="$smark" '$2 == "deepops-bench" && index($0, m) { print $1 }'
}
# shellcheck disable=SC2317 # called through wait_until
four_step_ranks() { [[ $(step_ranks | wc -l) == 4 ]]; }
# shellcheck disable=SC2317 # called through wait_until
no_step_ranks() { [[ -z $(step_ranks) ]]; }
"$LAB" run --name "${DEEPOPS_TEST_LAB:-main}" -- timeout 300 srun -N2 -n4 "$BENCH" allreduce \
  --backend cpu -b 16M -e 16M -n 100000 -w 1 -J "$smark" >"$work/peer" 2>&1 &
srun_pid=$!
# shellcheck disable=SC2317 # called through wait_until
ring_formed() { grep -q "^# deepops-bench allreduce: 4 ranks on 2 node(s)" "$work/peer"; }
# Killed once the ring has formed (rank 0 prints its header then): before,
# the others would wait out the rendezvous deadline for the dead rank.
if wait_until 120 four_step_ranks && wait_until 120 ring_formed; then
  step_ranks | sed -n 3p | xargs -r kill -KILL
  if wait_until 30 no_step_ranks; then
    wait "$srun_pid" || true
    lines=$(grep "^deepops-bench: " "$work/peer" || true)
    if [[ -n $lines ]] && ! grep -vqE "^deepops-bench: rank [0-3] lost rank [0-3], its (next|previous) in the ring \(.*\): did rank [0-3] die\? This rank stops too$" <<<"$lines"; then
      pass "srun -n4, one rank SIGKILLed: the others end within seconds, each with one line naming the rank lost"
    else fail "srun peer loss: the ranks' lines: $(cat "$work/peer")"; fi
  else
    fail "srun peer loss: $(step_ranks | wc -l) ranks still run 30 s after one was killed"
    step_ranks | xargs -r kill -KILL
    wait "$srun_pid" || true
  fi
else
  fail "srun peer loss: the four ranks never formed their ring: $(cat "$work/peer")"
  wait "$srun_pid" || true
fi

echo "bench_cpu_test: $failures failure(s)"
exit $((failures > 0))
