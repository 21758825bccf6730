# Debian's Podman, run rootless by a test user, with storage of the test's
# own: shared by the tests of podman:// images (import_daemon_test.sh without
# a lab, spank_daemon_test.sh through the lab's Slurm). Source it after
# `set -euo pipefail`.
#
# Rootless Podman needs subordinate id ranges for the user (/etc/subuid and
# /etc/subgid, used through newuidmap from uidmap): added when the user has
# none. Its storage is DIR/storage (vfs: no overlay in the user namespace
# needed), named by CONTAINERS_STORAGE_CONF, which the `podman save` that
# deepops runs inherits from the user's environment; podman 4.3 takes
# rootless_storage_path there, not graphroot. No systemd session here: no
# journald events, cgroups by path.
# shellcheck shell=bash
# PODMAN_ENV is the sourcing script's:
# shellcheck disable=SC2034

# podman_prepare USER DIR: the user's subordinate ids, DIR/{xdg,storage} and
# DIR's storage.conf and containers.conf (DIR must exist). Sets PODMAN_ENV,
# the variables that point the user's Podman at them (for env).
podman_prepare() {
  local user=$1 dir=$2
  podman_add_subids "$user" /etc/subuid --add-subuids
  podman_add_subids "$user" /etc/subgid --add-subgids
  mkdir -p "$dir/xdg" "$dir/storage"
  chmod 0700 "$dir/xdg"
  chown "$user:" "$dir/xdg" "$dir/storage"
  cat >"$dir/storage.conf" <<CONF
[storage]
driver = "vfs"
rootless_storage_path = "$dir/storage"
CONF
  cat >"$dir/containers.conf" <<CONF
[engine]
events_logger = "none"
cgroup_manager = "cgroupfs"
CONF
  PODMAN_ENV=(XDG_RUNTIME_DIR="$dir/xdg" CONTAINERS_STORAGE_CONF="$dir/storage.conf"
    CONTAINERS_CONF="$dir/containers.conf")
}

# podman_add_subids USER FILE FLAG: a range of 65536 ids after every range in
# FILE, unless USER has one.
podman_add_subids() {
  if grep -q "^$1:" "$2" 2>/dev/null; then return 0; fi
  local start
  start=$(awk -F: 'BEGIN { m = 100000 } { if ($2 + $3 > m) m = $2 + $3 } END { print m }' "$2" 2>/dev/null || echo 100000)
  usermod "$3" "$start-$((start + 65535))" "$1"
}

# podman_image DIR NAME CONTENT RUNNER...: NAME (NAME:TAG) in the user's
# Podman holds a static busybox and /etc/deepops-daemon-test reading CONTENT;
# made offline (`podman import` of a rootfs tar in DIR), run by RUNNER...,
# the command that runs its arguments as the user with PODMAN_ENV. Exits the
# test when Podman refuses.
podman_image() {
  local dir=$1 name=$2 content=$3 busybox
  shift 3
  busybox=$(command -v busybox) || { echo "FAIL busybox is missing: run packaging/install-deps.sh"; exit 1; }
  rm -rf "$dir/rootfs" "$dir/rootfs.tar"
  mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc"
  cp "$busybox" "$dir/rootfs/bin/busybox"
  ln -s busybox "$dir/rootfs/bin/sh"
  ln -s busybox "$dir/rootfs/bin/cat"
  echo "$content" >"$dir/rootfs/etc/deepops-daemon-test"
  tar -C "$dir/rootfs" -cf "$dir/rootfs.tar" .
  chmod 0644 "$dir/rootfs.tar"
  if ! "$@" podman import --quiet "$dir/rootfs.tar" "$name" >/dev/null 2>"$dir/podman-import.err"; then
    echo "FAIL podman import as the user: $(head -c 1000 "$dir/podman-import.err")"
    exit 1
  fi
}

# podman_stop DIR RUNNER...: the user's images removed and Podman's rootless
# pause process stopped (it would outlive the test). The kill is the user's:
# the pid comes from a file the user writes.
podman_stop() {
  local dir=$1 pause
  shift
  [[ -d $dir/xdg ]] || return 0
  "$@" podman rmi --all --force >/dev/null 2>&1 || true
  pause=$(cat "$dir/xdg/libpod/tmp/pause.pid" 2>/dev/null || true)
  if [[ $pause =~ ^[0-9]+$ ]]; then "$@" kill "$pause" 2>/dev/null || true; fi
}
