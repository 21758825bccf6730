#!/usr/bin/env bash
# Installs every build, test and benchmark dependency from Debian packages.
# Idempotent: when everything is present it only runs `dpkg-query` and exits in
# well under a second. The project's scripts call it; nobody installs by hand.
#
# Usage: packaging/install-deps.sh [--check] [--set all|matrix]
#   --check   list missing packages and exit 1 if any, install nothing.
#   --set     which packages: all (the default: everything run-all.sh uses), or
#             matrix (what tests/matrix/ needs in a Slurm release root: the
#             build, Slurm, MPI, mounts, registry, lab and the deb; no fuzzing,
#             linters, rpm or Ansible). DEEPOPS_DEPS_SET sets the default, so
#             every script run inside a release root checks that set.
# Works on Debian 12 (bookworm), 13 (trixie) and unstable (sid).
set -euo pipefail

CHECK=0 SET=${DEEPOPS_DEPS_SET:-all}
while [[ $# -gt 0 ]]; do
  case $1 in
    --check) CHECK=1; shift ;;
    --set) SET=${2:-}; shift 2 ;;
    *) echo "install-deps: unknown argument '$1' (usage: install-deps.sh [--check] [--set all|matrix])" >&2; exit 2 ;;
  esac
done

# clang's runtime (LeakSanitizer, libFuzzer): bookworm names it by version;
# later releases have the unversioned package of their default clang.
. /etc/os-release
if [[ ${VERSION_CODENAME:-} == bookworm ]]; then CLANG_RT=libclang-rt-14-dev; else CLANG_RT=libclang-rt-dev; fi

# Kept grouped so that a packager can see why each one is here.
BUILD=(build-essential cmake ninja-build pkg-config git
  libcurl4-openssl-dev libarchive-dev libsquashfs-dev libsquashfuse-dev
  libfuse3-dev libmount-dev libcap-dev libssl-dev nlohmann-json3-dev
  libslurm-dev libpmix-dev libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libspdlog-dev libfmt-dev zlib1g-dev libzstd-dev libisal-dev)
CLANG=(clang-format clang "$CLANG_RT") # format check, fuzzing, LeakSanitizer
SLURM=(slurmctld slurmd slurm-client munge)
MPI=(openmpi-bin libopenmpi-dev)
MOUNTS=(squashfuse squashfs-tools fuse3 fuse-overlayfs)
REGISTRY=(docker-registry skopeo apache2-utils openssl curl ca-certificates jq)
IMAGES=(busybox-static debootstrap python3 zstd pigz umoci apt-utils) # apt-utils: apt-ftparchive indexes the lab apt repository
LAB=(iproute2 iputils-ping procps psmisc util-linux kmod)
BENCH=(hyperfine time bc)
DAEMON=(podman uidmap) # import.daemon, spank.daemon: podman:// from the test user's rootless Podman (newuidmap)
LINT=(shellcheck)
DEB=(dpkg-dev file man-db) # the deb (CPack's shlibdeps needs file), and man to find its pages
PACKAGE=(lintian rpm rpmlint ansible-core) # the rpm, the packages' checkers, the playbook

case $SET in
  all)
    ALL=("${BUILD[@]}" "${CLANG[@]}" "${SLURM[@]}" "${MPI[@]}" "${MOUNTS[@]}" "${REGISTRY[@]}"
      "${IMAGES[@]}" "${LAB[@]}" "${BENCH[@]}" "${DAEMON[@]}" "${LINT[@]}" "${DEB[@]}"
      "${PACKAGE[@]}") ;;
  matrix)
    # The images are built on the host and read from its cache.
    # ccache: a release root keeps its compiler cache between runs, and a
    # fresh clone's new file times would otherwise rebuild everything.
    # busybox-static: spank.daemon makes its Podman image from it.
    ALL=("${BUILD[@]}" ccache "${SLURM[@]}" "${MPI[@]}" "${MOUNTS[@]}" "${REGISTRY[@]}"
      python3 zstd "${LAB[@]}" "${DEB[@]}" "${DAEMON[@]}" busybox-static) ;;
  *) echo "install-deps: unknown set '$SET' (all or matrix)" >&2; exit 2 ;;
esac

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
  echo "install-deps: all ${#ALL[@]} packages present ($SET set)"
  exit 0
fi
if [[ $CHECK -eq 1 ]]; then
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
log=$(mktemp)
trap '[[ $created_policy -eq 1 ]] && rm -f "$policy"; rm -f "$log"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${MISSING[@]}"; } >"$log" 2>&1; then
  grep -v '^W: Download is performed unsandboxed' "$log" | tail -n 30 >&2
  echo "install-deps: apt-get failed (its last lines above)" >&2
  exit 1
fi
mapfile -t STILL < <(missing_packages)
if [[ ${#STILL[@]} -ne 0 ]]; then
  echo "install-deps: still missing after apt-get: ${STILL[*]}" >&2
  exit 1
fi
echo "install-deps: done"
