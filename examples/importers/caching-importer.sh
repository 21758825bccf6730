#!/bin/bash
# A caching importer for spank_deepops.so's `importer=` (Pyxis's importer
# protocol): plugstack.conf
#   required spank_deepops.so importer=/usr/share/deepops/importers/caching-importer.sh
# (the package installs it there)
# The plugin runs it as the job's user, with the step's environment and
# PYXIS_RUNTIME_PATH, PYXIS_VERSION, SLURM_JOB_UID, SLURM_JOB_ID,
# SLURM_STEP_ID and SLURMD_NODENAME:
#   get URI   print the path of a squashfs of URI (docker://..., dockerd://,
#             podman://) as the last line of stdout; messages on stderr
#   release   the node's part of the step is done: drop what get kept for it.
#             Called once per step and node, and possibly again: idempotent.
#
# Each image is imported once into CACHE (by deepops-ctr import, one flock per
# image, so that concurrent steps on nodes sharing CACHE wait for one
# import), then shared by every later step; a step's use is a file under
# CACHE/steps, which release removes. LOG records each call, for the site
# (and the tests) to see what happened.
#   DEEPOPS_IMPORTER_CACHE  the cache (default /tmp/deepops-importer-UID)
#   DEEPOPS_IMPORTER_LOG    the log (default CACHE/importer.log)
#   DEEPOPS_CTR             the deepops-ctr to import with (default: PATH's)
set -euo pipefail

uid=${SLURM_JOB_UID:-$(id -u)}
cache=${DEEPOPS_IMPORTER_CACHE:-/tmp/deepops-importer-$uid}
log=${DEEPOPS_IMPORTER_LOG:-$cache/importer.log}
ctr=${DEEPOPS_CTR:-deepops-ctr}
step=${SLURM_JOB_ID:-0}.${SLURM_STEP_ID:-0}.${SLURMD_NODENAME:-$(hostname)}

note() { printf '%s %s\n' "$*" "$step" >>"$log"; }

get() {
  local uri=$1 key sqsh
  key=$(printf '%s' "$uri" | sha256sum | cut -c1-32)
  sqsh=$cache/$key.sqsh
  note "get $uri"
  (
    flock 9
    if [[ ! -s $sqsh ]]; then
      echo "caching-importer: importing $uri" >&2
      # deepops-ctr takes the image without Enroot's docker:// scheme.
      "$ctr" import -q -o "$cache/$key.partial.sqsh" "${uri#docker://}" >/dev/null
      mv "$cache/$key.partial.json" "$cache/$key.json" 2>/dev/null || true
      mv "$cache/$key.partial.sqsh" "$sqsh"
      note "imported $uri"
    fi
  ) 9>"$cache/$key.lock"
  : >"$cache/steps/$step"
  printf '%s\n' "$sqsh"
}

release() {
  rm -f "$cache/steps/$step"
  note "release"
}

(umask 077 && mkdir -p "$cache/steps")
case ${1:-} in
  get)
    [[ $# -eq 2 ]] || { echo "usage: $0 get URI" >&2; exit 2; }
    get "$2"
    ;;
  release) release ;;
  *)
    echo "usage: $0 get URI | release" >&2
    exit 2
    ;;
esac
