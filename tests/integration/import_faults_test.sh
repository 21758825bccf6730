#!/usr/bin/env bash
# `deepops-ctr import` against injected faults (tests/support/faultproxy.py in
# front of lab 'main''s plain registry) and a full disk. Each fault must end
# in its own clear error, or in success after a retry, and never in a cache
# entry or a leftover scratch folder.
#
# Usage: import_faults_test.sh DEEPOPS_CTR
set -euo pipefail
CTR=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC1091
source /var/lib/deepops-lab/main/env
work=$(mktemp -d)
proxy_pid=
cleanup() {
  if [[ -n $proxy_pid ]]; then kill "$proxy_pid" 2>/dev/null || true; fi
  if mountpoint -q "$work/small"; then umount "$work/small"; fi
  rm -rf "$work"
}
trap cleanup EXIT
export HOME=$work
failures=0

start_proxy() { # FAULT [COUNT]
  if [[ -n $proxy_pid ]]; then
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
  fi
  coproc PROXY { exec python3 "$SRC/tests/support/faultproxy.py" --upstream "$DEEPOPS_LAB_REGISTRY" \
    --fault "$1" --count "${2:--1}" --lifetime 120 2>"$work/proxy.log"; }
  # shellcheck disable=SC2153 # PROXY_PID is set by coproc
  proxy_pid=$PROXY_PID
  local line
  read -r -t 10 line <&"${PROXY[0]}" || { echo "fault proxy did not start"; exit 1; }
  PROXY_ADDR=127.0.0.1:${line#ready }
}

# expect FAULT COUNT WANT_EXIT WANT_TEXT: import tiny through the proxy.
expect() {
  local fault=$1 count=$2 want_rc=$3 want_text=$4 rc=0
  start_proxy "$fault" "$count"
  export DEEPOPS_CACHE_PATH=$work/cache-$fault-$count
  "$CTR" import -q --allow-http "$PROXY_ADDR" "$PROXY_ADDR/deepops/tiny" >"$work/out" 2>"$work/err" || rc=$?
  local entries
  entries=$("$CTR" list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  local scratch
  scratch=$({ find "$DEEPOPS_CACHE_PATH/tmp" -mindepth 1 -maxdepth 1 2>/dev/null || true; } | wc -l)
  local what="$fault x$count"
  if [[ $rc -ne $want_rc ]]; then
    echo "FAIL $what: exit $rc, want $want_rc: $(cat "$work/err")"
  elif ! grep -q -- "$want_text" "$work/err" "$work/out"; then
    echo "FAIL $what: output lacks '$want_text': $(cat "$work/err")"
  elif [[ $want_rc -ne 0 && $entries -ne 0 ]]; then
    echo "FAIL $what: a failed import left $entries cache entries"
  elif [[ $scratch -ne 0 ]]; then
    echo "FAIL $what: $scratch scratch folders left"
  else
    echo "PASS $what: $(head -c 160 "$work/err" | tr '\n' ' ')"
    return 0
  fi
  failures=$((failures + 1))
}

expect none -1 0 ".sqsh"
expect blob-corrupt -1 1 "has digest sha256:"
expect blob-truncate 1 0 ".sqsh"                   # resumed with Range
expect blob-truncate -1 1 "truncated"
expect http500 2 0 ".sqsh"                         # retried
expect http500 -1 1 "answered HTTP 500"
expect drop 2 0 ".sqsh"                            # retried
expect drop -1 1 "error"
expect auth-loop -1 1 "requires credentials"
expect bad-manifest -1 1 "malformed manifest"

# A full disk: a 4 MiB tmpfs as the cache, and a 110 MiB image.
mkdir -p "$work/small"
mount -t tmpfs -o size=4m tmpfs "$work/small"
export DEEPOPS_CACHE_PATH=$work/small/cache
rc=0
"$CTR" import -q --allow-http "$DEEPOPS_LAB_REGISTRY" "$DEEPOPS_LAB_REGISTRY/deepops/debian-openmpi" \
  >/dev/null 2>"$work/err" || rc=$?
left=$(du -sk "$work/small" | cut -f1)
if [[ $rc -ne 0 ]] && grep -q "No space left" "$work/err" && grep -q "hint: free space" "$work/err" &&
  [[ $("$CTR" list --json) == "[]" && $left -lt 64 ]]; then
  echo "PASS full disk: $(grep error "$work/err" | head -c 160), ${left} KiB left behind"
else
  echo "FAIL full disk: exit $rc, $left KiB left: $(cat "$work/err")"
  failures=$((failures + 1))
fi

echo "import faults: $failures failed"
[[ $failures -eq 0 ]]
