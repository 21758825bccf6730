#!/usr/bin/env bash
# Pushes the built test images into the lab's two registries, as
# deepops/<name>:latest. The TLS registry is trusted through the lab's CA
# (--dest-cert-dir), never by turning verification off. `tiny` is pushed a
# second time as deepops/tiny-docker, converted to a Docker v2 schema 2
# manifest, so that both manifest formats are served.
#
# Needs the lab environment (tests/lab/lab up writes it; `lab push` runs this).
set -euo pipefail
# shellcheck source=tests/images/common.sh
source "$(dirname "$0")/common.sh"
: "${DEEPOPS_LAB_REGISTRY:?source the lab env file first}"

"$IMAGES_SRC/build.sh"
password=$(cat "$DEEPOPS_LAB_REGISTRY_PASSWORD_FILE")
certs=$DEEPOPS_LAB_CERTS_D/$DEEPOPS_LAB_REGISTRY_TLS

copy() { # SRC_NAME DEST_NAME [skopeo options]
  local src=oci:$DEEPOPS_IMAGE_CACHE/$1:latest dest=deepops/$2:latest
  shift 2
  skopeo copy -q --all "$@" --dest-tls-verify=false "$src" "docker://$DEEPOPS_LAB_REGISTRY/$dest"
  skopeo copy -q --all "$@" --dest-cert-dir "$certs" --dest-creds "$DEEPOPS_LAB_REGISTRY_USER:$password" \
    "$src" "docker://$DEEPOPS_LAB_REGISTRY_TLS/$dest"
}

for dir in "$DEEPOPS_IMAGE_CACHE"/*/; do
  name=$(basename "$dir")
  # Built OCI layouts only: not the large image, nor apt-repo (no image).
  [[ -f $dir/.built && -f $dir/oci-layout && $name != large ]] || continue
  copy "$name" "$name" --preserve-digests
  log "pushed deepops/$name"
done
copy tiny tiny-docker --format v2s2
log "pushed deepops/tiny-docker (Docker v2 schema 2)"
