#!/usr/bin/env bash
# Installs every build, test and benchmark dependency from Debian packages.
# Idempotent: when everything is present it only runs `dpkg-query` and exits in
# well under a second. The project's scripts call it; nobody installs by hand.
#
# Usage: packaging/install-deps.sh [--check]
#   --check   list missing packages and exit 1 if any, install nothing.
set -euo pipefail

# Kept grouped so that a packager can see why each one is here.
BUILD=(build-essential cmake ninja-build pkg-config clang-format clang libclang-rt-14-dev git
  libcurl4-openssl-dev libarchive-dev libsquashfs-dev libsquashfuse-dev
  libfuse3-dev libmount-dev libcap-dev libssl-dev nlohmann-json3-dev
  libslurm-dev libpmix-dev libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libspdlog-dev libfmt-dev zlib1g-dev libzstd-dev libisal-dev)
SLURM=(slurmctld slurmd slurm-client munge)
MPI=(openmpi-bin libopenmpi-dev)
MOUNTS=(squashfuse squashfs-tools fuse3 fuse-overlayfs)
REGISTRY=(docker-registry skopeo apache2-utils openssl curl ca-certificates jq)
IMAGES=(busybox-static debootstrap python3 zstd pigz umoci)
LAB=(iproute2 iputils-ping procps psmisc util-linux kmod)
BENCH=(hyperfine time bc)
LINT=(shellcheck)
PACKAGE=(dpkg-dev lintian rpm rpmlint ansible-core man-db) # deb/rpm builds, their checkers, the playbook, man

ALL=("${BUILD[@]}" "${SLURM[@]}" "${MPI[@]}" "${MOUNTS[@]}" "${REGISTRY[@]}"
  "${IMAGES[@]}" "${LAB[@]}" "${BENCH[@]}" "${LINT[@]}" "${PACKAGE[@]}")

missing_packages() {
  # dpkg-query prints nothing useful for unknown names, so compare status text.
  local pkg
  for pkg in "${ALL[@]}"; do
    if ! dpkg-query -W -f='${db:Status-Status}\n' "$pkg" 2>/dev/null | grep -qx installed; then
      printf '%s\n' "$pkg"
    fi
  done
}

mapfile -t MISSING < <(missing_packages)
if [[ ${#MISSING[@]} -eq 0 ]]; then
  echo "install-deps: all ${#ALL[@]} packages present"
  exit 0
fi
if [[ ${1:-} == --check ]]; then
  printf 'install-deps: missing: %s\n' "${MISSING[*]}"
  exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${MISSING[*]}" >&2
  echo "install-deps: run this script as root (or with sudo) to install them" >&2
  exit 1
fi

echo "install-deps: installing ${#MISSING[@]} packages: ${MISSING[*]}"
export DEBIAN_FRONTEND=noninteractive
# Installing daemons must not start them: the lab starts its own instances.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && created_policy=1
fi
trap '[[ $created_policy -eq 1 ]] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
mapfile -t STILL < <(missing_packages)
if [[ ${#STILL[@]} -ne 0 ]]; then
  echo "install-deps: still missing after apt-get: ${STILL[*]}" >&2
  exit 1
fi
echo "install-deps: done"
