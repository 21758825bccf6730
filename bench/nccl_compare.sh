#!/usr/bin/env bash
# deepops-bench's nccl backend beside nccl-tests' all_reduce_perf on the same
# GPU(s), in the same run: rounds alternate between the two so that clock and
# thermal drift hit both alike; per message size the median over the rounds.
#
#   bench/nccl_compare.sh ALL_REDUCE_PERF [DEEPOPS_BENCH] [-- ARGS...]
#
# ARGS are the nccl-tests options both get (default: -b 8 -e 8G -f 2 -g 1 -n 20
# -w 5 -c 0: timing only; correctness is each tool's own test). ROUNDS=3 by default. Single-process: run it under srun/mpirun
# yourself for several nodes. Prints one table; the ratio column is
# deepops-bench / all_reduce_perf for out-of-place time and bus bandwidth.
set -euo pipefail

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}
[[ $# -ge 1 && $1 != -h && $1 != --help ]] || usage
reference=$1
shift
ours=${DEEPOPS_BENCH:-$(dirname "$0")/../build/bench/deepops-bench}
if [[ $# -ge 1 && $1 != -- ]]; then
  ours=$1
  shift
fi
[[ ${1:-} == -- ]] && shift
args=("$@")
[[ ${#args[@]} -gt 0 ]] || args=(-b 8 -e 8G -f 2 -g 1 -n 20 -w 5 -c 0)
rounds=${ROUNDS:-3}
for tool in "$reference" "$ours"; do
  [[ -x $tool ]] || {
    echo "nccl_compare: $tool is not an executable" >&2
    exit 2
  }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for ((r = 1; r <= rounds; r++)); do
  "$reference" "${args[@]}" >"$work/ref.$r"
  "$ours" allreduce --backend nccl "${args[@]}" >"$work/ours.$r" || [[ $? == 1 ]]
done

# shellcheck source=bench/table_lib.sh
source "$(dirname "$0")/table_lib.sh"
medians "$work"/ref.* >"$work/ref"
medians "$work"/ours.* >"$work/ours"

echo "# deepops-bench vs nccl-tests all_reduce_perf, out of place, median of $rounds rounds"
grep -E '^# deepops-bench allreduce|^#   rank' "$work/ours.1" || true
grep -E 'nThread|^# +Rank' "$work/ref.1" | sed 's/^#* */# nccl-tests: /' || true
join "$work/ref" "$work/ours" | awk '
  BEGIN { printf "%12s %14s %14s %8s %12s %12s %10s %8s\n", "size (B)", "nccl-tests us",
          "deepops us", "time x", "nccl busbw", "ours busbw", "nccl check", "ours" }
  { ratio = $2 > 0 ? $5 / $2 : 0
    printf "%12d %14.2f %14.2f %8.3f %12.2f %12.2f %10s %8s\n", $1, $2, $5, ratio, $3, $6, $4, $7 }'
echo "# time x: deepops-bench time / all_reduce_perf time (1.000 = the same; < 1.03 is the target)"
