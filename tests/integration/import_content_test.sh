#!/usr/bin/env bash
# Acceptance check of `deepops-ctr import`: every lab test image imports, and
# its squashfs matches a reference unpack of the same image by another tool
# (skopeo + umoci), file for file, as tests/support/treecmp.py compares them.
# Also: a second import is served from the cache, and the TLS registry works
# with the lab CA and credentials. Runs as root against lab 'main'.
#
# Usage: import_content_test.sh DEEPOPS_CTR
set -euo pipefail
CTR=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC1090,SC1091
source "/var/lib/deepops-lab/${DEEPOPS_TEST_LAB:-main}/env"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DEEPOPS_CACHE_PATH=$work/cache HOME=$work/home
mkdir -p "$HOME"
failures=0

check() { # NAME [--arch ARCH]
  local name=$1 arch=${3:-} sqsh
  local args=(-q --allow-http "$DEEPOPS_LAB_REGISTRY")
  [[ -n $arch ]] && args+=(--arch "$arch")
  sqsh=$("$CTR" import "${args[@]}" "$DEEPOPS_LAB_REGISTRY/deepops/$name")
  local tag=$name${arch//\//-}
  local ref=$work/ref-$tag cand=$work/cand-$tag
  # umoci reads no zstd: have skopeo recompress layers to gzip; the content is the same.
  local copy=(skopeo copy -q --src-tls-verify=false --dest-compress --dest-compress-format gzip)
  if [[ $arch == */*/* ]]; then
    copy+=(--override-arch "$(cut -d/ -f2 <<<"$arch")" --override-variant "${arch##*/}")
  elif [[ -n $arch ]]; then
    copy+=(--override-arch "${arch##*/}")
  fi
  "${copy[@]}" "docker://$DEEPOPS_LAB_REGISTRY/deepops/$name" "oci:$ref.oci:x"
  umoci unpack --image "$ref.oci:x" "$ref" >/dev/null
  unsquashfs -q -d "$cand" "$sqsh" >/dev/null
  if python3 "$SRC/tests/support/treecmp.py" --owners=root "$ref/rootfs" "$cand"; then
    echo "PASS $name${arch:+ ($arch)}"
  else
    echo "FAIL $name${arch:+ ($arch)}"
    failures=$((failures + 1))
  fi
  rm -rf "$ref" "$ref.oci" "$cand"
}

for image in tiny tiny-docker layered zstd debian-openmpi; do check "$image"; done
# --owners keep: the image's own owners, compared as they are.
kept=$("$CTR" import -q --owners keep --cache "$work/keep-cache" --allow-http "$DEEPOPS_LAB_REGISTRY" \
  "$DEEPOPS_LAB_REGISTRY/deepops/debian-openmpi")
skopeo copy -q --src-tls-verify=false "docker://$DEEPOPS_LAB_REGISTRY/deepops/debian-openmpi" "oci:$work/keep.oci:x"
umoci unpack --image "$work/keep.oci:x" "$work/keep-ref" >/dev/null
unsquashfs -q -d "$work/keep-cand" "$kept" >/dev/null
if python3 "$SRC/tests/support/treecmp.py" "$work/keep-ref/rootfs" "$work/keep-cand" &&
  [[ $(find "$work/keep-cand" \( ! -uid 0 -o ! -gid 0 \) | wc -l) -gt 0 ]]; then
  echo "PASS --owners keep"
else
  echo "FAIL --owners keep"
  failures=$((failures + 1))
fi
rm -rf "$work/keep.oci" "$work/keep-ref" "$work/keep-cand" "$work/keep-cache"
check multiarch --arch amd64
check multiarch --arch linux/arm64/v8

# The same image again: from the cache, same file, nothing downloaded.
first=$("$CTR" import -q --allow-http "$DEEPOPS_LAB_REGISTRY" "$DEEPOPS_LAB_REGISTRY/deepops/tiny")
again=$("$CTR" import --allow-http "$DEEPOPS_LAB_REGISTRY" "$DEEPOPS_LAB_REGISTRY/deepops/tiny" 2>"$work/err")
if [[ $first == "$again" ]] && grep -q "already in the cache" "$work/err"; then echo "PASS cached"; else
  echo "FAIL cached: $first vs $again: $(cat "$work/err")"
  failures=$((failures + 1))
fi

# TLS registry: the lab CA through --ca-file and credentials from the Enroot file.
mkdir -p "$HOME/.config/enroot"
echo "machine $DEEPOPS_LAB_REGISTRY_TLS login $DEEPOPS_LAB_REGISTRY_USER password \$(cat $DEEPOPS_LAB_REGISTRY_PASSWORD_FILE)" \
  >"$HOME/.config/enroot/.credentials"
if "$CTR" import -q --ca-file "$DEEPOPS_LAB_CA" "$DEEPOPS_LAB_REGISTRY_TLS/deepops/layered" >/dev/null; then
  echo "PASS tls+auth"
else
  echo "FAIL tls+auth"
  failures=$((failures + 1))
fi

# Mirrors: the TLS registry (same images) as a mirror of the plain one. It
# serves, and is recorded; a dead mirror is passed over with a warning; with
# fallback forbidden, the error names what was tried. Own cache for these.
mirror_ctr() { DEEPOPS_CACHE_PATH=$work/mirror-cache "$CTR" "$@"; }
served=$(mirror_ctr import -q --ca-file "$DEEPOPS_LAB_CA" --mirror "$DEEPOPS_LAB_REGISTRY=https://$DEEPOPS_LAB_REGISTRY_TLS" \
  "$DEEPOPS_LAB_REGISTRY/deepops/zstd" >/dev/null && mirror_ctr list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["served_by"])')
if [[ $served == "https://$DEEPOPS_LAB_REGISTRY_TLS" ]]; then echo "PASS mirror serves"; else
  echo "FAIL mirror serves: served_by '$served'"
  failures=$((failures + 1))
fi
rm -rf "$work/mirror-cache"
if mirror_ctr import -q --allow-http "$DEEPOPS_LAB_REGISTRY" --mirror "$DEEPOPS_LAB_REGISTRY=http://127.0.0.1:1" \
  "$DEEPOPS_LAB_REGISTRY/deepops/zstd" >/dev/null 2>"$work/err" && grep -q "warning: mirror http://127.0.0.1:1 did not serve" "$work/err"; then
  echo "PASS dead mirror, fallback"
else
  echo "FAIL dead mirror, fallback: $(cat "$work/err")"
  failures=$((failures + 1))
fi
rm -rf "$work/mirror-cache"
echo "{\"mirrors\":{\"$DEEPOPS_LAB_REGISTRY\":{\"endpoints\":[\"http://127.0.0.1:1\"],\"fallback\":false}}}" >"$work/mirrors.json"
if ! mirror_ctr import -q --mirrors-config "$work/mirrors.json" "$DEEPOPS_LAB_REGISTRY/deepops/zstd" >/dev/null 2>"$work/err" &&
  grep -q "no mirror served .* (tried http://127.0.0.1:1" "$work/err"; then
  echo "PASS mirror without fallback"
else
  echo "FAIL mirror without fallback: $(cat "$work/err")"
  failures=$((failures + 1))
fi

# Offline: an OCI layout folder gives the same image (same digest, same file)
# as the registry; a missing tag names the tags there are.
layout=${DEEPOPS_IMAGE_CACHE:-/var/cache/deepops-lab/images}/layered
from_registry=$("$CTR" import -q --allow-http "$DEEPOPS_LAB_REGISTRY" "$DEEPOPS_LAB_REGISTRY/deepops/layered")
from_layout=$("$CTR" import -q "oci:$layout:latest")
if [[ $from_registry == "$from_layout" ]]; then echo "PASS oci: layout"; else
  echo "FAIL oci: layout gave $from_layout, registry $from_registry"
  failures=$((failures + 1))
fi
# Archives: a tar of the layout gives the same image; a docker-archive (a new
# manifest, so a new digest) gives a squashfs of identical bytes.
skopeo copy -q "oci:$layout:latest" "oci-archive:$work/layered-oci.tar:v1"
skopeo copy -q "oci:$layout:latest" "docker-archive:$work/layered-docker.tar:deepops/layered:v1"
from_oci_archive=$("$CTR" import -q "oci-archive:$work/layered-oci.tar:v1")
from_docker_archive=$("$CTR" import -q "docker-archive:$work/layered-docker.tar")
if [[ $from_oci_archive == "$from_registry" ]] && cmp -s "$from_docker_archive" "$from_registry"; then
  echo "PASS oci-archive and docker-archive"
else
  echo "FAIL archives: $from_oci_archive / $from_docker_archive vs $from_registry"
  failures=$((failures + 1))
fi
if ! "$CTR" import -q "oci:$layout:nope" 2>"$work/err" && grep -q "it has: latest" "$work/err"; then
  echo "PASS oci: missing tag"
else
  echo "FAIL oci: missing tag: $(cat "$work/err")"
  failures=$((failures + 1))
fi

# Listing shows every imported image once, each with its file present: 8
# digests, since layered over TLS, from a layout or from an oci-archive is
# the same manifest as over plain HTTP (the docker-archive makes the 8th).
count=$("$CTR" list --json | python3 -c 'import json,sys,os; l=json.load(sys.stdin); print(sum(os.path.exists(i["path"]) for i in l))')
if [[ $count -eq 8 ]]; then echo "PASS list ($count images)"; else
  echo "FAIL list: $count images"
  failures=$((failures + 1))
fi

echo "import content: $failures failed"
[[ $failures -eq 0 ]]
