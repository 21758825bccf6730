#!/usr/bin/env bash
# Builds the "debian-openmpi" test image: Debian 12 minbase from debootstrap
# (layer 1) plus OpenMPI and an MPI hello program's runtime needs (layer 2).
# Packages come from Debian's mirror; nothing is pulled from an image registry.
# The result is cached; a rebuild happens only when this script changes.
# Needs root (debootstrap, chroot).
set -euo pipefail
# shellcheck source=tests/images/common.sh
source "$(dirname "$0")/common.sh"

NAME=debian-openmpi
KEY=$(cache_key "$0")
begin_locked_build "$NAME" "$KEY"
rootfs=$work/bundle/rootfs
cleanup() {
  local m
  for m in proc dev/pts dev; do mountpoint -q "$rootfs/$m" 2>/dev/null && umount -l "$rootfs/$m"; done
  rm -rf "$work"
}
trap cleanup EXIT

cd "$work"
debootstrap_bundle "$NAME"
rm -rf "$rootfs"/var/lib/apt/lists/*
umoci repack --refresh-bundle --image oci:$NAME bundle

log "installing OpenMPI into the image"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
mount -t proc proc "$rootfs/proc"
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c \
  'apt-get update -qq && apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends openmpi-bin libopenmpi3 libpmix2 >/dev/null' ||
  die "apt-get inside the image failed"
umount "$rootfs/proc"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs/usr/sbin/policy-rc.d"
: >"$rootfs/etc/resolv.conf"
umoci repack --image oci:$NAME bundle

umoci config --image oci:$NAME --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.cmd /bin/bash --config.workingdir / --config.label org.deepops.test=debian-openmpi
umoci tag --image oci:$NAME latest
umoci gc --layout oci
rm -rf bundle debootstrap.log
publish "$NAME" "$KEY" "$work/oci"
