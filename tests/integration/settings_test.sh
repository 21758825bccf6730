#!/usr/bin/env bash
# One configuration for every front end, checked by its effect, as the lab's
# unprivileged user on lab main:
#   a. `deepops-ctr import` honours the site file's CACHE_PATH, ALLOW_HTTP
#      and IMPORT_MAX_SIZE (1.5T: the grammar of `gc --max-size`), with no
#      flag and no variable
#   b. DEEPOPS_ALLOW_HTTP=1 means yes, a URL is refused naming the variable
#   c. `remove` and `start` match digest prefixes by one rule (6 hex digits)
#   d. a job's DEEPOPS_MIRRORS_CONFIG does not reach the keeper (the CLI
#      honours it)
#   e. --container-save and `deepops-ctr export` of the same changes make
#      the same image, with the writable layer written by fuse-overlayfs
#
# Usage: settings_test.sh PLUGIN DEEPOPS_CTR
#   DEEPOPS_TEST_LAB   the lab (default main: loopback, 2 nodes, registries)
# shellcheck disable=SC2016 # the single-quoted commands run in the container
set -euo pipefail
PLUGIN=$(readlink -f "$1")
CTR=$(readlink -f "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/support/checks.sh
source "$HERE/../support/checks.sh"
# shellcheck source=tests/support/lab_test.sh
source "$HERE/../support/lab_test.sh"
lab_test_init settings
CONF=$ETC/conf.d/settings-test.conf
lab_test_files=("$CONF")
mkdir -p "$work/home" "$work/site" "$work/cli" "$work/out"
chown -R "$USER_NAME:" "$work"
# in_home VAR=value... COMMAND...: as the test user, with a home of its own.
in_home() { as_user env HOME="$work/home" "$@"; }
IMG=$DEEPOPS_LAB_REGISTRY/deepops/zstd

# ---- a. the site file's settings reach `import`
cat >"$work/site/deepops.conf" <<CONF
CACHE_PATH $work/sitecache
ALLOW_HTTP yes
IMPORT_MAX_SIZE 1.5T
CONF
out=$(in_home DEEPOPS_SYSCONF_DIR="$work/site" "$CTR" import -q "$IMG" 2>"$work/a.err") || true
if [[ $out == "$work"/sitecache/images/*.sqsh && -f $out ]]; then
  pass "import: the site's CACHE_PATH, ALLOW_HTTP and IMPORT_MAX_SIZE 1.5T are honoured ($out)"
else fail "import with the site file: '$out' ($(head -c 300 "$work/a.err"))"; fi
if [[ ! -e $work/home/.cache/deepops ]]; then pass "import: nothing went to ~/.cache"; else
  fail "import wrote ~/.cache/deepops although the site names another cache"
fi

# ---- b. DEEPOPS_ALLOW_HTTP
cli=(DEEPOPS_SYSCONF_DIR="$work/cli" DEEPOPS_CACHE_PATH="$work/clicache"
  DEEPOPS_DATA_PATH="$work/clidata" DEEPOPS_RUNTIME_PATH="$work/run")
if in_home "${cli[@]}" DEEPOPS_ALLOW_HTTP=1 "$CTR" import -q "$IMG" >"$work/b.out" 2>&1; then
  pass "DEEPOPS_ALLOW_HTTP=1 means yes"
else fail "DEEPOPS_ALLOW_HTTP=1: $(head -c 300 "$work/b.out")"; fi
if ! in_home "${cli[@]}" DEEPOPS_ALLOW_HTTP="http://$DEEPOPS_LAB_REGISTRY/" "$CTR" import -q "$IMG" \
  >"$work/b2.out" 2>&1 && grep -q "environment (DEEPOPS_ALLOW_HTTP).*not a registry host" "$work/b2.out"; then
  pass "a URL in DEEPOPS_ALLOW_HTTP is refused naming the variable"
else fail "DEEPOPS_ALLOW_HTTP=http://...: $(head -c 300 "$work/b2.out")"; fi

# ---- c. one prefix rule for remove and start
# (the image in the CLI's cache, with the flag every version took)
in_home "${cli[@]}" "$CTR" import -q --allow-http "$DEEPOPS_LAB_REGISTRY" "$IMG" >/dev/null 2>&1 || true
digest=$(in_home "${cli[@]}" "$CTR" list --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["digest"])' 2>/dev/null || true)
[[ -n $digest ]] || fail "no image in the CLI's cache to match prefixes against"
hex=${digest#sha256:}
if ! in_home "${cli[@]}" "$CTR" remove "${hex:0:1}" >"$work/c.out" 2>&1 &&
  grep -q "no image '${hex:0:1}'" "$work/c.out" &&
  in_home "${cli[@]}" "$CTR" list | grep -q "${digest:0:19}"; then
  pass "remove ${hex:0:1}: one hex digit matches nothing, the image stays"
else fail "remove ${hex:0:1}: $(head -c 300 "$work/c.out")"; fi
if ! in_home "${cli[@]}" "$CTR" start "${hex:0:1}" true >"$work/c2.out" 2>&1 &&
  grep -q "not in the cache" "$work/c2.out"; then
  pass "start ${hex:0:1}: the same rule"
else fail "start ${hex:0:1}: $(head -c 300 "$work/c2.out")"; fi
if in_home "${cli[@]}" "$CTR" start "${hex:0:6}" true >"$work/c3.out" 2>&1; then
  pass "start ${hex:0:6}: six hex digits find the image"
else fail "start ${hex:0:6}: $(head -c 300 "$work/c3.out")"; fi

# ---- d. the mirrors file: the CLI's variable, never a job's
echo '{"mirrors": [' >"$work/bad-mirrors.json"
if ! in_home "${cli[@]}" DEEPOPS_ALLOW_HTTP=1 DEEPOPS_MIRRORS_CONFIG="$work/bad-mirrors.json" \
  "$CTR" import -q "$IMG" >"$work/d.out" 2>&1 && grep -q "bad-mirrors.json" "$work/d.out"; then
  pass "the CLI reads DEEPOPS_MIRRORS_CONFIG"
else fail "the CLI and DEEPOPS_MIRRORS_CONFIG: $(head -c 300 "$work/d.out")"; fi
"$LAB" plugin --name "$LAB_NAME" -- "$PLUGIN" >/dev/null
cat >"$CONF" <<CONF
CACHE_PATH $work/cache/\${SLURMD_NODENAME}
OVERLAY fuse
CONF
if in_home DEEPOPS_MIRRORS_CONFIG="$work/bad-mirrors.json" timeout 120 srun -w n1 \
  --container-image="$IMG" cat /data/zstd.txt >"$work/d2.out" 2>&1; then
  pass "a job's DEEPOPS_MIRRORS_CONFIG does not reach the keeper"
else fail "srun with DEEPOPS_MIRRORS_CONFIG: $(head -c 400 "$work/d2.out")"; fi

# ---- e. --container-save and export: the same image
changes='echo new >/data/new.txt && rm /data/zstd.txt && mkdir /data/dir'
if in_home timeout 120 srun -w n1 --container-image="$IMG" --container-save="$work/out/saved.sqsh" \
  sh -c "$changes" >"$work/e.out" 2>&1; then
  pass "--container-save with OVERLAY fuse"
else fail "--container-save: $(head -c 400 "$work/e.out")"; fi
fuse=(DEEPOPS_OVERLAY=fuse)
in_home "${cli[@]}" "$CTR" import -q --allow-http "$DEEPOPS_LAB_REGISTRY" "$IMG" >/dev/null 2>&1 || true
if in_home "${cli[@]}" "${fuse[@]}" "$CTR" create -n cmp "$IMG" >"$work/e2.out" 2>&1 &&
  in_home "${cli[@]}" "${fuse[@]}" "$CTR" start cmp sh -c "$changes" >>"$work/e2.out" 2>&1 &&
  in_home "${cli[@]}" "${fuse[@]}" "$CTR" export cmp "$work/out/exported.sqsh" >>"$work/e2.out" 2>&1; then
  pass "create, start and export with OVERLAY fuse"
else fail "create/start/export: $(head -c 400 "$work/e2.out")"; fi
listing() { unsquashfs -l -d '' "$1" 2>/dev/null | grep -v '^Parallel\|^[0-9]* inodes' | sort || true; }
saved=$(listing "$work/out/saved.sqsh")
exported=$(listing "$work/out/exported.sqsh")
if [[ -n $saved && $saved == "$exported" ]] && grep -qx /data/new.txt <<<"$saved" &&
  ! grep -q 'zstd.txt\|\.wh\.' <<<"$saved"; then
  pass "--container-save and export made the same tree, the deletion kept"
else
  fail "the saved and exported trees differ: $(diff <(echo "$saved") <(echo "$exported") | head -10 | tr '\n' ' ')"
fi

[[ $failures -eq 0 ]]
