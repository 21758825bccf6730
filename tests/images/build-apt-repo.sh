#!/usr/bin/env bash
# Builds "apt-repo": a small flat Debian package repository, for the tests
# that run apt-get inside a container without the internet. tests/lab/lab
# serves it on 127.0.0.1:$DEEPOPS_APT_PORT (apt-repo.conf), and the
# debian-apt image's only apt source is that server:
#   deb [trusted=yes] http://127.0.0.1:PORT/ ./
# Unsigned (hence trusted=yes). Its packages, both Architecture: all:
#   deepops-hello       /usr/bin/deepops-hello, which prints the line in
#                       GREETING below; Depends: deepops-hello-data; its
#                       postinst chowns a file to root:root and a folder to
#                       daemon:daemon (uid 1: unmapped in a container with
#                       only root mapped), as many packages' scripts do
#   deepops-hello-data  /usr/share/deepops-hello/greeting, that line
# Not an OCI image: push.sh skips it. Cached like the images; no root needed.
set -euo pipefail
# shellcheck source=tests/images/common.sh
source "$(dirname "$0")/common.sh"

NAME=apt-repo
VERSION=1.0
GREETING='deepops-hello: hello from the lab apt repository'
KEY=$(cache_key "$0")
if is_current "$NAME" "$KEY"; then exit 0; fi
mkdir -p "$DEEPOPS_IMAGE_CACHE"
exec 9>"$DEEPOPS_IMAGE_CACHE/.$NAME.lock"
flock 9
if is_current "$NAME" "$KEY"; then exit 0; fi
work=$(mktemp -d "$DEEPOPS_IMAGE_CACHE/.$NAME.XXXXXX")
trap 'rm -rf "$work"' EXIT
pkgs=$work/src
repo=$work/repo
mkdir -p "$repo"

# control PKG DESCRIPTION [FIELD...]: the DEBIAN/control of PKG.
control() {
  local pkg=$1 desc=$2
  shift 2
  mkdir -p "$pkgs/$pkg/DEBIAN"
  {
    printf 'Package: %s\nVersion: %s\nArchitecture: all\nSection: misc\nPriority: optional\n' "$pkg" "$VERSION"
    printf 'Maintainer: DeepOps test lab <deepops-lab@localhost>\n'
    [[ $# -eq 0 ]] || printf '%s\n' "$@"
    printf 'Description: %s\n test package of the DeepOps lab (tests/images/build-apt-repo.sh)\n' "$desc"
  } >"$pkgs/$pkg/DEBIAN/control"
}

control deepops-hello-data "data of deepops-hello"
install -d "$pkgs/deepops-hello-data/usr/share/deepops-hello"
printf '%s\n' "$GREETING" >"$pkgs/deepops-hello-data/usr/share/deepops-hello/greeting"

control deepops-hello "prints a fixed line" "Depends: deepops-hello-data (= $VERSION)"
install -d "$pkgs/deepops-hello/usr/bin" "$pkgs/deepops-hello/var/lib/deepops-hello"
printf '#!/bin/sh\nexec cat /usr/share/deepops-hello/greeting\n' >"$pkgs/deepops-hello/usr/bin/deepops-hello"
chmod 0755 "$pkgs/deepops-hello/usr/bin/deepops-hello"
cat >"$pkgs/deepops-hello/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  chown root:root /usr/bin/deepops-hello
  chown daemon:daemon /var/lib/deepops-hello
fi
POSTINST
chmod 0755 "$pkgs/deepops-hello/DEBIAN/postinst"

# Reproducible: fixed file times, root-owned entries.
export SOURCE_DATE_EPOCH=1700000000
find "$pkgs" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
for pkg in deepops-hello-data deepops-hello; do
  dpkg-deb --root-owner-group -Zgzip --build "$pkgs/$pkg" "$repo/${pkg}_${VERSION}_all.deb" >/dev/null
done
(
  cd "$repo"
  apt-ftparchive packages . >Packages
  gzip -9n <Packages >Packages.gz
  apt-ftparchive -o APT::FTPArchive::Release::Origin=deepops-lab \
    -o APT::FTPArchive::Release::Label=deepops-lab release . >"$work/Release" # outside: it must not list itself
  mv "$work/Release" Release
)
chmod -R a+rX "$repo"
publish "$NAME" "$KEY" "$repo"
