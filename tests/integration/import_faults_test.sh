#!/usr/bin/env bash
# `deepops-ctr import` against injected faults (tests/support/faultproxy.py in
# front of lab 'main''s plain registry: corrupt, truncated and reset bodies,
# resets and drops, 500/502/503, 429 with Retry-After, latency, a slow drip),
# a full disk and a cache out of inodes. Each fault must end in its own clear
# error, or in success after a retry, and never in a cache entry or a
# leftover scratch folder. Retry-After must be waited for, by the proxy's
# request log.
#
# Usage: import_faults_test.sh DEEPOPS_CTR  (DEEPOPS_TEST_LAB: another lab than main)
set -euo pipefail
CTR=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC1090,SC1091
source "/var/lib/deepops-lab/${DEEPOPS_TEST_LAB:-main}/env"
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

start_proxy() { # FAULT COUNT [PROXY_ARGS...]
  local fault=$1 count=$2
  shift 2
  if [[ -n $proxy_pid ]]; then
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
  fi
  coproc PROXY { exec python3 "$SRC/tests/support/faultproxy.py" --upstream "$DEEPOPS_LAB_REGISTRY" \
    --fault "$fault" --count "$count" --lifetime 120 "$@" 2>"$work/proxy.log"; }
  # shellcheck disable=SC2153 # PROXY_PID is set by coproc
  proxy_pid=$PROXY_PID
  local line
  read -r -t 10 line <&"${PROXY[0]}" || { echo "fault proxy did not start"; exit 1; }
  PROXY_ADDR=127.0.0.1:${line#ready }
}

# retry_gaps MODE: from the proxy's request log, the seconds between each
# firing of MODE and the next request for the same path, one a line.
retry_gaps() {
  python3 - "$1" "$work/proxy.log" <<'EOF_PY'
import re, sys
mode, lines = sys.argv[1], open(sys.argv[2]).read().splitlines()
events = [m.groups() for m in map(re.compile(r"faultproxy: t=([0-9.]+) (fault \S+ )?GET (\S+)$").match, lines) if m]
for i, (t, fault, path) in enumerate(events):
    if fault == f"fault {mode} ":
        nxt = [float(t2) for t2, f2, p2 in events[i + 1:] if not f2 and p2 == path]
        if nxt:
            print(f"{nxt[0] - float(t):.2f}")
EOF_PY
}

# expect FAULT COUNT WANT_EXIT WANT_TEXT [PROXY_ARGS...]: import tiny through
# the proxy. A fault that fires COUNT > 0 times must have fired that often (the
# client retried past it); one that always fires, at least once.
expect() {
  local fault=$1 count=$2 want_rc=$3 want_text=$4 rc=0
  shift 4
  start_proxy "$fault" "$count" "$@"
  export DEEPOPS_CACHE_PATH=$work/cache-$fault-$count-${#}
  rm -rf "$DEEPOPS_CACHE_PATH"
  "$CTR" import -q --allow-http "$PROXY_ADDR" "$PROXY_ADDR/deepops/tiny" >"$work/out" 2>"$work/err" || rc=$?
  local entries
  entries=$("$CTR" list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  local scratch
  scratch=$({ find "$DEEPOPS_CACHE_PATH/tmp" -mindepth 1 -maxdepth 1 2>/dev/null || true; } | wc -l)
  local fired
  fired=$(grep -c "^faultproxy: t=[0-9.]* fault $fault " "$work/proxy.log" || true)
  local what="$fault x$count${*:+ $*}"
  if [[ $rc -ne $want_rc ]]; then
    echo "FAIL $what: exit $rc, want $want_rc: $(cat "$work/err")"
  elif ! grep -q -- "$want_text" "$work/err" "$work/out"; then
    echo "FAIL $what: output lacks '$want_text': $(cat "$work/err")"
  elif [[ $want_rc -ne 0 && $entries -ne 0 ]]; then
    echo "FAIL $what: a failed import left $entries cache entries"
  elif [[ $want_rc -eq 0 && $entries -ne 1 ]]; then
    echo "FAIL $what: a successful import left $entries cache entries, want 1"
  elif [[ $scratch -ne 0 ]]; then
    echo "FAIL $what: $scratch scratch folders left"
  elif [[ $fault != none && ($count -gt 0 && $fired -ne $count || $count -lt 0 && $fired -lt 1) ]]; then
    echo "FAIL $what: the proxy fired the fault $fired times"
  else
    echo "PASS $what: $(head -c 160 "$work/err" | tr '\n' ' ')"
    return 0
  fi
  failures=$((failures + 1))
}

# expect_waited MODE SECONDS: every retry after MODE fired came at least
# SECONDS (less 0.2 for clock granularity) later, by the proxy's log.
expect_waited() {
  local gaps
  gaps=$(retry_gaps "$1")
  if [[ -n $gaps ]] && awk -v min="$2" '$1 < min - 0.2 { bad = 1 } END { exit bad }' <<<"$gaps"; then
    echo "PASS $1: retries waited Retry-After ($2 s): gaps $(echo "$gaps" | tr '\n' ' ')"
  else
    echo "FAIL $1: retries did not wait Retry-After ($2 s): gaps '$(echo "$gaps" | tr '\n' ' ')'"
    failures=$((failures + 1))
  fi
}

expect none -1 0 ".sqsh"
expect blob-corrupt -1 1 "has digest sha256:"
expect blob-truncate 1 0 ".sqsh"                   # resumed with Range
expect blob-truncate -1 1 "truncated"
expect blob-reset 1 0 ".sqsh"                      # an RST mid-body: resumed with Range
expect blob-reset -1 1 "is truncated: got"
expect http500 2 0 ".sqsh"                         # retried
expect http500 -1 1 "answered HTTP 500"
expect http5xx 2 0 ".sqsh" --status 502
expect http5xx -1 1 "answered HTTP 502 for manifest" --status 502
expect http5xx 2 0 ".sqsh" --status 503
expect http5xx -1 1 "answered HTTP 503 for manifest" --status 503
expect http5xx 1 0 ".sqsh" --status 503 --retry-after 2
expect_waited http5xx 2
expect http429 2 0 ".sqsh" --retry-after 2         # retried after Retry-After
expect_waited http429 2
expect http429 1 0 ".sqsh" --retry-after 3 --retry-after-date  # an HTTP-date: waits 2 to 3 s
expect_waited http429 2
expect http429 -1 1 "is rate-limiting pulls" --retry-after 1
expect drop 2 0 ".sqsh"                            # retried
expect drop -1 1 "error"
expect reset 2 0 ".sqsh"                           # an RST before any answer: retried
expect reset -1 1 "Connection reset by peer"
expect delay 3 0 ".sqsh" --delay 2                 # latency alone is no error
expect drip -1 0 ".sqsh" --rate 262144             # 1 MiB layer in ~4 s, 4 KiB chunks
expect drip 1 0 ".sqsh" --rate 0 --drip-max 5      # a 5 s stall, within the 60 s stall timeout
expect auth-loop -1 1 "requires credentials"
expect token-5xx 2 0 ".sqsh"                       # the token service retried like the registry
expect token-5xx -1 1 "answered 503 without a token"
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

umount "$work/small"

# Out of inodes: a tmpfs with room for the bytes but few inodes, at each of
# the points where an import needs one (its lock and scratch folders, a
# layer's file, the squashfs image): a clear error, nothing in the cache,
# no scratch folder and no image left behind.
for inodes in 4 5 6 8; do
  mount -t tmpfs -o size=64m,nr_inodes=$inodes tmpfs "$work/small"
  rc=0
  "$CTR" import -q --allow-http "$DEEPOPS_LAB_REGISTRY" "$DEEPOPS_LAB_REGISTRY/deepops/layered" \
    >/dev/null 2>"$work/err" || rc=$?
  scratch=$({ find "$DEEPOPS_CACHE_PATH/tmp" -mindepth 1 2>/dev/null || true; } | wc -l)
  images=$(find "$work/small" -name '*.sqsh*' | wc -l)
  # The hint must say inodes, not space: ENOSPC says neither.
  if [[ $rc -ne 0 ]] && grep -q "^deepops-ctr: error: .*$DEEPOPS_CACHE_PATH.*No space left on device" "$work/err" &&
    grep -q "hint: free inodes" "$work/err" &&
    [[ $("$CTR" list --json) == "[]" && $scratch -eq 0 && $images -eq 0 ]]; then
    echo "PASS out of inodes ($inodes): $(grep error "$work/err" | head -c 160)"
  else
    echo "FAIL out of inodes ($inodes): exit $rc, $scratch scratch entries, $images images: $(cat "$work/err")"
    failures=$((failures + 1))
  fi
  umount "$work/small"
done

echo "import faults: $failures failed"
[[ $failures -eq 0 ]]
