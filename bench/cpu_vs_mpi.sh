#!/usr/bin/env bash
# The cpu backend's speed beside Open MPI's MPI_Allreduce, same machine, same
# run: rounds alternate between them so that load drift hits all alike; per
# message size the median over the rounds.
#
#   bench/cpu_vs_mpi.sh [BUILD_DIR]     (default: build)
#
# Rows: deepops-bench --backend cpu -np N (a TCP ring over loopback), and
# MPI_Allreduce (bench/src/mpi_reference.cpp) over TCP on loopback (btl
# tcp,self: the like-for-like yardstick, target >= 0.9x at >= 64 MiB) and over
# Open MPI's default shared-memory transport (for information: no network).
# NP=2 ranks, SIZES="-b 64M -e 1G -f 2", ROUNDS=3, ITERS=10 by default.
set -euo pipefail
build=${1:-build}
bench=$build/bench/deepops-bench
reference=$build/bench/deepops-bench-mpi-reference
for tool in "$bench" "$reference"; do
  [[ -x $tool ]] || {
    echo "cpu_vs_mpi: $tool is missing: build first (cmake --build $build)" >&2
    exit 2
  }
done
np=${NP:-2}
read -r -a sizes <<<"${SIZES:--b 64M -e 1G -f 2}"
rounds=${ROUNDS:-3}
iters=(-n "${ITERS:-10}" -w 2)
# shellcheck source=bench/table_lib.sh
source "$(dirname "$0")/table_lib.sh"
mpi=(mpirun -np "$np")
[[ $(id -u) == 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for ((r = 1; r <= rounds; r++)); do
  "$bench" allreduce --backend cpu -np "$np" "${sizes[@]}" "${iters[@]}" >"$work/ours.$r"
  "${mpi[@]}" --mca btl tcp,self --mca btl_tcp_if_include lo "$reference" "${sizes[@]}" \
    "${iters[@]}" >"$work/tcp.$r"
  "${mpi[@]}" "$reference" "${sizes[@]}" "${iters[@]}" >"$work/shm.$r"
done
for t in ours tcp shm; do medians "$work/$t".* >"$work/$t"; done

echo "# deepops-bench --backend cpu vs MPI_Allreduce, $np ranks on $(hostname), $(nproc) cores,"
echo "# float sum, out of place, median of $rounds rounds; busbw in GB/s"
join "$work/ours" "$work/tcp" | join - "$work/shm" | awk '
  BEGIN { printf "%12s %12s %14s %8s %14s %8s %8s\n", "size (B)", "deepops cpu", "MPI tcp (lo)",
          "ratio", "MPI shm", "ratio", "wrong" }
  { printf "%12d %12.2f %14.2f %8.2f %14.2f %8.2f %8s\n", $1, $3, $6, ($6 > 0 ? $3 / $6 : 0),
           $9, ($9 > 0 ? $3 / $9 : 0), $4 + $7 + $10 }'
echo "# ratio: deepops-bench busbw / MPI busbw (target >= 0.90 against MPI over TCP at >= 64 MiB)"
