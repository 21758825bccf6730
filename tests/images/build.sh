#!/usr/bin/env bash
# Builds every image of the default test run into the image cache, reusing
# what is already built from the same sources, and the lab's apt repository
# (apt-repo, not an image: tests/lab/lab serves it). The large benchmark image is
# separate: tests/images/build-large.sh.
#
# Usage: tests/images/build.sh [NAME...]   (default: all)
set -euo pipefail
# shellcheck source=tests/images/common.sh
source "$(dirname "$0")/common.sh"

SYNTHETIC=(tiny layered zstd multiarch)
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=("${SYNTHETIC[@]}" debian-openmpi debian-apt apt-repo)

# In a Slurm release root (tests/matrix/enter) the cache is the host's,
# read-only, and the builders' tools are not installed: use what is there.
if [[ -n ${DEEPOPS_IMAGES_READONLY:-} ]]; then
  for name in "${names[@]}"; do
    [[ -f $DEEPOPS_IMAGE_CACHE/$name/.built ]] ||
      die "$name is not built in the read-only cache $DEEPOPS_IMAGE_CACHE: run tests/images/build.sh on the host"
  done
  exit 0
fi
mkdir -p "$DEEPOPS_IMAGE_CACHE"

for name in "${names[@]}"; do
  case $name in
    tiny | layered | zstd | multiarch)
      key=$(cache_key "$IMAGES_SRC/mkimage.py" /bin/busybox)-$name
      if is_current "$name" "$key"; then continue; fi
      work=$(mktemp -d "$DEEPOPS_IMAGE_CACHE/.$name.XXXXXX")
      python3 "$IMAGES_SRC/mkimage.py" "$work" "$name" || { rm -rf "$work"; die "mkimage.py $name failed"; }
      publish "$name" "$key" "$work"
      ;;
    debian-openmpi) "$IMAGES_SRC/build-debian-openmpi.sh" ;;
    debian-apt) "$IMAGES_SRC/build-debian-apt.sh" ;;
    apt-repo) "$IMAGES_SRC/build-apt-repo.sh" ;;
    large) "$IMAGES_SRC/build-large.sh" ;;
    *) die "unknown image '$name' (known: ${SYNTHETIC[*]} debian-openmpi debian-apt apt-repo large)" ;;
  esac
done
