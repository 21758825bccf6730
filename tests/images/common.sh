# shellcheck shell=bash
# Shared helpers for the image builders; sourced, not run.
# Images land as OCI layouts under $DEEPOPS_IMAGE_CACHE (default
# /var/cache/deepops-lab/images), one folder per image, each published with a
# stamp file only once complete, so a killed build is redone, never half-used.

: "${DEEPOPS_IMAGE_CACHE:=/var/cache/deepops-lab/images}"
IMAGES_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

# Cache key: the builder's own text plus anything passed in, so editing a
# builder rebuilds its image and nothing else.
cache_key() {
  cat "$IMAGES_SRC/common.sh" "$@" | sha256sum | cut -c1-16
}

# is_current NAME KEY: the published layout exists and was built from KEY.
is_current() {
  [[ -f $DEEPOPS_IMAGE_CACHE/$1/.built && $(cat "$DEEPOPS_IMAGE_CACHE/$1/.built") == "$2" ]]
}

# publish NAME KEY DIR: atomically replace the cached layout by DIR.
publish() {
  local name=$1 key=$2 dir=$3 dest=$DEEPOPS_IMAGE_CACHE/$1
  printf '%s\n' "$key" >"$dir/.built"
  rm -rf "$dest.old"
  [[ -e $dest ]] && mv "$dest" "$dest.old"
  mv "$dir" "$dest"
  rm -rf "$dest.old"
  log "built $name -> $dest"
}

# First Debian mirror apt is configured with, so debootstrap uses the same one.
debian_mirror() {
  local uri
  uri=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null |
    awk '{print $2}' | grep -v security | head -n1)
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# begin_locked_build NAME KEY: exits 0 when NAME is already built from KEY
# (checked again under NAME's build lock, then held on fd 9 until the builder
# exits, so concurrent runs build once); otherwise sets $work to a fresh
# folder for the build. For the builders that need root (debootstrap, chroot).
begin_locked_build() {
  local name=$1 key=$2
  if is_current "$name" "$key"; then log "$name is cached"; exit 0; fi
  [[ $(id -u) -eq 0 ]] || die "$name needs root (debootstrap and chroot)"
  mkdir -p "$DEEPOPS_IMAGE_CACHE"
  exec 9>"$DEEPOPS_IMAGE_CACHE/.$name.lock"
  flock 9
  if is_current "$name" "$key"; then log "$name is cached"; exit 0; fi
  # shellcheck disable=SC2034 # the builder uses it
  work=$(mktemp -d "$DEEPOPS_IMAGE_CACHE/.$name.XXXXXX")
}

# debootstrap_bundle NAME: in $work (the current folder), an OCI layout with an
# empty image NAME unpacked as ./bundle, whose rootfs then gets a Debian 12
# minbase from the apt mirror, without the downloaded .debs. The caller commits
# it as a layer with `umoci repack`.
debootstrap_bundle() {
  local name=$1 root=bundle/rootfs
  umoci init --layout oci
  umoci new --image "oci:$name"
  umoci unpack --image "oci:$name" bundle >/dev/null
  log "debootstrap bookworm (minbase) from $(debian_mirror)"
  debootstrap --variant=minbase bookworm "$root" "$(debian_mirror)" >debootstrap.log 2>&1 ||
    { tail -n 20 debootstrap.log >&2; die "debootstrap failed"; }
  rm -rf "$root"/var/cache/apt/archives/*.deb
}
