#!/usr/bin/env bash
# Acceptance checks of `deepops-ctr import` under concurrency and crashes,
# against lab 'main':
#  - 8 processes import one uncached image at once: all succeed with the same
#    result, and each blob is downloaded once (counted in the registry's
#    access log);
#  - an import SIGKILLed at 20 moments (seeded, so reproducible): after each,
#    `list` shows only valid entries, and the next import succeeds.
#
# Usage: import_robustness_test.sh DEEPOPS_CTR
set -euo pipefail
CTR=$1
# shellcheck disable=SC1090,SC1091
source "/var/lib/deepops-lab/${DEEPOPS_TEST_LAB:-main}/env"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DEEPOPS_CACHE_PATH=$work/cache HOME=$work
IMAGE=$DEEPOPS_LAB_REGISTRY/deepops/debian-openmpi
LOG=$DEEPOPS_LAB/log/registry-plain.log
# shellcheck source=tests/support/checks.sh
source "$(dirname "$0")/../support/checks.sh"
import() { "$CTR" import -q --allow-http "$DEEPOPS_LAB_REGISTRY" "$IMAGE"; }

# Every listed entry must be a readable squashfs of the size recorded.
list_is_consistent() {
  "$CTR" list --json | python3 -c '
import json, os, subprocess, sys
for img in json.load(sys.stdin):
    path, size = img["path"], img["size"]
    if os.path.getsize(path) != size:
        sys.exit("%s: size %d, recorded %d" % (path, os.path.getsize(path), size))
    if subprocess.run(["unsquashfs", "-s", path], capture_output=True).returncode != 0:
        sys.exit("%s: not a readable squashfs" % path)
'
}

# ---- concurrency
before=$(wc -l <"$LOG")
pids=()
for i in $(seq 1 8); do
  import >"$work/out.$i" 2>"$work/err.$i" &
  pids+=($!)
done
ok=0
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then ok=$((ok + 1)); else cat "$work/err.$((i + 1))"; fi
done
if [[ $ok -eq 8 ]]; then pass "8 concurrent imports succeeded"; else fail "only $ok of 8 concurrent imports succeeded"; fi
if [[ $(sort -u "$work"/out.* | wc -l) -eq 1 ]]; then pass "all 8 got the same image"; else
  fail "different results: $(sort -u "$work"/out.*)"
fi
mapfile -t blobs < <(tail -n +"$((before + 1))" "$LOG" | grep -o 'GET /v2/deepops/debian-openmpi/blobs/sha256:[0-9a-f]*' | sort | uniq -c | awk '{print $1}')
if [[ ${#blobs[@]} -eq 3 && $(printf '%s\n' "${blobs[@]}" | sort -u) == 1 ]]; then
  pass "each of the 3 blobs (config, 2 layers) downloaded once"
else
  fail "blob download counts: ${blobs[*]:-none} (want 1 1 1)"
fi

# ---- crashes
digest=$("$CTR" list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["digest"])')
RANDOM=20261122
for round in $(seq 1 20); do
  "$CTR" remove "$digest" >/dev/null || true
  import >/dev/null 2>&1 &
  victim=$!
  # A moment spread over the whole import (about 3 s here): resolve,
  # download, merge, write, publish.
  sleep "$((RANDOM % 3)).$((RANDOM % 1000))"
  kill -KILL "$victim" 2>/dev/null || true
  wait "$victim" 2>/dev/null || true
  list_is_consistent || { fail "round $round: list shows a corrupt entry"; continue; }
  import >/dev/null || { fail "round $round: the import after the kill failed"; continue; }
done
pass "20 killed imports: cache consistent each time, next import succeeded (unless listed above)"
if [[ -z $(find "$DEEPOPS_CACHE_PATH/tmp" -mindepth 1 -maxdepth 1 2>/dev/null) ]]; then pass "no scratch folder left"; else
  fail "scratch folders left: $(ls "$DEEPOPS_CACHE_PATH/tmp")"
fi

echo "import robustness: $failures failed"
[[ $failures -eq 0 ]]
