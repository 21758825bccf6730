#!/usr/bin/env bash
# Builds the "debian-apt" test image: the Debian 12 minbase layer of
# debian-openmpi (the same blob, so no second debootstrap, and registries and
# caches hold it once) plus a layer whose only apt source is the lab's
# repository (build-apt-repo.sh, served by tests/lab/lab):
#   /etc/apt/sources.list  deb [trusted=yes] http://127.0.0.1:PORT/ ./
# with sources.list.d and the package lists empty, so that `apt-get update`
# in a container talks to the lab's server only. PORT: apt-repo.conf.
# Rebuilt when this script, apt-repo.conf or debian-openmpi's first layer
# changes. Needs root (umoci unpacks the rootfs with its owners).
set -euo pipefail
# shellcheck source=tests/images/common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=tests/images/apt-repo.conf
source "$IMAGES_SRC/apt-repo.conf"

NAME=debian-apt
BASE=debian-openmpi
"$IMAGES_SRC/build-debian-openmpi.sh"
base=$DEEPOPS_IMAGE_CACHE/$BASE
# A shared hold on the base's build lock: it is not republished while read.
exec 8>"$DEEPOPS_IMAGE_CACHE/.$BASE.lock"
flock -s 8
blob() { printf '%s/blobs/sha256/%s' "$base" "${1#sha256:}"; }
manifest=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "latest") | .digest' "$base/index.json")
[[ -n $manifest ]] || die "$BASE has no 'latest' in $base/index.json"
layer=$(jq -c '.layers[0]' "$(blob "$manifest")")
layer_digest=$(jq -r .digest <<<"$layer")
KEY=$(cache_key "$0" "$IMAGES_SRC/apt-repo.conf" <(echo "$layer_digest"))
begin_locked_build "$NAME" "$KEY"
trap 'rm -rf "$work"' EXIT
cd "$work"

# An image of the base's first layer alone: its blob, and a config and
# manifest naming only it.
mkdir -p oci/blobs/sha256
echo '{"imageLayoutVersion":"1.0.0"}' >oci/oci-layout
cp "$(blob "$layer_digest")" "oci/blobs/sha256/${layer_digest#sha256:}"
config=$(jq -c '.config.digest' "$(blob "$manifest")" | tr -d '"')
jq -c --arg name "$NAME" '
  .rootfs.diff_ids = [.rootfs.diff_ids[0]]
  | .history = [[.history[] | select(.empty_layer != true)][0]]
  | .config.Labels["org.deepops.test"] = $name' "$(blob "$config")" >config.json
put_blob() { # FILE: into the layout; prints its descriptor's digest and size
  local digest
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "oci/blobs/sha256/$digest"
  printf 'sha256:%s %s\n' "$digest" "$(stat -c %s "oci/blobs/sha256/$digest")"
}
read -r config_digest config_size < <(put_blob config.json)
jq -n -c --arg d "$config_digest" --argjson s "$config_size" --argjson layer "$layer" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $d, size: $s},
  layers: [$layer]}' >manifest.json
read -r manifest_digest manifest_size < <(put_blob manifest.json)
jq -n -c --arg d "$manifest_digest" --argjson s "$manifest_size" --arg name "$NAME" '{
  schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json",
  digest: $d, size: $s, annotations: {"org.opencontainers.image.ref.name": $name}}]}' >oci/index.json
flock -u 8

# Layer 2: the lab's repository as the only source, no package lists.
umoci unpack --image "oci:$NAME" bundle >/dev/null
rootfs=bundle/rootfs
[[ -f $rootfs/etc/debian_version ]] || die "$BASE's first layer is not a Debian root"
rm -rf "$rootfs"/etc/apt/sources.list.d/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
mkdir -p "$rootfs/var/lib/apt/lists/partial"
printf '# The DeepOps lab apt repository only (tests/images/build-debian-apt.sh).\ndeb [trusted=yes] http://127.0.0.1:%s/ ./\n' \
  "$DEEPOPS_APT_PORT" >"$rootfs/etc/apt/sources.list"
: >"$rootfs/etc/resolv.conf"
umoci repack --image "oci:$NAME" bundle

umoci config --image "oci:$NAME" --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.cmd /bin/bash --config.workingdir / --config.label org.deepops.test=$NAME
umoci tag --image "oci:$NAME" latest
umoci gc --layout oci
rm -rf bundle
publish "$NAME" "$KEY" "$work/oci"
