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
# With OLD_BUILD_DIR, the same steps run in the same rounds on a second lab
# whose plugin is that build's (another version, e.g. a worktree of the
# previous release): the old way, side by side, under the same load.
# Rounds run every row once, so drifting load falls on all rows alike; WARMUP
# rounds, then RUNS timed. Prints median, min and p90 per row, the overhead
# over its lab's `srun true`, and a verdict against the target (median
# overhead <= 100 ms). Never fails on a time.
#
# Usage (root): bench/srun.sh [BUILD_DIR [OLD_BUILD_DIR]]   (default ./build;
# not built here). Env: RUNS (default 30), WARMUP (default 3). Starts its own
# labs `bsrun` (1 node, loopback, ports 18200..18230) and `bsold` (ports
# 18240..18270), and always tears them down.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BUILD=$(readlink -f "${1:-${BUILD_DIR:-$REPO/build}}")
OLD_BUILD=${2:+$(readlink -f "$2")}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
LAB=bsrun
PORTS=18200
OLD_LAB=bsold
OLD_PORTS=18240
TARGET_MS=100

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
say() { printf 'bench: %s\n' "$*" >&2; }

[[ $(id -u) -eq 0 ]] || die "run as root (it starts a lab)"
[[ $RUNS =~ ^[0-9]+$ && $WARMUP =~ ^[0-9]+$ && $RUNS -ge 2 && $RUNS -le 10000 ]] ||
  die "RUNS (2..10000) and WARMUP must be integers"
PLUGIN=$BUILD/spank/spank_deepops.so
CTR=$BUILD/runtime/deepops-ctr
[[ -f $PLUGIN && -x $CTR ]] || die "build first: cmake -S . -B build -G Ninja && cmake --build build"
if [[ -n $OLD_BUILD ]]; then
  [[ -f $OLD_BUILD/spank/spank_deepops.so ]] || die "no plugin in $OLD_BUILD/spank"
fi

work=
cleanup() {
  tests/lab/lab down --name "$LAB" >/dev/null 2>&1 || true
  if [[ -n $OLD_BUILD ]]; then tests/lab/lab down --name "$OLD_LAB" >/dev/null 2>&1 || true; fi
  if [[ -n $work ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
LABS=${DEEPOPS_LAB_ROOT:-/var/lib/deepops-lab}
work=$(mktemp -d /var/tmp/deepops-bench-srun.XXXXXX)
chmod 0755 "$work"
# start_lab NAME PORTS PLUGIN CACHE: a one-node lab with that plugin.
start_lab() {
  say "starting lab $1 with $3"
  tests/lab/lab up --name "$1" --mode loopback --nodes 1 --ports "$2" --no-apt >/dev/null
  tests/lab/lab plugin --name "$1" -- "$3" >/dev/null 2>&1
  echo "CACHE_PATH $4" >"$LABS/$1/deepops/etc/conf.d/bench.conf"
}
start_lab "$LAB" "$PORTS" "$PLUGIN" "$work/cache"
if [[ -n $OLD_BUILD ]]; then
  start_lab "$OLD_LAB" "$OLD_PORTS" "$OLD_BUILD/spank/spank_deepops.so" "$work/cache-old"
  OLD_CONF=$(sed -n 's/^export SLURM_CONF=//p' "$LABS/$OLD_LAB/env")
  OLD_REGISTRY=$(sed -n 's/^export DEEPOPS_LAB_REGISTRY=//p' "$LABS/$OLD_LAB/env")
fi
# shellcheck disable=SC1090
source "$LABS/$LAB/env"
chown "$DEEPOPS_LAB_USER:" "$work"
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
if [[ -n $OLD_BUILD ]]; then
  for image in "$OLD_REGISTRY/deepops/tiny" "$OLD_REGISTRY/deepops/debian-openmpi"; do
    as_user env SLURM_CONF="$OLD_CONF" srun --container-image="$image" true 2>"$work/first.err" ||
      die "old plugin: srun --container-image=$image true failed: $(cat "$work/first.err")"
  done
fi

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
if [[ -n $OLD_BUILD ]]; then
  old="env SLURM_CONF=$OLD_CONF srun"
  keys+=(old_plain old_tiny old_debian old_file)
  CMD+=([old_plain]="$old true" [old_tiny]="$old --container-image=$OLD_REGISTRY/deepops/tiny true"
    [old_debian]="$old --container-image=$OLD_REGISTRY/deepops/debian-openmpi true"
    [old_file]="$old --container-image=./tiny.sqsh true")
  LABEL+=([old_plain]="old: srun true (no container)" [old_tiny]="old: srun --container-image=tiny"
    [old_debian]="old: srun --container-image=debian-openmpi" [old_file]="old: srun --container-image=./tiny.sqsh")
fi
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
  base=plain
  [[ $k == old_* ]] && base=old_plain
  over=$(awk -v a="${MED[$k]}" -v b="${MED[$base]}" 'BEGIN { printf "%+.1f ms", a - b }')
  [[ $k == plain || $k == old_plain || $k == ctr ]] && over="-"
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
if [[ -n $OLD_BUILD ]]; then
  for k in tiny debian file; do
    diff=$(awk -v n="${MED[$k]}" -v nb="${MED[plain]}" -v o="${MED[old_$k]}" -v ob="${MED[old_plain]}" \
      'BEGIN { printf "%+.1f", (n - nb) - (o - ob) }')
    printf 'this build vs %s, %s: %s ms of overhead\n' "$OLD_BUILD" "${LABEL[$k]}" "$diff"
  done
fi
