#!/usr/bin/env bash
# Benchmark of `deepops-ctr start IMAGE true`, cached image, as the lab's
# unprivileged user, for the tiny image and the >= 2 GB lab image, beside
# the pieces measured in the same run (these machines are noisy, so results
# are ratios):
#   floor      unshare -Urm true (user + mount namespace alone), and
#              squashfuse_ll mount + umount of the same .sqsh in a user
#              namespace (the "x floor" reference of each image's rows)
#   binary     deepops-ctr --version: exec and dynamic linking of the binary
#              and its shared libraries, which every start pays
#   pieces     every piece of a start strung together with the stock tools:
#              userns, squashfuse_ll, a tmpfs-backed overlay (userxattr),
#              chroot true, umounts (one sh and six execs more than the floor)
#   old way    Enroot's create: unsquashfs of the large image into a folder
#              (needed before its first start), then a start of that folder
#              reduced to its core (unshare -Urm chroot DIR true)
# The fast rows run in rounds, each round running every row once: WARMUP
# rounds, then RUNS timed; median, min and p90 of each row's wall time.
# Prints a table and a verdict against the target (bench/README.md, Targets:
# median <= 30 ms, large within 10% of tiny). Never fails on a time.
#
# Usage (root): bench/start.sh [DEEPOPS_CTR]
#   DEEPOPS_CTR  the binary to measure (default: $BUILD_DIR/runtime/deepops-ctr,
#                BUILD_DIR default ./build); it is copied, so a rebuild during
#                the run does not change what is measured. Not built here.
# Env: RUNS (default 50), WARMUP (default 5), CREATE_RUNS (unsquashfs runs,
#      default 3), JSON_OUT (also write the results as JSON to this file).
# Starts its own lab `bstart` (1 node, loopback, ports 18100..18130) and always
# tears it down.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CTR_SRC=${1:-${DEEPOPS_CTR:-${BUILD_DIR:-$REPO/build}/runtime/deepops-ctr}}
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}
CREATE_RUNS=${CREATE_RUNS:-3}
JSON_OUT=${JSON_OUT:-}
LAB=bstart
PORTS=18100
TARGET_MS=30
TARGET_SPREAD=0.10

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
say() { printf 'bench: %s\n' "$*" >&2; }

# --rounds WARMUP RUNS DIR [--prepare CMD] KEY COMMAND...: the timing loop,
# run as the lab user (see `rounds` below). Round r runs every COMMAND once
# (after CMD, untimed, if given); rounds after the WARMUP first append each
# wall time, in microseconds, to DIR/KEY.us. A failing command stops it all.
if [[ ${1:-} == --rounds ]]; then
  warmup=$2 runs=$3 dir=$4 prepare=
  shift 4
  if [[ $1 == --prepare ]]; then prepare=$2; shift 2; fi
  keys=() cmds=()
  while (($#)); do keys+=("$1"); cmds+=("$2"); shift 2; done
  for ((r = 1; r <= warmup + runs; r++)); do
    for i in "${!keys[@]}"; do
      if [[ -n $prepare ]]; then eval "$prepare"; fi
      t0=$EPOCHREALTIME
      eval "${cmds[i]}" >/dev/null 2>"$dir/${keys[i]}.err" ||
        die "failed (exit $?): ${cmds[i]}: $(cat "$dir/${keys[i]}.err")"
      t1=$EPOCHREALTIME
      if ((r > warmup)); then echo $((${t1/./} - ${t0/./})) >>"$dir/${keys[i]}.us"; fi
    done
  done
  exit 0
fi
[[ $(id -u) -eq 0 ]] || die "run as root (it starts a lab)"
for n in "$RUNS" "$WARMUP" "$CREATE_RUNS"; do
  [[ $n =~ ^[0-9]+$ && $n -le 10000 ]] || die "RUNS, WARMUP and CREATE_RUNS must be integers <= 10000"
done
((RUNS >= 2 && CREATE_RUNS >= 1)) || die "RUNS must be >= 2 and CREATE_RUNS >= 1"
for tool in squashfuse_ll unsquashfs unshare skopeo jq bc; do
  command -v "$tool" >/dev/null || die "$tool is missing (packaging/install-deps.sh)"
done
[[ -x $CTR_SRC ]] || die "no deepops-ctr at $CTR_SRC; build it: cmake -S . -B build -G Ninja" \
  "-DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build --target deepops-ctr, or pass its path"

tests/images/build.sh tiny large

work=
cleanup() {
  tests/lab/lab down --name "$LAB" >/dev/null 2>&1 || true
  if [[ -n $work ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
say "starting lab $LAB"
tests/lab/lab up --name "$LAB" --mode loopback --nodes 1 --ports "$PORTS" --no-images --no-apt >/dev/null
# shellcheck disable=SC1090
source "${DEEPOPS_LAB_ROOT:-/var/lib/deepops-lab}/$LAB/env"
REG=$DEEPOPS_LAB_REGISTRY
LAB_USER=$DEEPOPS_LAB_USER
for image in tiny large; do
  skopeo copy -q --dest-tls-verify=false --preserve-digests \
    "oci:${DEEPOPS_IMAGE_CACHE:-/var/cache/deepops-lab/images}/$image:latest" "docker://$REG/deepops/$image:latest"
done

# Everything the lab user touches lives in one private folder it owns: the
# binary, the cache, the mount points, the extracted tree, the times.
work=$(mktemp -d /var/tmp/deepops-bench-start.XXXXXX)
CTR=$work/deepops-ctr
CACHE=$work/cache
cp "$CTR_SRC" "$CTR"
# deepops-ctr hands `import` to deepops-ctr-import, which it looks for beside itself.
if [[ -x $(dirname "$CTR_SRC")/deepops-ctr-import ]]; then
  cp "$(dirname "$CTR_SRC")/deepops-ctr-import" "$work/deepops-ctr-import"
fi
mkdir -p "$work/lower" "$work/ovl"
chown -R "$LAB_USER:" "$work"
chmod 0700 "$work"

as_user() { tests/lab/lab run --name "$LAB" -- env DEEPOPS_CACHE_PATH="$CACHE" "$@"; }

declare -A SQSH
for image in tiny large; do
  say "importing $image as $LAB_USER"
  SQSH[$image]=$(as_user "$CTR" import -q --allow-http "$REG" "$REG/deepops/$image") ||
    die "deepops-ctr import of $REG/deepops/$image failed (exit $?)"
  [[ -f ${SQSH[$image]} ]] || die "import of $image printed '${SQSH[$image]}', not an image file"
  # One start outside the timing, so that a failing start shows its own error.
  if ! as_user "$CTR" start "$REG/deepops/$image" true 2>"$work/start.err"; then
    die "deepops-ctr start $REG/deepops/$image true failed: $(cat "$work/start.err")"
  fi
done

# Times come from rounds run as the lab user by this script itself (--rounds,
# at the top): every round runs each command once, so the load of other jobs
# on this shared machine, which drifts over seconds, falls on every row alike
# and the ratios hold. Each run is timed with bash's $EPOCHREALTIME around
# fork + exec + wait, as hyperfine -N would.
cp "$REPO/bench/start.sh" "$work/start.sh"
chown "$LAB_USER:" "$work/start.sh"
declare -A MED MIN P90 LABEL
keys=()
# rounds WARMUP RUNS [--prepare CMD] KEY LABEL COMMAND [KEY LABEL COMMAND...]:
# COMMANDs (bash words) as the lab user; ms into MED/MIN/P90[KEY].
rounds() {
  local warmup=$1 runs=$2 args=() mine=() key
  shift 2
  if [[ $1 == --prepare ]]; then args=(--prepare "$2"); shift 2; fi
  while (($#)); do
    keys+=("$1")
    mine+=("$1")
    LABEL[$1]=$2
    args+=("$1" "$3")
    say "measuring: $2"
    shift 3
  done
  as_user bash "$work/start.sh" --rounds "$warmup" "$runs" "$work" "${args[@]}" || die "a measured command failed"
  for key in "${mine[@]}"; do
    read -r "MED[$key]" "MIN[$key]" "P90[$key]" < <(sort -n "$work/$key.us" | awk '{ t[NR] = $1 / 1000 }
      END { m = NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
            p = int(NR * 0.9); if (p < NR * 0.9) p++
            printf "%.3f %.3f %.3f\n", m, t[1], t[p] }')
  done
}

# squashfuse_ll without -f returns once the mount is up (it daemonizes after
# mounting) and its server exits when the mount goes away; with -f it would
# stay in the foreground and the command would never end.
fuse_cmd() { echo "unshare -Urm sh -c 'squashfuse_ll $1 $work/lower && umount $work/lower'"; }
pieces_cmd() {
  local o=$work/ovl
  echo "unshare -Urm sh -c 'squashfuse_ll $1 $work/lower && mount -t tmpfs tmpfs $o && mkdir $o/u $o/w $o/r &&" \
    "mount -t overlay overlay -o lowerdir=$work/lower,upperdir=$o/u,workdir=$o/w,userxattr $o/r &&" \
    "chroot $o/r /bin/true && umount $o/r $o $work/lower'"
}

# The old way first, warm (the image was just imported): before each
# extraction the previous tree is deleted (as root of a user namespace: some of
# its folders are read-only) and the disk synced, untimed; after the last, the
# tree stays for the chroot row and its writes are synced before the fast rows.
rounds 0 "$CREATE_RUNS" --prepare "unshare -Ur rm -rf $work/rootfs; sync" \
  create "old way: unsquashfs -d DIR (create), large" \
  "unshare -Ur unsquashfs -q -no-progress -d $work/rootfs ${SQSH[large]}"
sync
rounds "$WARMUP" "$RUNS" \
  userns "floor: unshare -Urm true" "unshare -Urm true" \
  version "binary: deepops-ctr --version (no container)" "$CTR --version" \
  fuse_tiny "floor: userns + squashfuse_ll mount/umount, tiny" "$(fuse_cmd "${SQSH[tiny]}")" \
  fuse_large "floor: userns + squashfuse_ll mount/umount, large" "$(fuse_cmd "${SQSH[large]}")" \
  pieces_tiny "pieces by stock tools (+overlay, chroot), tiny" "$(pieces_cmd "${SQSH[tiny]}")" \
  pieces_large "pieces by stock tools (+overlay, chroot), large" "$(pieces_cmd "${SQSH[large]}")" \
  chroot "old way: unshare -Urm chroot DIR true, large" "unshare -Urm chroot $work/rootfs /bin/true" \
  start_tiny "deepops-ctr start tiny true" "$CTR start $REG/deepops/tiny true" \
  start_large "deepops-ctr start large true" "$CTR start $REG/deepops/large true"

# Processes the starts and the floor rows left behind (squashfuse servers
# that did not exit, containers): the lab user's processes carrying this lab's
# marker, polled a bounded time since servers exit a little after their mount,
# and an image's shared server IMAGE_MOUNT_LINGER (10 s) after its last start.
leftovers() {
  local f n=0
  while read -r f; do
    [[ $(stat -c %U "${f%/environ}" 2>/dev/null) == "$LAB_USER" ]] && n=$((n + 1))
  done < <(grep -lzxF "DEEPOPS_LAB=$DEEPOPS_LAB" /proc/[0-9]*/environ 2>/dev/null)
  echo "$n"
}
for _ in $(seq 1 150); do
  left=$(leftovers)
  [[ $left -eq 0 ]] && break
  sleep 0.1
done

ratio() { echo "scale=6; $1 / $2" | bc -l; }
floor_of() { case $1 in *large | create | chroot) echo fuse_large ;; *) echo fuse_tiny ;; esac; }
row() { # LABEL MEDIAN MIN P90 FLOOR_KEY
  printf '%-50s %9.1f %9.1f %9.1f %8.2fx\n' "$1" "$2" "$3" "$4" "$(ratio "$2" "${MED[$5]}")"
}

printf '\nImages: tiny %s KB, large %s MB as squashfs (deepops-ctr import, zstd 1).\n' \
  "$(($(stat -c %s "${SQSH[tiny]}") / 1000))" "$(($(stat -c %s "${SQSH[large]}") / 1000000))"
printf 'deepops-ctr: %s shared libraries.\n' "$(ldd "$CTR" | grep -c '=> /')"
printf 'Machine: %s cores, kernel %s; %s; load average at the end: %s.\n' "$(nproc)" "$(uname -r)" \
  "$(date -u +%Y-%m-%dT%H:%MZ)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'As %s; warm-up rounds: %s, then timed rounds: %s, each running every row once (unsquashfs: %s runs);\nwall ms. The old way ran first, on the image just imported (warm page cache).\n' \
  "$LAB_USER" "$WARMUP" "$RUNS" "$CREATE_RUNS"
printf '"x floor": median over the median of the userns + squashfuse_ll floor, same image.\n\n'
printf '%-50s %9s %9s %9s %9s\n' "step" "median" "min" "p90" "x floor"
for key in userns version fuse_tiny fuse_large pieces_tiny pieces_large start_tiny start_large create chroot; do
  row "${LABEL[$key]}" "${MED[$key]}" "${MIN[$key]}" "${P90[$key]}" "$(floor_of "$key")"
done
old_first_med=$(echo "${MED[create]} + ${MED[chroot]}" | bc -l)
old_first_min=$(echo "${MIN[create]} + ${MIN[chroot]}" | bc -l)
old_first_p90=$(echo "${P90[create]} + ${P90[chroot]}" | bc -l)
row "old way: create + first start, large" "$old_first_med" "$old_first_min" "$old_first_p90" fuse_large

spread=$(printf '%.4f' "$(ratio "${MED[start_large]}" "${MED[start_tiny]}")")
printf '\nlarge / tiny, medians of deepops-ctr start: %.3f (%+.1f%%)\n' "$spread" "$(echo "($spread - 1) * 100" | bc -l)"
printf 'deepops-ctr start over the userns + squashfuse_ll floor: tiny %.2fx, large %.2fx\n' \
  "$(ratio "${MED[start_tiny]}" "${MED[fuse_tiny]}")" "$(ratio "${MED[start_large]}" "${MED[fuse_large]}")"
printf 'deepops-ctr start over the stock-tools pieces: tiny %.2fx, large %.2fx (bench/README.md, Targets, puts that floor at\n' \
  "$(ratio "${MED[start_tiny]}" "${MED[pieces_tiny]}")" "$(ratio "${MED[start_large]}" "${MED[pieces_large]}")"
printf '  ~13 ms on a quiet machine, so the 30 ms target is ~2.3x it: a reading that holds under load)\n'
printf 'old way (create + first start) over deepops-ctr start, large: %.0fx\n' "$(ratio "$old_first_med" "${MED[start_large]}")"
printf 'lab-user processes left after all runs: %s\n' "$left"
verdict=MET
for image in tiny large; do
  (($(echo "${MED[start_$image]} <= $TARGET_MS" | bc -l))) || verdict=MISSED
done
(($(echo "$spread - 1 <= $TARGET_SPREAD && 1 - $spread <= $TARGET_SPREAD" | bc -l))) || verdict=MISSED
printf 'verdict: target %s (median <= %s ms: tiny %.1f ms, large %.1f ms; large within %s%% of tiny: %+.1f%%)\n' \
  "$verdict" "$TARGET_MS" "${MED[start_tiny]}" "${MED[start_large]}" "$(echo "$TARGET_SPREAD * 100 / 1" | bc)" \
  "$(echo "($spread - 1) * 100" | bc -l)"

if [[ -n $JSON_OUT ]]; then
  for key in "${keys[@]}"; do
    jq -n --arg key "$key" --arg name "${LABEL[$key]}" --argjson median "${MED[$key]}" \
      --argjson min "${MIN[$key]}" --argjson p90 "${P90[$key]}" '{key: $key, name: $name, median_ms: $median, min_ms: $min, p90_ms: $p90}'
  done | jq -s --argjson runs "$RUNS" --argjson warmup "$WARMUP" --argjson spread "$spread" \
    --arg verdict "$verdict" --argjson left "$left" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson cores "$(nproc)" \
    '{date: $date, cores: $cores, runs: $runs, warmup: $warmup, rows: ., large_over_tiny: $spread,
      leftover_processes: $left, verdict: $verdict}' >"$JSON_OUT"
fi
