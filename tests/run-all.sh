#!/usr/bin/env bash
# The whole test suite: README.md's second command, and what CI runs.
# Needs root on Debian 12 (it installs packages and starts the test lab).
#
# Phases: dependencies, static checks, build, unit tests, unit tests under
# ASan+UBSan, a short libFuzzer run, test images, integration tests (real
# Slurm and registries), the runtime's and bench's integration tests again
# under ASan+UBSan, the release matrix (the acceptance on Slurm 24.11 and
# 26.05 in their release roots, and the pass counts of all three supported
# releases, 22.05 being this machine's), and a check that the lab left
# nothing behind.
#
# Tests labelled slow (the 2 GB benchmark image) are left out; run them with
#   ctest --test-dir build -L slow
#
# Environment: BUILD_DIR (default ./build), FUZZ_SECONDS per target (default 15).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BUILD=${BUILD_DIR:-$REPO/build}
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
mapfile -t FUZZ_TARGETS < <(grep -v '^#' tests/fuzz/targets)
# The integration tests whose programs the sanitizer build runs again (phase 9).
SANITIZED_TESTS='^(import\.|start\.|runtime\.|bench\.cpu)'
JOBS=$(nproc)
START=$SECONDS

phase() { printf '\n==== [%s +%ss] %s\n' "$(date +%T)" "$((SECONDS - START))" "$*"; }
fail() { printf '\n==== FAILED in phase: %s\n' "$CURRENT" >&2; }
trap fail ERR
step() { CURRENT=$1; phase "$1"; }

[[ $(id -u) -eq 0 ]] || { echo "run-all: run as root (it installs packages and starts the test lab)" >&2; exit 1; }

step "1/11 dependencies (packaging/install-deps.sh)"
packaging/install-deps.sh
# The release roots of phase 10 (debootstrap and apt: mostly network and
# disk) are made or checked meanwhile, while this machine builds.
ROOTS_LOG=$(mktemp /tmp/release-roots.XXXXXX)
(tests/matrix/root 24.11 && tests/matrix/root 26.05) >"$ROOTS_LOG" 2>&1 &
ROOTS_PID=$!

step "2/11 static checks: clang-format, shellcheck"
mapfile -t cxx < <(git ls-files '*.cpp' '*.hpp' '*.c' '*.h')
clang-format --dry-run --Werror "${cxx[@]}"
mapfile -t scripts < <(git ls-files '*.sh' '*.sbatch' tests/lab/lab .ci/run tests/matrix/run tests/matrix/root tests/matrix/enter tests/matrix/acceptance packaging/postinst packaging/prerm)
shellcheck -x "${scripts[@]}"
echo "format and shell checks clean (${#cxx[@]} C/C++ files, ${#scripts[@]} scripts)"

step "3/11 build (Release, as packagers build; warnings as errors)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDEEPOPS_WERROR=ON >/dev/null
cmake --build "$BUILD" -j "$JOBS"

step "4/11 unit tests"
ctest --test-dir "$BUILD" -L unit -j "$JOBS" --output-on-failure --output-junit unit.xml

step "5/11 unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B "$BUILD-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDEEPOPS_SANITIZE=ON -DDEEPOPS_WERROR=ON >/dev/null
cmake --build "$BUILD-asan" -j "$JOBS" --target unit_tests "${FUZZ_TARGETS[@]/#/replay_}"
ctest --test-dir "$BUILD-asan" -L unit -j "$JOBS" --output-on-failure

step "6/11 fuzzing: ${FUZZ_SECONDS}s per target (tests/fuzz/run.sh: libFuzzer, clang, ASan+UBSan)"
tests/fuzz/run.sh -t "$FUZZ_SECONDS" -b "$BUILD-fuzz"

step "7/11 test images (tests/images/build.sh; cached between runs)"
tests/images/build.sh

step "8/11 integration tests (real Slurm, registries; the lab starts and stops as ctest fixtures)"
ctest --test-dir "$BUILD" -L integration -LE slow --output-on-failure --output-junit integration.xml \
  --test-output-size-passed 4000000 # whole outputs in the report: the matrix counts their SKIP lines

step "9/11 integration tests of deepops-ctr and deepops-bench under ASan+UBSan (LeakSanitizer on)"
# The sanitizer build's binaries run the same tests (ctest in $BUILD-asan). Every
# report, from any process of the tests (the lab user's too: the lab passes
# these settings on), lands in one folder, which must stay empty.
cmake --build "$BUILD-asan" -j "$JOBS" --target deepops-ctr deepops-ctr-import deepops-enroot deepops-bench mpi_hello
SANITIZER_LOGS=$(mktemp -d /tmp/sanitizer-logs.XXXXXX)
chmod 1777 "$SANITIZER_LOGS"
ASAN_OPTIONS="log_path=$SANITIZER_LOGS/asan:detect_leaks=1" \
  UBSAN_OPTIONS="log_path=$SANITIZER_LOGS/ubsan:print_stacktrace=1" \
  ctest --test-dir "$BUILD-asan" -L integration -R "$SANITIZED_TESTS" --output-on-failure
if [[ -n $(ls -A "$SANITIZER_LOGS") ]]; then
  head -n 60 "$SANITIZER_LOGS"/*
  echo "sanitizer reports above (all in $SANITIZER_LOGS)" >&2
  false
fi
rm -rf "$SANITIZER_LOGS"
echo "no sanitizer report"

step "10/11 release matrix: Slurm 24.11 and 26.05 in their release roots (tests/matrix/run)"
if ! wait "$ROOTS_PID"; then
  cat "$ROOTS_LOG" >&2
  echo "making the release roots failed (above)" >&2
  false
fi
grep '^\[matrix' "$ROOTS_LOG" || true
rm -f "$ROOTS_LOG"
# 22.05 is this machine's Slurm: phases 4 and 8 ran its acceptance (and more).
tests/matrix/run --host-results "$BUILD" 24.11 26.05

step "11/11 leak check: no lab process, mount or network namespace left"
tests/lab/lab verify-clean
echo "ip netns: $(ip netns list | grep -c '^dlab-' || true) lab namespaces"

trap - ERR
phase "all phases passed"
