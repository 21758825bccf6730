#!/usr/bin/env bash
# Builds the "large" benchmark image: real files from Debian packages, over
# 2 GB uncompressed in 7 layers, shaped like a realistic ML image (see
# bench/README.md, Targets): a minbase, a compiler toolchain, Python with
# numpy/scipy, big toolchains (LLVM, a JDK), Go with its sources and many
# small header and doc files, then deltas: one that deletes and modifies
# files (whiteouts) and one with an opaque directory.
#
# For benchmarks, not for the default test run. Needs root and Debian's
# mirror; the first build downloads about 700 MB and takes minutes, and the
# result is cached until this script changes.
set -euo pipefail
# shellcheck source=tests/images/common.sh
source "$(dirname "$0")/common.sh"

NAME=large
MIN_BYTES=$((2 * 1000 * 1000 * 1000))
KEY=$(cache_key "$0")
begin_locked_build "$NAME" "$KEY"
rootfs=$work/bundle/rootfs
cleanup() {
  mountpoint -q "$rootfs/proc" 2>/dev/null && umount -l "$rootfs/proc"
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

layer() { # DESCRIPTION: commit the bundle's changes as one layer
  umoci repack --refresh-bundle --image oci:$NAME bundle
  log "layer: $1 ($(du -sh --apparent-size "$rootfs" | cut -f1) so far)"
}

# /proc is mounted only while apt runs: umoci's repack would walk into it
# (and block reading /proc/kmsg).
apt_in_image() {
  mount -t proc proc "$rootfs/proc"
  chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "$@" >/dev/null ||
    { umount "$rootfs/proc"; die "apt-get install $* failed inside the image"; }
  umount "$rootfs/proc"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb
}

debootstrap_bundle "$NAME"
layer "1/7 Debian minbase"

cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
chroot "$rootfs" apt-get update -qq
apt_in_image build-essential gfortran
layer "2/7 compilers"
apt_in_image python3 python3-numpy python3-scipy python3-pip
layer "3/7 Python, numpy, scipy"
apt_in_image clang-14 llvm-14-dev openjdk-17-jdk-headless
layer "4/7 LLVM and a JDK (big shared libraries)"
apt_in_image golang-1.19-go golang-1.19-src libboost1.81-dev python3-doc perl-doc locales-all
layer "5/7 Go and its sources, Boost headers, docs, locales (many small files)"

# 6: a delta that deletes (file and directory whiteouts) and modifies.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs/usr/share/doc/python3.11" "$rootfs/usr/sbin/policy-rc.d"
rm -f "$rootfs"/usr/share/perl/5.36/pod/perlfaq*.pod
: >"$rootfs/etc/resolv.conf"
echo "deepops large benchmark image" >"$rootfs/etc/motd"
layer "6/7 delta with whiteouts"

# 7: an opaque directory, which umoci's diff never writes, as a raw tar layer.
python3 - "$work/opaque.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as tar:
    def add(name, kind, data=b"", mode=0o644):
        ti = tarfile.TarInfo(name); ti.type, ti.mode, ti.mtime, ti.size = kind, mode, 1700000000, len(data)
        tar.addfile(ti, io.BytesIO(data))
    for d in ("usr", "usr/share", "usr/share/perl", "usr/share/perl/5.36", "usr/share/perl/5.36/unicore"):
        add(d, tarfile.DIRTYPE, mode=0o755)
    add("usr/share/perl/5.36/unicore/.wh..wh..opq", tarfile.REGTYPE, mode=0o600)
    add("usr/share/perl/5.36/unicore/README", tarfile.REGTYPE, b"replaced by an opaque directory\n")
PY
umoci raw add-layer --image oci:$NAME "$work/opaque.tar"
log "layer: 7/7 opaque directory"

umoci config --image oci:$NAME --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.cmd /bin/bash --config.workingdir / --config.label org.deepops.test=large
umoci tag --image oci:$NAME latest
umoci gc --layout oci

# Verify the promise: at least 2 GB uncompressed, at least 6 layers.
total=0 layers=0
while read -r digest; do
  total=$((total + $(gzip -dc "oci/blobs/sha256/${digest#sha256:}" | wc -c)))
  layers=$((layers + 1))
done < <(skopeo inspect --raw oci:oci:latest | jq -r '.layers[].digest')
((layers >= 6 && total >= MIN_BYTES)) || die "large image is $total bytes in $layers layers; want >= $MIN_BYTES in >= 6"
log "$NAME: $layers layers, $((total / 1000000)) MB uncompressed, $(du -sm oci | cut -f1) MB compressed"
rm -rf bundle debootstrap.log opaque.tar
publish "$NAME" "$KEY" "$work/oci"
