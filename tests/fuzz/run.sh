#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and fuzzes each one for
# SECONDS, starting from its seed corpus in tests/fuzz/corpus/<name>. New
# inputs that libFuzzer finds go to a scratch copy, never into the tree.
#
# Usage: tests/fuzz/run.sh [-t SECONDS] [-b BUILD_DIR] [-l LOG_DIR] [TARGET...]
#   -t SECONDS   per target (default 15; the recorded runs use 600)
#   -b DIR       the clang build folder (default ./build-fuzz)
#   -l DIR       keep each target's full libFuzzer output there
#   TARGET       default: every target listed in tests/fuzz/targets
# Exit 0 when every target ran its time without a finding; 1 otherwise, naming
# the folder that holds the failing input (add it to the target's corpus once
# the bug is fixed).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=15 build=$PWD/build-fuzz logs=
while getopts t:b:l:h opt; do
  case $opt in
    t) seconds=$OPTARG ;;
    b) build=$(realpath -m "$OPTARG") ;;
    l) logs=$(realpath -m "$OPTARG") && mkdir -p "$logs" ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' && exit 2 ;;
  esac
done
shift $((OPTIND - 1))
mapfile -t targets < <(if [[ $# -gt 0 ]]; then printf '%s\n' "$@"; else grep -v '^#' tests/fuzz/targets; fi)

CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDEEPOPS_FUZZ=ON -DDEEPOPS_SANITIZE=ON -DDEEPOPS_WERROR=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

printf '%-20s %8s %10s %8s %7s  %s\n' target seconds runs corpus cov result
failed=0
for target in "${targets[@]}"; do
  work=$(mktemp -d "/tmp/fuzz-$target.XXXXXX")
  cp -r "tests/fuzz/corpus/$target/." "$work/"
  log=${logs:+$logs/$target.log}
  log=${log:-$work.log}
  options=()
  [[ -f tests/fuzz/$target.options ]] && mapfile -t options < <(grep -v '^#' "tests/fuzz/$target.options")
  rc=0
  (cd "$work" && "$build/tests/fuzz_$target" -max_total_time="$seconds" -max_len=4096 \
    -print_final_stats=1 "${options[@]}" . >"$log" 2>&1) || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  corpus=$(find "$work" -type f | wc -l)
  if [[ $rc -eq 0 ]]; then
    printf '%-20s %8s %10s %8s %7s  %s\n' "$target" "$seconds" "${runs:-?}" "$corpus" "${cov:-?}" clean
    rm -rf "$work"
    [[ -n $logs ]] || rm -f "$log"
  else
    printf '%-20s %8s %10s %8s %7s  %s\n' "$target" "$seconds" "${runs:-?}" "$corpus" "${cov:-?}" "FOUND (exit $rc)"
    grep -m 3 -E 'ERROR|SUMMARY|runtime error' "$log" | sed 's/^/    /' || true
    echo "    input: $work/crash-* (log $log)"
    failed=1
  fi
done
exit $failed
