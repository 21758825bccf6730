#!/usr/bin/env bash
# Benchmark of a containerised Slurm step: `srun --container-image=IMAGE true`
# with the image cached, beside `srun true` in the same rounds, as the lab's
# unprivileged user on a one-node lab. Rows:
#   srun true                        the step without a container (the baseline)
#   srun --container-image=REF       a registry reference: the plugin asks the
#                                    registry whether the tag moved, then starts
#                                    from the cached squashfs (tiny and the
#                                    118 MB Debian+OpenMPI image)
#   srun --container-image=./F.sqsh  a squashfs file: no registry round trip
#   deepops-ctr start REF true       the runtime alone, outside Slurm
# Rounds run every row once, so drifting load falls on all rows alike; WARMUP
# rounds, then RUNS timed. Prints median, min and p90 per row, the overhead
# over `srun true`, and a verdict against the target (../shared/TARGETS.md:
# median overhead <= 150 ms). Never fails on a time.
#
# Usage (root): bench/srun.sh [BUILD_DIR]   (default ./build; not built here)
# Env: RUNS (default 30), WARMUP (default 3). Starts its own lab `bsrun`
# (1 node, loopback, ports 18200..18230) and always tears it down.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BUILD=${1:-${BUILD_DIR:-$REPO/build}}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
LAB=bsrun
PORTS=18200
TARGET_MS=150

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
say() { printf 'bench: %s\n' "$*" >&2; }

[[ $(id -u) -eq 0 ]] || die "run as root (it starts a lab)"
[[ $RUNS =~ ^[0-9]+$ && $WARMUP =~ ^[0-9]+$ && $RUNS -ge 2 && $RUNS -le 10000 ]] ||
  die "RUNS (2..10000) and WARMUP must be integers"
PLUGIN=$BUILD/spank/spank_deepops.so
CTR=$BUILD/runtime/deepops-ctr
[[ -f $PLUGIN && -x $CTR ]] || die "build first: cmake -S . -B build -G Ninja && cmake --build build"

work=
cleanup() {
  tests/lab/lab down --name "$LAB" >/dev/null 2>&1 || true
  if [[ -n $work ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
say "starting lab $LAB with the plugin"
tests/lab/lab up --name "$LAB" --mode loopback --nodes 1 --ports "$PORTS" --no-apt >/dev/null
tests/lab/lab plugin --name "$LAB" -- "$PLUGIN" >/dev/null 2>&1
# shellcheck disable=SC1090
source "${DEEPOPS_LAB_ROOT:-/var/lib/deepops-lab}/$LAB/env"
work=$(mktemp -d /var/tmp/deepops-bench-srun.XXXXXX)
chmod 0755 "$work"
chown "$DEEPOPS_LAB_USER:" "$work"
echo "CACHE_PATH $work/cache" >"$DEEPOPS_LAB/deepops/etc/conf.d/bench.conf"
# shellcheck disable=SC2016 # $0 and $@ belong to the inner shell
as_user() { tests/lab/lab run --name "$LAB" -- bash -c 'cd "$0" && exec "$@"' "$work" "$@"; }

TINY=$DEEPOPS_LAB_REGISTRY/deepops/tiny
DEBIAN=$DEEPOPS_LAB_REGISTRY/deepops/debian-openmpi
say "importing the images (first steps, untimed)"
for image in "$TINY" "$DEBIAN"; do
  as_user srun --container-image="$image" true 2>"$work/first.err" ||
    die "srun --container-image=$image true failed: $(cat "$work/first.err")"
done
as_user env DEEPOPS_CACHE_PATH="$work/cache" "$CTR" import -q -o "$work/tiny.sqsh" \
  --allow-http "$DEEPOPS_LAB_REGISTRY" "$TINY" >/dev/null

keys=(plain tiny debian file ctr)
declare -A CMD=(
  [plain]="srun true"
  [tiny]="srun --container-image=$TINY true"
  [debian]="srun --container-image=$DEBIAN true"
  [file]="srun --container-image=./tiny.sqsh true"
  [ctr]="env DEEPOPS_CACHE_PATH=$work/cache $CTR start $TINY true"
)
declare -A LABEL=(
  [plain]="srun true (no container)"
  [tiny]="srun --container-image=tiny (registry ref)"
  [debian]="srun --container-image=debian-openmpi (118 MB)"
  [file]="srun --container-image=./tiny.sqsh (file)"
  [ctr]="deepops-ctr start tiny true (no Slurm)"
)
say "timing $WARMUP warm-up + $RUNS rounds of ${#keys[@]} rows"
args=()
for k in "${keys[@]}"; do args+=("$k" "${CMD[$k]}"); done
# shellcheck disable=SC2016 # the loop runs as the lab user
as_user bash -c 'warmup=$1 runs=$2; shift 2
  for ((r = 1; r <= warmup + runs; r++)); do
    for ((i = 1; i <= $#; i += 2)); do
      key=${!i}; j=$((i + 1)); cmd=${!j}
      t0=$EPOCHREALTIME
      eval "$cmd" >/dev/null 2>"$key.err" || { echo "failed: $cmd: $(cat "$key.err")" >&2; exit 1; }
      t1=$EPOCHREALTIME
      if ((r > warmup)); then echo $((${t1/./} - ${t0/./})) >>"$key.us"; fi
    done
  done' _ "$WARMUP" "$RUNS" "${args[@]}" || die "a measured command failed"

declare -A MED MIN P90
for k in "${keys[@]}"; do
  read -r "MED[$k]" "MIN[$k]" "P90[$k]" < <(sort -n "$work/$k.us" | awk '{ t[NR] = $1 / 1000 }
    END { m = NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
          p = int(NR * 0.9); if (p < NR * 0.9) p++
          printf "%.1f %.1f %.1f\n", m, t[1], t[p] }')
done
printf '\n%-48s %9s %9s %9s %14s\n' "step ($RUNS rounds)" "median" "min" "p90" "over srun true"
for k in "${keys[@]}"; do
  over=$(awk -v a="${MED[$k]}" -v b="${MED[plain]}" 'BEGIN { printf "%+.1f ms", a - b }')
  [[ $k == plain || $k == ctr ]] && over="-"
  printf '%-48s %7s ms %7s ms %7s ms %14s\n' "${LABEL[$k]}" "${MED[$k]}" "${MIN[$k]}" "${P90[$k]}" "$over"
done
worst=tiny
for k in debian file; do
  if awk -v a="${MED[$k]}" -v b="${MED[$worst]}" 'BEGIN { exit !(a > b) }'; then worst=$k; fi
done
overhead=$(awk -v a="${MED[$worst]}" -v b="${MED[plain]}" 'BEGIN { printf "%.1f", a - b }')
verdict=$(awk -v o="$overhead" -v t="$TARGET_MS" 'BEGIN { print (o <= t) ? "met" : "NOT met" }')
printf '\ntarget: median overhead of a cached container step <= %s ms: %s (worst row %s: +%s ms)\n' \
  "$TARGET_MS" "$verdict" "${LABEL[$worst]}" "$overhead"
