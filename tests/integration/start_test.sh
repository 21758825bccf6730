#!/usr/bin/env bash
# Acceptance checks of `deepops-ctr start`, run as the lab's unprivileged user
# against lab 'main' (for the registry):
#  - identity: id and uid_map, with and without --remap-root;
#  - read-only and writable roots, and that writes vanish at exit;
#  - remap-root writes to a bind mount land as the user on the host;
#  - security: /etc/shadow stays unreadable through any mount, setuid bits in
#    an image grant nothing, '..' and symlinks cannot lead mounts out;
#  - environment, workdir, mounts.d/environ.d and settings precedence;
#  - hooks: GPU and InfiniBand on a fixture host, hooks.d, and PMIx for real:
#    an OpenMPI job across two Slurm nodes with every rank in a container;
#  - named containers: create, persistent writes, exec, export, remove;
#  - exit codes and signals; the image's mount shared between containers and
#    its server gone after the linger time; 500 starts leave no mount,
#    process or folder.
#
# Usage: start_test.sh DEEPOPS_CTR MPI_HELLO  (DEEPOPS_TEST_LAB: another lab than main)
# shellcheck disable=SC2016 # the single-quoted commands run in the container
set -euo pipefail
CTR=$(readlink -f "$1")
MPI_HELLO=$(readlink -f "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
LAB=$HERE/../lab/lab
# shellcheck source=SCRIPTDIR/../support/host_fixture.sh
source "$HERE/../support/host_fixture.sh"
# shellcheck disable=SC1090,SC1091
source "/var/lib/deepops-lab/${DEEPOPS_TEST_LAB:-main}/env"
USER_NAME=$DEEPOPS_LAB_USER
USER_UID=$(id -u "$USER_NAME")
USER_GID=$(id -g "$USER_NAME")
work=$(mktemp -d /tmp/start-test.XXXXXX)
chmod 0755 "$work"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/cache" "$work/conf" "$work/runtime" "$work/shared"
chmod 0700 "$work/runtime"
mkdir -p "$work/data"
chown "$USER_NAME:" "$work/cache" "$work/runtime" "$work/shared" "$work/data"

# shellcheck source=tests/support/checks.sh
source "$(dirname "$0")/../support/checks.sh"
# Runs deepops-ctr as the test user with a private cache, runtime folder and
# settings folder, each container with a mount of its own (the shared mount
# has its own section); extra VAR=value words may come first.
as_user() {
  local vars=()
  while [[ $# -gt 0 && $1 == *=* && $1 != -* ]]; do
    vars+=("$1")
    shift
  done
  "$LAB" run --name "${DEEPOPS_TEST_LAB:-main}" -- env DEEPOPS_CACHE_PATH="$work/cache" DEEPOPS_RUNTIME_PATH="$work/runtime" \
    DEEPOPS_DATA_PATH="$work/data" DEEPOPS_SYSCONF_DIR="$work/conf" DEEPOPS_IMAGE_MOUNT_LINGER=0 "${vars[@]}" "$CTR" "$@"
}
# expect NAME WANT COMMAND...: the command's stdout (trimmed) must equal WANT.
expect() {
  local name=$1 want=$2 got
  shift 2
  got=$("$@" 2>"$work/stderr") || true
  if [[ $got == "$want" ]]; then pass "$name"; else
    fail "$name: got '$got', want '$want' ($(head -c 300 "$work/stderr"))"
  fi
}
# expect_fail NAME PATTERN COMMAND...: must fail with PATTERN on stderr.
expect_fail() {
  local name=$1 pattern=$2
  shift 2
  if "$@" >"$work/stdout" 2>"$work/stderr"; then
    fail "$name: succeeded ($(head -c 200 "$work/stdout"))"
  elif grep -q -- "$pattern" "$work/stderr"; then pass "$name"; else
    fail "$name: error does not mention '$pattern': $(head -c 300 "$work/stderr")"
  fi
}

IMG=$DEEPOPS_LAB_REGISTRY/deepops/tiny
as_user import -q --allow-http "$DEEPOPS_LAB_REGISTRY" "$IMG" >/dev/null

# ---- a standalone .sqsh from import -o keeps the image's CMD and ENV beside it
as_user import -q -o "$work/shared/tiny.sqsh" --allow-http "$DEEPOPS_LAB_REGISTRY" "$IMG" >/dev/null
got=$(echo 'echo from-cmd' | as_user start "$work/shared/tiny.sqsh" 2>&1 || true)
if [[ $got == from-cmd && -f $work/shared/tiny.json ]]; then pass "import -o: start FILE.sqsh runs the image's CMD"; else
  fail "import -o then start FILE: got '$got'"
fi

# ---- identity
expect "id inside is the user's" "$USER_UID:$USER_GID:$USER_NAME" as_user start "$IMG" sh -c 'echo $(id -u):$(id -g):$(id -un)'
expect "uid_map maps the user onto itself, as Enroot's" "$USER_UID $USER_UID 1" as_user start "$IMG" sh -c 'echo $(cat /proc/self/uid_map)'
expect "gid_map maps the group onto itself" "$USER_GID $USER_GID 1" as_user start "$IMG" sh -c 'echo $(cat /proc/self/gid_map)'
expect "--remap-root: uid 0 inside" "0:0:root" as_user start --remap-root "$IMG" sh -c 'echo $(id -u):$(id -g):$(id -un)'
expect "--remap-root: uid_map 0 -> user" "0 $USER_UID 1" as_user start -r "$IMG" sh -c 'echo $(cat /proc/self/uid_map)'
expect "image files belong to the user" "$USER_UID" as_user start "$IMG" stat -c %u /bin/busybox
expect "--remap-root: image files belong to root" "0" as_user start -r "$IMG" stat -c %u /bin/busybox

# ---- the seccomp filter: set*id and chown succeed and do nothing
expect "the seccomp filter is on (Seccomp: 2)" "2" as_user start "$IMG" sh -c 'grep "^Seccomp:" /proc/self/status | cut -f2'
expect "--no-seccomp: no filter" "0" as_user start --no-seccomp "$IMG" sh -c 'grep "^Seccomp:" /proc/self/status | cut -f2'
expect "SECCOMP_FILTER=no: no filter" "0" as_user DEEPOPS_SECCOMP_FILTER=no start "$IMG" sh -c 'grep "^Seccomp:" /proc/self/status | cut -f2'
touch "$work/shared/owned"
chown "$USER_NAME:" "$work/shared/owned"
expect "chown of a host file 'succeeds' inside" "chown-ok" as_user start -r -m "$work/shared:/shared" "$IMG" sh -c 'chown 0:0 /shared/owned && chown 65534:65534 /shared/owned && echo chown-ok'
owner=$(stat -c %U:%G "$work/shared/owned")
if [[ $owner == "$USER_NAME:$(id -gn "$USER_NAME")" ]]; then pass "the faked chown left the host file's owner alone"; else
  fail "the host file's owner changed to $owner"
fi
expect_fail "without the filter, chown to another id fails" "Invalid argument" as_user start --no-seccomp -r -m "$work/shared:/shared" "$IMG" busybox chown 65534 /shared/owned

# ---- read-only and writable roots
expect_fail "read-only root refuses writes" "Read-only file system" as_user start "$IMG" touch /newfile
expect "--rw root takes writes" "yes" as_user start --rw "$IMG" sh -c 'echo x >/newfile && test -f /newfile && echo yes'
expect "writes are gone after exit" "absent" as_user start --rw "$IMG" sh -c 'test -e /newfile && echo present || echo absent'
expect "/tmp is writable in a read-only root" "ok" as_user start "$IMG" sh -c 'touch /tmp/x && echo ok'

# ---- fuse-overlayfs, for kernels without overlay in a user namespace
expect "OVERLAY=fuse: fuse-overlayfs carries the root" "fuse.fuse-overlayfs" as_user DEEPOPS_OVERLAY=fuse start "$IMG" sh -c 'grep " / " /proc/self/mounts | cut -d" " -f3'
expect_fail "OVERLAY=fuse: read-only still refuses writes" "Read-only file system" as_user DEEPOPS_OVERLAY=fuse start "$IMG" touch /newfile
expect "OVERLAY=fuse: --rw takes writes" "yes" as_user DEEPOPS_OVERLAY=fuse start --rw "$IMG" sh -c 'echo x >/newfile && test -f /newfile && echo yes'
expect_fail "a bad OVERLAY value names itself" "is not auto, kernel or fuse" as_user DEEPOPS_OVERLAY=zfs start "$IMG" true

# ---- remap-root and a bind-mounted host folder
as_user start --rw -r -m "$work/shared:/shared" "$IMG" sh -c 'touch /shared/made-by-root' || true
owner=$(stat -c %U "$work/shared/made-by-root" 2>/dev/null || echo missing)
if [[ $owner == "$USER_NAME" ]]; then pass "remap-root writes land as the user on the host"; else
  fail "file made as root inside is owned by '$owner' on the host"
fi

# ---- security: host files stay as readable as they were
expect_fail "bind of /etc/shadow: still unreadable" "Permission denied" as_user start -m /etc/shadow:/shadow "$IMG" cat /shadow
expect_fail "bind of /etc/shadow with remap-root: still unreadable" "Permission denied" as_user start -r -m /etc/shadow:/shadow "$IMG" cat /shadow
expect_fail "fstab-style bind of /etc/shadow: still unreadable" "Permission denied" as_user start --mount "/etc/shadow /shadow none bind,x-create=file" "$IMG" cat /shadow
expect_fail "bind of /root (0700): contents stay unreadable" "Permission denied" as_user start -m /root:/hostroot "$IMG" ls /hostroot
expect_fail "bind of /root with remap-root: contents stay unreadable" "Permission denied" as_user start -r -m /root:/hostroot "$IMG" ls /hostroot
expect_fail "'..' in a CLI mount target: rejected" "contains '..'" as_user start -m "$work/shared:/../../etc" "$IMG" true
mkdir -p "$work/conf/mounts.d"
echo "$work/shared /a/../../../etc none bind" >"$work/conf/mounts.d/evil.fstab"
expect_fail "'..' in a mounts.d target: rejected" "evil.fstab:1" as_user start "$IMG" true
rm "$work/conf/mounts.d/evil.fstab"

# A hand-made image: a setuid-root probe, and a symlink aiming out of the root.
tree=$work/evil-tree
mkdir -p "$tree/bin" "$tree/etc" "$work/outside"
cp /bin/busybox "$tree/bin/busybox"
for a in sh cat id echo test ls; do ln -s busybox "$tree/bin/$a"; done
gcc -static -O1 -o "$tree/suid-probe" -x c - <<'C'
#include <stdio.h>
#include <unistd.h>
int main(void) {
  printf("%u %d\n", geteuid(), setuid(0));
  return 0;
}
C
chmod 4755 "$tree/suid-probe"
ln -s "/../../../../../..$work/outside" "$tree/escape"
mksquashfs "$tree" "$work/evil.sqsh" -all-root -noappend -quiet >/dev/null
chmod 0644 "$work/evil.sqsh"
# (setuid(0) "succeeds" under the seccomp filter, and the euid stays the user's.)
expect "setuid-root binary in an image grants nothing" "$USER_UID 0" as_user start "$work/evil.sqsh" /suid-probe
expect "setuid-root binary grants nothing without the filter" "$USER_UID -1" as_user start --no-seccomp "$work/evil.sqsh" /suid-probe
expect "setuid-root binary grants nothing with remap-root either" "0 0" as_user start -r "$work/evil.sqsh" /suid-probe
as_user start -m "$work/shared:/escape/inside:x-create=dir" "$work/evil.sqsh" true >/dev/null 2>&1 || true
if [[ -z $(ls -A "$work/outside") ]]; then pass "a symlink in the image cannot lead a mount out of the root"; else
  fail "a mount through /escape created $(ls -A "$work/outside") on the host"
fi

# ---- environment, workdir, settings
expect "image ENV applies" "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" as_user start "$IMG" sh -c 'echo $PATH'
expect "--env sets a variable" "bar" as_user start -e FOO=bar "$IMG" sh -c 'echo $FOO'
mkdir -p "$work/conf/environ.d"
printf '# site settings\nSITE_GREETING="hello ${USER}"\n' >"$work/conf/environ.d/site.env"
expect "environ.d files apply, with \${VAR}" "hello $USER_NAME" as_user start "$IMG" sh -c 'echo $SITE_GREETING'
expect "--env beats environ.d" "mine" as_user start -e SITE_GREETING=mine "$IMG" sh -c 'echo $SITE_GREETING'
expect "--workdir" "/etc" as_user start -w /etc "$IMG" pwd
expect "--entrypoint runs before the command" "from entrypoint" as_user start --entrypoint /bin/echo "$IMG" from entrypoint
expect "--unshare net: a network namespace with only lo" "lo" as_user start --unshare net "$IMG" sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "'
expect "/etc/hostname is the host's" "$(hostname)" as_user start "$IMG" cat /etc/hostname
if [[ -e /etc/localtime ]]; then
  expect "/etc/localtime is the host's" "$(sha256sum </etc/localtime | cut -c1-16)" as_user start "$IMG" sh -c 'sha256sum </etc/localtime | cut -c1-16'
fi
expect_fail "missing --workdir is an error" "working directory /nope" as_user start -w /nope "$IMG" true
echo "tmpfs /scratch tmpfs size=1m,x-create=dir" >"$work/conf/mounts.d/scratch.fstab"
expect "mounts.d entries apply" "tmpfs" as_user start "$IMG" sh -c 'grep " /scratch " /proc/self/mounts | cut -d" " -f3'
echo "REMAP_ROOT yes" >"$work/conf/deepops.conf"
expect "deepops.conf sets defaults" "0" as_user start "$IMG" id -u
expect "the environment beats deepops.conf" "$USER_UID" as_user ENROOT_REMAP_ROOT=no start "$IMG" id -u
expect "the command line beats the environment" "0" as_user DEEPOPS_REMAP_ROOT=no start -r "$IMG" id -u
rm "$work/conf/deepops.conf"
expect "--mount-home binds the home folder" "$(getent passwd "$USER_NAME" | cut -d: -f6)" as_user start --mount-home "$IMG" sh -c 'cd && pwd'
home=$(getent passwd "$USER_NAME" | cut -d: -f6)
touch "$home/.deepops-home-probe"
chown "$USER_NAME:" "$home/.deepops-home-probe"
expect "--mount-home --remap-root: the home at /root, HOME=/root, as Enroot" "/root yes" as_user start -r --mount-home "$IMG" sh -c 'cd && echo $(pwd) $(test -e /root/.deepops-home-probe && echo yes)'
rm -f "$home/.deepops-home-probe"
expect "passwd has the user" "$USER_NAME" as_user start "$IMG" sh -c 'grep "^$(id -un):" /etc/passwd | cut -d: -f1'

# ---- native hooks against a fixture tree standing in for a GPU + RDMA host
fx=$work/host
make_host_fixture "$fx"
hooked() { as_user DEEPOPS_HOST_ROOT="$fx" "$@"; }
expect "GPU hook: nvidia-smi runs inside, with every GPU" "fake nvidia-smi sees GPUs all /dev/nvidia0 /dev/nvidia1" \
  hooked start --restrict-dev -e NVIDIA_VISIBLE_DEVICES=all "$IMG" sh -c 'echo $(nvidia-smi) /dev/nvidia[0-9]' 
expect "GPU hook: Slurm's allocation picks the device nodes" "/dev/nvidia-uvm /dev/nvidia1 /dev/nvidiactl" \
  hooked SLURM_JOB_ID=7 SLURM_STEP_GPUS=1 start --restrict-dev -e NVIDIA_VISIBLE_DEVICES=all "$IMG" sh -c 'echo /dev/nvidia*'
expect "GPU hook: compute adds libcuda of the running driver" "libcuda 550" \
  hooked start --restrict-dev -e NVIDIA_VISIBLE_DEVICES=0 -e NVIDIA_DRIVER_CAPABILITIES=compute "$IMG" cat /usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15
expect "GPU hook: off without NVIDIA_VISIBLE_DEVICES" "none" \
  hooked start --restrict-dev "$IMG" sh -c 'ls /dev/nvidia* 2>/dev/null || echo none'
expect_fail "GPU hook: a GPU the job was not given is refused" "was not given" \
  hooked SLURM_JOB_ID=7 SLURM_STEP_GPUS=1 start --restrict-dev -e NVIDIA_VISIBLE_DEVICES=0 "$IMG" true
expect "InfiniBand hook: only the chosen device's nodes" "/dev/infiniband/rdma_cm /dev/infiniband/uverbs1" \
  hooked start --restrict-dev -e MELLANOX_VISIBLE_DEVICES=1 "$IMG" sh -c 'echo /dev/infiniband/*'

# ---- PMIx: srun --mpi=pmix, each rank in a container of the Debian+OpenMPI image
MPI_IMG=$DEEPOPS_LAB_REGISTRY/deepops/debian-openmpi
as_user import -q --allow-http "$DEEPOPS_LAB_REGISTRY" "$MPI_IMG" >/dev/null
install -m 0755 "$MPI_HELLO" "$work/shared/mpi_hello"
# OpenMPI's vader transport cannot share /dev/shm between loopback nodes (tests/lab/README.md).
mpi_out=$("$LAB" run --name "${DEEPOPS_TEST_LAB:-main}" -- env DEEPOPS_CACHE_PATH="$work/cache" DEEPOPS_RUNTIME_PATH="$work/runtime" DEEPOPS_IMAGE_MOUNT_LINGER=0 \
  DEEPOPS_SYSCONF_DIR="$work/conf" DEEPOPS_SLURM_TMPFS="$DEEPOPS_LAB/slurm/tmp/%n" OMPI_MCA_btl='^vader' \
  timeout 120 srun -N2 --mpi=pmix "$CTR" start -m "$work/shared/mpi_hello:/usr/local/bin/mpi_hello" "$MPI_IMG" mpi_hello 2>&1 || true)
if [[ $(grep -c 'sum of ranks 1$' <<<"$mpi_out") == 2 ]]; then pass "PMIx: an MPI all-reduce across 2 nodes, ranks in containers"; else
  fail "PMIx MPI job: $(head -c 600 <<<"$mpi_out")"
fi

# The GPU hook refreshes the image's ld.so cache: a real ELF stands in for libcuda.
gcc -shared -Wl,-soname,libcuda.so.1 -o "$fx/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15" -x c /dev/null
expect "GPU hook: ldconfig inside finds the driver's libcuda.so.1" "libcuda.so.1" \
  hooked start --restrict-dev -e NVIDIA_VISIBLE_DEVICES=all -e NVIDIA_DRIVER_CAPABILITIES=compute "$MPI_IMG" \
  sh -c 'ldconfig -p | grep -o "libcuda.so.1 " | head -1 | tr -d " "'

# ---- admin hooks (hooks.d)
mkdir -p "$work/conf/hooks.d"
cat >"$work/conf/hooks.d/10-site.sh" <<'HOOK'
#!/bin/sh
test -d "$ENROOT_ROOTFS/bin" || { echo "no rootfs at $ENROOT_ROOTFS"; exit 1; }
echo "SITE_HOOK=ran-as-$(id -u)" >>"$ENROOT_ENVIRON"
echo "tmpfs /hooked tmpfs x-create=dir,size=1m" >>"$ENROOT_MOUNTS"
HOOK
chmod 0755 "$work/conf/hooks.d/10-site.sh"
# Hooks run as the container's user, as Enroot's: the user, or root when remapped.
expect "admin hook: its environ and mounts apply" "ran-as-$USER_UID tmpfs" \
  as_user start "$IMG" sh -c 'echo $SITE_HOOK $(grep " /hooked " /proc/self/mounts | cut -d" " -f3)'
expect "admin hook: runs as root with --remap-root" "ran-as-0" as_user start -r "$IMG" sh -c 'echo $SITE_HOOK'
printf '#!/bin/sh\necho "license server unreachable"\nexit 3\n' >"$work/conf/hooks.d/20-license.sh"
chmod 0755 "$work/conf/hooks.d/20-license.sh"
expect_fail "a failing admin hook is named, with its output" "20-license.sh exited with status 3" as_user start "$IMG" true
expect_fail "... and its output is shown" "license server unreachable" as_user start "$IMG" true
printf '#!/bin/sh\necho "/tmp /../../etc none bind" >>"$ENROOT_MOUNTS"\n' >"$work/conf/hooks.d/20-license.sh"
expect_fail "'..' in a hook's mounts is rejected" "contains '..'" as_user start "$IMG" true
rm -r "$work/conf/hooks.d"

# ---- named containers: create, persistent writes, exec, export, remove
expect "create prints the name" "dev" as_user create --name dev "$IMG"
expect_fail "create refuses a taken name" "exists" as_user create --name dev "$IMG"
expect_fail "create refuses a bad name" "invalid container name" as_user create --name ../x "$IMG"
as_user start dev sh -c 'echo kept >/etc/state' >/dev/null
expect "a named container keeps its writes" "kept" as_user start dev cat /etc/state
as_user start dev sh -c 'echo inside >/tmp/marker; echo ready; exec sleep 30' >"$work/named.out" &
named=$!
for _ in $(seq 200); do grep -q ready "$work/named.out" 2>/dev/null && break; sleep 0.05; done
expect "list --containers shows it running" "running" bash -c "'$LAB' run --name main -- env DEEPOPS_DATA_PATH='$work/data' '$CTR' list --containers --json | python3 -c 'import json,sys; print([\"stopped\",\"running\"][json.load(sys.stdin)[0][\"running\"]])'"
expect "exec joins the running container (its /tmp, its writes)" "inside kept $USER_UID" as_user exec dev sh -c 'echo $(cat /tmp/marker) $(cat /etc/state) $(id -u)'
expect_fail "a second start of a running container points to exec" "deepops-ctr exec dev" as_user start dev true
expect_fail "remove refuses a running container" "is running" as_user remove dev
pkill -TERM -u "$USER_NAME" -f 'sleep 30' || true
wait "$named" || true
expect_fail "exec into a stopped container says so" "is not running" as_user exec dev true
expect "export writes a new image" "$work/shared/dev.sqsh" as_user export dev "$work/shared/dev.sqsh"
expect "the exported image has the writes" "kept" as_user start "$work/shared/dev.sqsh" cat /etc/state
expect "remove deletes it" "removed container dev" as_user remove dev
if [[ -z $(ls -A "$work/data/containers") ]]; then pass "nothing of it is left"; else
  fail "left in the data folder: $(ls -A "$work/data/containers")"
fi

# ---- exit status and signals
as_user start "$IMG" sh -c 'exit 7' && rc=0 || rc=$?
if [[ $rc == 7 ]]; then pass "exit status is propagated"; else fail "exit status $rc, want 7"; fi
as_user start "$IMG" /no/such/command 2>/dev/null && rc=0 || rc=$?
if [[ $rc == 127 ]]; then pass "a missing command exits 127"; else fail "missing command: exit $rc"; fi
as_user start -m /no/such/source:/x "$IMG" true 2>/dev/null && rc=0 || rc=$?
if [[ $rc == 125 ]]; then pass "a container that cannot start exits 125"; else fail "failed start: exit $rc, want 125"; fi
as_user start "$IMG" sh -c 'echo ready; exec sleep 60' >"$work/sig.out" &
keeper=$!
for _ in $(seq 100); do grep -q ready "$work/sig.out" 2>/dev/null && break; sleep 0.05; done
# The oldest match is the keeper; the squashfs server is its child.
kill -TERM "$(pgrep -o -u "$USER_NAME" -f '^/.*deepops-ctr start')"
wait "$keeper" && rc=0 || rc=$?
if [[ $rc == 143 ]]; then pass "SIGTERM reaches the command (exit 143)"; else fail "SIGTERM: exit $rc, want 143"; fi

# A terminal's Ctrl-C (or timeout) signals the whole process group: the
# command stops, and the container's servers wait for it rather than die first.
"$LAB" run --name "${DEEPOPS_TEST_LAB:-main}" -- env DEEPOPS_CACHE_PATH="$work/cache" DEEPOPS_RUNTIME_PATH="$work/runtime" DEEPOPS_IMAGE_MOUNT_LINGER=0 \
  timeout -s INT 2 "$CTR" start "$IMG" sh -c 'trap "echo interrupted; kill \$!; exit 3" INT; sleep 30 & wait' >"$work/int.out" 2>"$work/int.err" || true
if grep -q interrupted "$work/int.out" && ! grep -q 'server.*died' "$work/int.err"; then
  pass "Ctrl-C to the process group reaches the command, not the servers"
else
  fail "group SIGINT: out '$(cat "$work/int.out")', err '$(head -c 300 "$work/int.err")'"
fi

as_user start "$IMG" sh -c 'echo ready; exec sleep 61' >"$work/kill.out" &
keeper=$!
for _ in $(seq 100); do grep -q ready "$work/kill.out" 2>/dev/null && break; sleep 0.05; done
kill -KILL "$(pgrep -o -u "$USER_NAME" -f '^/.*deepops-ctr start')"
wait "$keeper" || true
for _ in $(seq 100); do pgrep -u "$USER_NAME" -f 'sleep 61|deepops-sqfs' >/dev/null || break; sleep 0.05; done
if pgrep -u "$USER_NAME" -f 'sleep 61|deepops-sqfs' >/dev/null; then
  fail "SIGKILL of deepops-ctr left: $(pgrep -u "$USER_NAME" -af 'sleep 61|deepops-sqfs')"
else pass "SIGKILL of deepops-ctr takes the command and the squashfs server with it"; fi

# ---- the image's mount, shared by the user's containers of one image
# (IMAGE_MOUNT_LINGER 2 s here): one deepops-image server for two running
# containers, each showing the files' owner as it maps it, a second image
# with a server of its own, and every server gone once its last container
# has been gone for the linger time.
# shellcheck disable=SC2317 # called through wait_until
count_image_servers() { pgrep -u "$USER_NAME" -x deepops-image | wc -l || true; }
no_server() { [[ $(count_image_servers) == 0 ]]; }
wait_until 100 no_server || fail "an image server was running before the shared-mount checks"
as_user DEEPOPS_IMAGE_MOUNT_LINGER=2 start "$MPI_IMG" sh -c 'echo ready; exec sleep 60' >"$work/share.out" &
sharer=$!
for _ in $(seq 100); do grep -q ready "$work/share.out" 2>/dev/null && break; sleep 0.05; done
expect "a second container of the image, remapped to root, sees root's files" "0" \
  as_user DEEPOPS_IMAGE_MOUNT_LINGER=2 start -r "$MPI_IMG" stat -c %u /usr/bin/env
expect "and one without remapping sees its own" "$(id -u "$USER_NAME")" \
  as_user DEEPOPS_IMAGE_MOUNT_LINGER=2 start "$MPI_IMG" stat -c %u /usr/bin/env
servers=$(count_image_servers)
keeper_children=$(pgrep -u "$USER_NAME" -x deepops-sqfs -P "$(pgrep -o -u "$USER_NAME" -f '^/.*deepops-ctr start')" | wc -l || true)
if [[ $servers == 1 && $keeper_children == 0 ]]; then
  pass "three containers of one image: one image server, and no squashfs server of a container's own"
else fail "shared mount: $servers image servers, $keeper_children squashfs servers under the running container"; fi
as_user DEEPOPS_IMAGE_MOUNT_LINGER=5 start "$IMG" true
if [[ $(count_image_servers) == 2 ]]; then pass "another image gets a server of its own"; else
  fail "another image: $(count_image_servers) image servers, want 2"
fi
kill -TERM "$(pgrep -o -u "$USER_NAME" -f '^/.*deepops-ctr start')"
wait "$sharer" || true
if wait_until 100 no_server && ! pgrep -u "$USER_NAME" -x deepops-sqfs >/dev/null; then
  pass "image servers end the linger time after their last container"
else fail "image servers left: $(pgrep -a -u "$USER_NAME" 'deepops-(image|sqfs)')"; fi

# ---- deepops-ctr check, and a /dev/fuse that users cannot open
expect "check passes on the lab" "0" bash -c "'$LAB' run --name main -- '$CTR' check >/dev/null; echo \$?"
fuse_mode=$(stat -c %a /dev/fuse)
trap 'chmod "$fuse_mode" /dev/fuse; rm -rf "$work"' EXIT
chmod 0600 /dev/fuse
expect_fail "check names /dev/fuse and its fix" "chmod 0666 /dev/fuse" bash -c "'$LAB' run --name main -- '$CTR' check 1>&2"
expect_fail "start explains an unusable /dev/fuse" "/dev/fuse must be usable by users" as_user start "$IMG" true
chmod "$fuse_mode" /dev/fuse

# ---- 500 starts leave nothing behind
mounts_before=$(wc -l </proc/self/mountinfo)
as_user start "$IMG" true >/dev/null
if "$LAB" run --name "${DEEPOPS_TEST_LAB:-main}" -- env DEEPOPS_CACHE_PATH="$work/cache" DEEPOPS_RUNTIME_PATH="$work/runtime" DEEPOPS_IMAGE_MOUNT_LINGER=0 \
  DEEPOPS_SYSCONF_DIR="$work/conf" bash -c 'for i in $(seq 500); do "$0" start "$1" true || exit 1; done' "$CTR" "$IMG"; then
  pass "500 starts in a row succeeded"
else
  fail "a start in the loop of 500 failed"
fi
leftover_procs=$(pgrep -u "$USER_NAME" -f 'deepops-sqfs|deepops-ctr|fuse-overlayfs' || true)
leftover_dirs=$(ls -A "$work/runtime")
mounts_after=$(wc -l </proc/self/mountinfo)
if [[ -z $leftover_procs && -z $leftover_dirs && $mounts_before == "$mounts_after" ]]; then
  pass "500 starts left no process, folder or mount"
else
  fail "after 500 starts: processes '$leftover_procs', folders '$leftover_dirs', mounts $mounts_before -> $mounts_after"
fi

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
