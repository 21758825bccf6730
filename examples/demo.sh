#!/usr/bin/env bash
# The demo, README.md's first command: the main job end to end on a local
# one-node Slurm and a local registry, as far as it exists today. Runs as root
# on Debian 12; installs what it needs; stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
LAB=(tests/lab/lab)
NAME=demo
PORTS=17000
IMAGE=127.0.0.1:$PORTS/deepops/tiny:latest

say() { printf '\n\033[1m### %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*" >&2; "$@"; } # the command line to stderr: stdout may be piped

[[ $(id -u) -eq 0 ]] || { echo "demo: run as root (it installs packages and starts a local Slurm)" >&2; exit 1; }

say "1. Dependencies, from Debian packages"
packaging/install-deps.sh

say "2. Build"
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j "$(nproc)" | tail -n 1

say "3. A local registry and a one-node Slurm cluster"
"${LAB[@]}" up --name "$NAME" --nodes 1 --ports "$PORTS"
trap 'say "9. Tear down"; "$REPO/${LAB[0]}" down --name "$NAME"; rm -rf "${DEEPOPS_CACHE_PATH:-}" /var/tmp/deepops-demo-user-cache' EXIT

say "4. The test image in the local registry"
show curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://127.0.0.1:$PORTS/v2/deepops/tiny/manifests/latest" | jq -c '{mediaType, layers: [.layers[] | {mediaType, size}]}'

say "5. A job on the local Slurm, as the unprivileged user ${DEEPOPS_LAB_USER:-deepops-test}"
# shellcheck disable=SC2016 # expanded inside the job
show "${LAB[@]}" run --name "$NAME" -- srun -N1 bash -c 'echo "hello from $(hostname) as $(id -un)"'

say "6. Import the image: registry -> one squashfs, verified, nothing extracted"
export DEEPOPS_CACHE_PATH=/var/tmp/deepops-demo-cache
rm -rf "$DEEPOPS_CACHE_PATH"
sqsh=$(show build/runtime/deepops-ctr import --allow-http "127.0.0.1:$PORTS" "$IMAGE")
echo "$sqsh"
show build/runtime/deepops-ctr list
show unsquashfs -lls "$sqsh" bin/busybox bin/sh etc | grep squashfs-root/
show build/runtime/deepops-ctr import --allow-http "127.0.0.1:$PORTS" "$IMAGE" >/dev/null

say "7. Run it unprivileged: deepops-ctr start, inside a Slurm job"
USER_CACHE=/var/tmp/deepops-demo-user-cache
rm -rf "$USER_CACHE" && install -d -o "${DEEPOPS_LAB_USER:-deepops-test}" "$USER_CACHE"
as_user() { "${LAB[@]}" run --name "$NAME" -- env DEEPOPS_CACHE_PATH="$USER_CACHE" "$@"; }
as_user "$REPO/build/runtime/deepops-ctr" check
as_user "$REPO/build/runtime/deepops-ctr" import -q --allow-http "127.0.0.1:$PORTS" "$IMAGE" >/dev/null
# shellcheck disable=SC2016 # expanded in the container
show as_user srun -N1 "$REPO/build/runtime/deepops-ctr" start "$IMAGE" \
  sh -c 'echo "in the container on $(hostname): $(id)"; echo "uid_map: $(cat /proc/self/uid_map)"; echo "root: $(grep " / " /proc/self/mounts | cut -d" " -f1-3)"'
echo "a start takes (ms):"
# shellcheck disable=SC2016 # expanded by the inner shell
as_user bash -c 'for i in 1 2 3 4 5; do s=$(date +%s%N); "$0" start "$1" true; echo $(( ($(date +%s%N) - s) / 1000000 )); done' \
  "$REPO/build/runtime/deepops-ctr" "$IMAGE" | tr '\n' ' '
echo

say "8. The main job: srun --container-image=$IMAGE"
echo "This is what users will type. The plugin that adds --container-image is not"
echo "built yet, so today's srun rejects the option:"
set +e
"${LAB[@]}" run --name "$NAME" -- srun --container-image="$IMAGE" cat /etc/os-release
rc=$?
set -e
echo "(srun exited $rc)"
cat <<'STATUS'

What exists today, and what does not yet:
  done     test lab: real Slurm (loopback or netns nodes), registries (HTTP; TLS + auth)
  done     test images: tiny, layered, zstd, multi-arch, Debian+OpenMPI, a 3 GB benchmark image
  done     deepops-ctr import/list/remove/gc: registry (mirrors, TLS, auth), OCI layout or
           archive, or docker-archive -> one verified squashfs in a cache; 3.2 GB in ~9 s
  done     deepops-ctr start/create/exec/export/check: unprivileged container from the
           squashfs in ~18 ms, whatever the image size; GPU/IB/PMIx/admin hooks
  not yet  spank_deepops.so: srun/sbatch --container-image         (issue 5)
  not yet  deepops-bench allreduce                                 (issue 6)
STATUS
