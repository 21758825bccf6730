#!/usr/bin/env bash
# deepops-enroot as an Enroot user drives it, as the lab's unprivileged user,
# against the lab's registry and Slurm:
#   a. version, info, and ENROOT_* that mean nothing here said on stderr
#   b. import: Enroot's default file name, nothing on stdout, an existing
#      file refused, -a picking a platform of an index, the credentials of
#      ENROOT_CONFIG_PATH/.credentials; digest; the file
#      then runs under srun --container-image=./NAME.sqsh
#   c. create / list / start (read-only unless --rw, writes kept) / export /
#      remove, with -f and the confirmation prompt; load in one step, -f
#      replacing a container
#   d. start's -e, -m (Enroot's colon fstab), -r, --rc, --net/--ipc/--uts,
#      ENROOT_MOUNT_HOME, and a --conf script's
#      #ENROOT_ directive, environ(), mounts(), hooks() and rc()
#   e. enroot.conf (ALLOW_HTTP), mounts.d and environ.d from ENROOT_SYSCONF_PATH;
#      Enroot's standard hooks skipped
#   f. batch with #ENROOT_ROOTFS
#   g. list -f showing a running container, exec [-e] PID into it, remove -f stopping it
#   h. list -f showing a container the plugin runs (--container-name), exec into it
#
# Usage: enroot_test.sh DEEPOPS_ENROOT PLUGIN
#   DEEPOPS_TEST_LAB   the lab (default main: loopback, 2 nodes, registries)
# shellcheck disable=SC2016 # the single-quoted commands run in the container
set -euo pipefail
ENROOT=$(readlink -f "$1")
PLUGIN=$(readlink -f "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/support/lab_test.sh
source "$HERE/../support/lab_test.sh"
lab_test_init enroot
# shellcheck source=tests/support/checks.sh
source "$HERE/../support/checks.sh"
CONF=$ETC/conf.d/enroot-test.conf
lab_test_files=("$CONF")
REG=$DEEPOPS_LAB_REGISTRY
SYSCONF=$work/etc-enroot
mkdir -p "$work/run" "$SYSCONF/mounts.d" "$SYSCONF/environ.d" "$SYSCONF/hooks.d" \
  "$SYSCONF/enroot.conf.d" "$work/data" "$work/home"
echo site-data >"$work/data/site"
cat >"$SYSCONF/enroot.conf" <<EOF
# Enroot's own format: KEY VALUE, shell words
ENROOT_ALLOW_HTTP    yes
ENROOT_SQUASH_OPTIONS "-comp zstd -noD"
EOF
echo "ENROOT_MAX_CONNECTIONS 4" >"$SYSCONF/enroot.conf.d/50-site.conf"
echo "$work/data /mnt/site none x-create=dir,bind,ro" >"$SYSCONF/mounts.d/50-site.fstab"
echo "SITE_VAR=from-environ.d" >"$SYSCONF/environ.d/50-site.env"
# Enroot's standard NVIDIA hook: the runtime's native hooks do its work, so
# deepops-enroot must not run it (it would fail every start here).
printf '#!/bin/sh\necho standard hook ran >&2\nexit 1\n' >"$SYSCONF/hooks.d/98-nvidia.sh"
printf '#!/bin/sh\necho SITE_HOOK=ran >>"$ENROOT_ENVIRON"\n' >"$SYSCONF/hooks.d/60-site.sh"
chmod 0755 "$SYSCONF/hooks.d/"*.sh
chown -R "$USER_NAME:" "$work"

# The plugin and deepops-enroot share one data folder: list -f must see the
# plugin's named containers.
"$LAB" plugin --name "$LAB_NAME" -- "$PLUGIN" >/dev/null
cat >"$CONF" <<CONF
CACHE_PATH $work/cache
DATA_PATH $work/containers
CA_FILE $DEEPOPS_LAB_CA
CONF
# Enroot's credentials file, netrc lines in $ENROOT_CONFIG_PATH/.credentials,
# for the lab's TLS registry, which wants them.
mkdir -p "$work/enroot-config" "$work/no-config"
echo "machine $DEEPOPS_LAB_REGISTRY_TLS login $DEEPOPS_LAB_REGISTRY_USER password $(cat "$DEEPOPS_LAB_REGISTRY_PASSWORD_FILE")" \
  >"$work/enroot-config/.credentials"
chmod 0600 "$work/enroot-config/.credentials"
chown -R "$USER_NAME:" "$work/enroot-config" "$work/no-config"

# en ARGS...: deepops-enroot as the lab user, from $work, with the test's
# Enroot and deepops settings folders.
en() {
  as_user env ENROOT_SYSCONF_PATH="$SYSCONF" DEEPOPS_SYSCONF_DIR="$ETC" \
    timeout 300 "$ENROOT" "$@"
}
# run NAME: runs the command after it; out/err/rc kept in $work/{out,err}, $rc.
run() {
  rc=0
  "$@" >"$work/out" 2>"$work/err" </dev/null || rc=$?
}
out() { cat "$work/out"; }
err() { head -c 600 "$work/err"; }
# expect NAME WANT COMMAND...: stdout equals WANT, exit 0.
expect() {
  local name=$1 want=$2
  shift 2
  run "$@"
  if [[ $rc -eq 0 && $(out) == "$want" ]]; then pass "$name"; else
    fail "$name: rc $rc, got '$(out | head -c 300)', want '$want' ($(err))"
  fi
}
# expect_fail NAME PATTERN COMMAND...: exit 1 with PATTERN on stderr.
expect_fail() {
  local name=$1 pattern=$2
  shift 2
  run "$@"
  if [[ $rc -ne 0 ]] && grep -q -- "$pattern" "$work/err"; then pass "$name"; else
    fail "$name: rc $rc, stderr lacks '$pattern': $(err)"
  fi
}

# ---- a. version, info, notes
expect "a: version is Enroot's release with deepops's as build metadata" \
  "$("$ENROOT" version)" en version
if [[ $("$ENROOT" version) == 4.1.0+deepops.* ]]; then pass "a: version 4.1.0+deepops.X"; else
  fail "a: version '$("$ENROOT" version)'"
fi
run en info
if [[ $rc -eq 0 ]] && grep -q "ENROOT_ALLOW_HTTP=yes" "$work/out" &&
  grep -q "ENROOT_SQUASH_OPTIONS=-noD" "$work/out" && grep -q "98-nvidia.sh" "$work/out"; then
  pass "a: info shows enroot.conf, what has no effect, the skipped standard hook"
else fail "a: info: rc $rc: $(out | head -c 800)"; fi
run as_user env ENROOT_SYSCONF_PATH="$SYSCONF" DEEPOPS_SYSCONF_DIR="$ETC" ENROOT_DATA_PATH=/elsewhere \
  "$ENROOT" list
if [[ $rc -eq 0 ]] && grep -q "\[WARN\] ENROOT_DATA_PATH=/elsewhere has no effect" "$work/err"; then
  pass "a: an ENROOT_ variable without meaning here is said on stderr"
else fail "a: ENROOT_DATA_PATH note: rc $rc: $(err)"; fi

# ---- b. import, then srun --container-image=./NAME.sqsh
SQSH=deepops+tiny+latest.sqsh
expect "b: import writes Enroot's default name and nothing on stdout" "" \
  en import "docker://$REG#deepops/tiny"
if [[ -f $work/$SQSH ]]; then pass "b: $SQSH is there"; else fail "b: no $SQSH: $(ls "$work")"; fi
expect_fail "b: an existing output file is refused" "File already exists: $work/$SQSH" \
  en import "docker://$REG#deepops/tiny"
expect_fail "b: a URI without its scheme is Enroot's invalid argument" "Invalid argument: ubuntu" \
  en import ubuntu
expect "b: import -o names the file" "" en import -o custom.sqsh "docker://$REG#deepops/tiny"
# The index holds amd64 (busybox) and arm64/v8 (only /etc/arch); -a takes
# Enroot's names (uname -m).
expect "b: import -a aarch64 of a multi-platform image" "" \
  en import -a aarch64 -o arm.sqsh "docker://$REG#deepops/multiarch"
if [[ $(unsquashfs -cat "$work/arm.sqsh" etc/arch 2>&1) == arm64 ]]; then
  pass "b: -a aarch64 imported the arm64 image of the index"
else fail "b: arm.sqsh: $(unsquashfs -l "$work/arm.sqsh" 2>&1 | head -c 300)"; fi
expect_fail "b: -a of a platform the index lacks" "ppc64le" \
  en import -a ppc64le -o ppc.sqsh "docker://$REG#deepops/multiarch"
# en_config DIR ARGS...: en with ENROOT_CONFIG_PATH=DIR, over HTTPS (the
# environment wins over enroot.conf's ENROOT_ALLOW_HTTP, as in Enroot).
en_config() {
  local dir=$1
  shift
  as_user env ENROOT_SYSCONF_PATH="$SYSCONF" DEEPOPS_SYSCONF_DIR="$ETC" ENROOT_CONFIG_PATH="$dir" \
    ENROOT_ALLOW_HTTP=no timeout 300 "$ENROOT" "$@"
}
TLS=$DEEPOPS_LAB_REGISTRY_TLS
expect "b: import from a registry that wants credentials, given in ENROOT_CONFIG_PATH/.credentials" "" \
  en_config "$work/enroot-config" import -o tls.sqsh "docker://$TLS#deepops/tiny"
expect_fail "b: without credentials, the registry's refusal" \
  "requires credentials for $TLS/deepops/tiny" \
  en_config "$work/no-config" import -o tls-none.sqsh "docker://$TLS#deepops/tiny"
if grep -q "add a line to $work/no-config/.credentials: machine $TLS login" "$work/err"; then
  pass "b: the hint names ENROOT_CONFIG_PATH's .credentials and the line to add"
else fail "b: the hint: $(err)"; fi
run en digest "docker://$REG#deepops/tiny"
cached=$(as_user env DEEPOPS_SYSCONF_DIR="$ETC" "$(dirname "$ENROOT")/deepops-ctr" list --json |
  python3 -c 'import json,sys; print(" ".join(i["digest"] for i in json.load(sys.stdin)))')
if [[ $rc -eq 0 && $(out) =~ ^sha256:[0-9a-f]{64}$ && " $cached " == *" $(out) "* ]]; then
  pass "b: digest prints the manifest digest the import was cached by"
else fail "b: digest: rc $rc, '$(out)', cached: $cached ($(err))"; fi
expect_fail "b: digest of a non-registry URI" "Invalid argument: podman://x" en digest podman://x
expect "b: srun --container-image=./$SQSH runs the imported file" "tiny" \
  as_user srun -N1 --container-image="./$SQSH" sh -c 'test -x /bin/busybox && echo tiny'

# ---- c. create / start / export / remove
expect "c: create names the container after the file" "" en create "$SQSH"
expect "c: create -n" "" en create -n box custom.sqsh
expect "c: list shows both" "$(printf 'box\ndeepops+tiny+latest')" en list
expect_fail "c: create of an existing name is refused" "File already exists" \
  en create -n box custom.sqsh
expect "c: create -f replaces it" "" en create -f -n box custom.sqsh
expect_fail "c: a container's root is read-only without --rw" "Read-only file system" \
  en start box touch /state
expect "c: start --rw writes" "" en start --rw box sh -c 'echo kept >/state'
expect "c: the writes persist in the container" "kept" en start box cat /state
expect_fail "c: an unknown name" "No such file or directory: nosuch" en start nosuch true
expect "c: export writes NAME.sqsh" "" en export box
expect_fail "c: export refuses to overwrite" "File already exists: $work/box.sqsh" en export box
expect "c: export -f overwrites" "" en export -f box
expect "c: the exported image holds the writes" "kept" en start ./box.sqsh cat /state
# en_answering REPLY ARGS...: deepops-enroot with REPLY on its stdin.
en_answering() {
  local reply=$1
  shift
  printf '%s\n' "$reply" | en "$@"
}
run en_answering n remove box
if [[ $rc -eq 0 ]] && grep -q "Do you really want to delete box? \[y/N\]" "$work/err" &&
  en list | grep -qx box; then pass "c: remove asks, and 'n' keeps it"; else
  fail "c: remove with n: rc $rc $(err)"; fi
run en_answering y remove box
if [[ $rc -eq 0 ]] && ! en list | grep -qx box; then pass "c: remove asks, and 'y' removes it"; else
  fail "c: remove with y: rc $rc $(err)"; fi
expect "c: load imports and creates in one step" "" en load -n loaded "docker://$REG#deepops/tiny"
if en list | grep -qx loaded; then pass "c: the loaded container is listed"; else
  fail "c: no 'loaded' in: $(en list 2>&1)"; fi
expect "c: a write into the loaded container" "" en start --rw loaded touch /mark
expect_fail "c: load of an existing name is refused" "File already exists" \
  en load -n loaded "docker://$REG#deepops/tiny"
expect "c: load -f replaces an existing container" "" en load -f -n loaded "docker://$REG#deepops/tiny"
expect "c: the replaced container is fresh: the write is gone" "fresh" \
  en start loaded sh -c 'test -e /mark || echo fresh'

# ---- d. start's options and a --conf script
expect "d: -e KEY=VALUE and -e KEY (the host's value)" "1 $USER_NAME" \
  en start -e A=1 -e USER deepops+tiny+latest sh -c 'echo $A $USER'
expect "d: -r remaps to root" "0" en start -r deepops+tiny+latest id -u
expect "d: ENROOT_REMAP_ROOT=y in the environment, as -r" "0" \
  as_user env ENROOT_SYSCONF_PATH="$SYSCONF" DEEPOPS_SYSCONF_DIR="$ETC" ENROOT_REMAP_ROOT=y \
  "$ENROOT" start deepops+tiny+latest id -u
expect "d: ENROOT_ROOTFS_WRITABLE=yes makes an image's root writable, as -w" "written" \
  as_user env ENROOT_SYSCONF_PATH="$SYSCONF" DEEPOPS_SYSCONF_DIR="$ETC" ENROOT_ROOTFS_WRITABLE=yes \
  "$ENROOT" start "./$SQSH" sh -c 'echo written >/w && cat /w'
expect "d: --net: only the loopback interface" "lo" \
  en start --net deepops+tiny+latest sh -c "grep ':' /proc/net/dev | cut -d: -f1 | tr -d ' '"
# ns_links: the IPC and UTS namespaces of the shell, on one line.
ns_links='echo $(readlink /proc/self/ns/ipc) $(readlink /proc/self/ns/uts)'
host_ns=$(as_user sh -c "$ns_links")
expect "d: without --ipc/--uts, the host's IPC and UTS namespaces" "$host_ns" \
  en start deepops+tiny+latest sh -c "$ns_links"
run en start --ipc --uts deepops+tiny+latest sh -c "$ns_links"
read -r -a own_ns <<<"$(out)"
read -r -a host_ns_list <<<"$host_ns"
if [[ $rc -eq 0 && ${#own_ns[@]} -eq 2 && ${own_ns[0]} == ipc:* && ${own_ns[0]} != "${host_ns_list[0]}" &&
  ${own_ns[1]} == uts:* && ${own_ns[1]} != "${host_ns_list[1]}" ]]; then
  pass "d: --ipc and --uts give the container its own namespaces"
else fail "d: --ipc --uts: rc $rc, '$(out)' vs host '$host_ns' ($(err))"; fi
# on_cleanup: what the test writes outside $work, removed however it ends.
# shellcheck disable=SC2317 # called by lab_test_cleanup
on_cleanup() { as_user sh -c 'rm -f "$HOME/.enroot-test-home"' || true; }
as_user sh -c 'echo in-home >"$HOME/.enroot-test-home"'
expect "d: the home is not mounted by default, as Enroot's" "absent" \
  en start deepops+tiny+latest sh -c 'cat "$HOME/.enroot-test-home" 2>/dev/null || echo absent'
expect "d: ENROOT_MOUNT_HOME=y mounts it" "in-home" \
  as_user env ENROOT_SYSCONF_PATH="$SYSCONF" DEEPOPS_SYSCONF_DIR="$ETC" ENROOT_MOUNT_HOME=y \
  "$ENROOT" start deepops+tiny+latest sh -c 'cat "$HOME/.enroot-test-home"'
as_user sh -c 'rm -f "$HOME/.enroot-test-home"'
expect "d: -m takes Enroot's colon-separated fstab" "site-data" \
  en start -m "$work/data:/mnt/m:none:x-create=dir,bind,ro" deepops+tiny+latest cat /mnt/m/site
expect_fail "d: -m refuses Pyxis's form with an empty field" "Invalid argument" \
  en start -m "$work/data::ro" deepops+tiny+latest true
printf 'echo "rc with $# args: $*"\n' >"$work/rc.sh"
chown "$USER_NAME:" "$work/rc.sh"
expect "d: --rc runs the script with the command as its arguments" "rc with 2 args: a b" \
  en start --rc rc.sh deepops+tiny+latest a b
cat >"$work/conf.sh" <<'EOF'
#!/bin/bash
#ENROOT_REMAP_ROOT=y
command=$1 # the script is given the container's command
environ() {
  echo "CONF_VAR=from-conf-${command}"
}
mounts() {
  echo "${PWD}/data /mnt/conf none x-create=dir,bind,ro"
}
hooks() {
  echo "HOOK_VAR=from-hooks" >>"${ENROOT_ENVIRON}"
}
EOF
chown "$USER_NAME:" "$work/conf.sh"
expect "d: --conf: #ENROOT_REMAP_ROOT, environ() (given the command), mounts(), hooks()" "0 from-conf-sh site-data from-hooks" \
  en start --conf conf.sh deepops+tiny+latest sh -c 'echo $(id -u) $CONF_VAR $(cat /mnt/conf/site) $HOOK_VAR'
printf '#!/bin/bash\nrc() {\n  echo "conf rc: $1"\n}\n' >"$work/rc-conf.sh"
chown "$USER_NAME:" "$work/rc-conf.sh"
expect "d: --conf's rc() replaces the command" "conf rc: hello" \
  en start --conf rc-conf.sh deepops+tiny+latest hello
printf 'environ() {\n' >"$work/bad.sh"
expect_fail "d: a --conf script bash cannot parse" "Invalid argument: $work/bad.sh" \
  en start --conf bad.sh deepops+tiny+latest true

# ---- e. the site's Enroot folders
expect "e: mounts.d, environ.d and hooks.d from ENROOT_SYSCONF_PATH; the standard hook skipped" \
  "site-data from-environ.d ran" \
  en start deepops+tiny+latest sh -c 'echo $(cat /mnt/site/site) $SITE_VAR $SITE_HOOK'

# ---- f. batch
printf '#!/bin/bash\n#ENROOT_ROOTFS=deepops+tiny+latest\nenviron() {\n  echo BATCH=yes\n}\n' \
  >"$work/batch.sh"
chown "$USER_NAME:" "$work/batch.sh"
expect "f: batch starts #ENROOT_ROOTFS with the script" "yes" \
  en batch batch.sh sh -c 'echo $BATCH'
printf '#!/bin/bash\n' >"$work/nobatch.sh"
expect_fail "f: batch without #ENROOT_ROOTFS" "no #ENROOT_ROOTFS directive" en batch nobatch.sh true

# ---- g. list -f, exec, remove -f of a running container
expect "g: create runner" "" en create -n runner "$SQSH"
as_user env ENROOT_SYSCONF_PATH="$SYSCONF" DEEPOPS_SYSCONF_DIR="$ETC" \
  timeout 120 "$ENROOT" start --rw runner sh -c 'echo up >/up; exec sleep 100' \
  >"$work/runner.out" 2>&1 &
runner=$!
runner_pid() { en list -f | awk '$1 == "runner" { print $2 }'; }
runner_listed() { [[ -n $(runner_pid) ]]; }
if wait_until 300 runner_listed; then pass "g: list -f shows the running container"; else
  fail "g: list -f never showed runner: $(en list -f 2>&1)"; fi
pid=$(runner_pid)
expect "g: exec PID runs in the container" "up" en exec "$pid" cat /up
expect "g: exec -e sets a variable for the command" "2 $USER_NAME" \
  en exec -e X=2 -e USER "$pid" sh -c 'echo $X $USER'
expect_fail "g: a second start of a running container says how to join it" \
  "enroot exec PID COMMAND" en start runner true
expect "g: remove -f stops a running container, then removes it" "" en remove -f runner
if wait_until 100 bash -c "! kill -0 $runner 2>/dev/null"; then pass "g: its start ended"; else
  fail "g: the start of runner is still there"; fi
wait "$runner" 2>/dev/null || true
if ! en list | grep -qx runner; then pass "g: runner is gone"; else fail "g: runner still listed"; fi

# ---- h. a container of the plugin, in list -f, joined by exec
rm -f "$work/stop"
as_user timeout 200 srun -N1 -w n1 --container-name=plug --container-image="$REG/deepops/tiny" \
  --container-mounts="$work:$work" \
  sh -c "touch $work/started; i=0; while [ ! -e $work/stop ] && [ \$i -lt 900 ]; do sleep 0.2; i=\$((i+1)); done" \
  >"$work/plug.out" 2>&1 &
plug=$!
wait_until 600 test -e "$work/started" || fail "h: the plugin's step never started: $(cat "$work/plug.out")"
plug_pid() { en list -f | awk '$1 == "plug" { print $2 }'; }
plug_listed() { [[ -n $(plug_pid) ]]; }
if wait_until 100 plug_listed; then pass "h: list -f shows the plugin's --container-name"; else
  fail "h: list -f: $(en list -f 2>&1)"; fi
expect "h: exec into the plugin's container" "tiny" \
  en exec "$(plug_pid)" sh -c 'test -x /bin/busybox && echo tiny'
touch "$work/stop"
wait "$plug" || fail "h: the plugin's step failed: $(cat "$work/plug.out")"
expect "h: remove of the stopped plugin container" "" en remove -f plug

[[ $failures -eq 0 ]]
