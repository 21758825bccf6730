# Shared by the integration scripts: PASS/FAIL lines and a failure count, and a
# bounded poll. Source it; the script ends with `[[ $failures -eq 0 ]]` or the like.
# shellcheck shell=bash

failures=0
pass() { echo "PASS $*"; }
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

# wait_until TRIES COMMAND...: poll every 0.2 s, a bounded number of times.
wait_until() {
  local tries=$1 i
  shift
  for ((i = 0; i < tries; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}
