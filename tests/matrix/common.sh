# shellcheck shell=bash
# Shared by the release-matrix scripts; sourced, not run.
#
# The supported Slurm releases, each with the Debian suite whose packages
# provide it. 22.05 is the host itself (Debian 12's packages); the others run
# in a release root, a debootstrapped Debian of that suite kept under
# $DEEPOPS_ROOT_CACHE.
SUPPORTED_RELEASES=(22.05 24.11 26.05)
: "${DEEPOPS_ROOT_CACHE:=/var/cache/deepops-lab/roots}"
: "${DEEPOPS_IMAGE_CACHE:=/var/cache/deepops-lab/images}"
MATRIX_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this
MATRIX_REPO=$(cd "$MATRIX_SRC/../.." && pwd)

mlog() { printf '[matrix %s] %s\n' "${RELEASE:-?}" "$*" >&2; }
mdie() { printf '[matrix %s] error: %s\n' "${RELEASE:-?}" "$*" >&2; exit 1; }

# release_suite RELEASE: "host" or the Debian suite to debootstrap.
release_suite() {
  case $1 in
    22.05) echo host ;;
    24.11) echo trixie ;;
    26.05) echo sid ;;
    *) return 1 ;;
  esac
}

check_release() {
  release_suite "$1" >/dev/null ||
    mdie "unknown Slurm release '$1' (supported: ${SUPPORTED_RELEASES[*]})"
}

# slurm_release_of DPKG_ROOT: the Slurm release (major.minor) whose
# libslurm-dev is installed under DPKG_ROOT ("/" for the host).
slurm_release_of() {
  dpkg-query --admindir="$1/var/lib/dpkg" -W -f='${Version}' libslurm-dev 2>/dev/null |
    sed -E 's/^([0-9]+:)?([0-9]+\.[0-9]+).*/\2/'
}

root_dir() { printf '%s/%s\n' "$DEEPOPS_ROOT_CACHE" "$1"; }
