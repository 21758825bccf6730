#!/usr/bin/env bash
# The demo, README.md's first command: the main job end to end on a local
# one-node Slurm and a local registry: srun --container-image. Runs as root
# on Debian 12; installs what it needs; stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
LAB=(tests/lab/lab)
NAME=demo
PORTS=17000
IMAGE=127.0.0.1:$PORTS/deepops/tiny:latest

# Each stage's time, printed as the next one starts and summed up at the end.
STAGES=() STAGE_START=$SECONDS STAGE_NAME=
end_stage() {
  [[ -n $STAGE_NAME ]] || return 0
  local took=$((SECONDS - STAGE_START))
  STAGES+=("$(printf '%4d s  %s' "$took" "$STAGE_NAME")")
  STAGE_NAME=
  printf '(%d s)\n' "$took"
}
say() {
  end_stage
  STAGE_NAME=$* STAGE_START=$SECONDS
  printf '\n\033[1m### %s\033[0m\n' "$*"
}
# The command line as it can be pasted (words quoted where the shell needs
# it), to stderr: stdout may be piped. Then run it.
quoted() {
  local word out=()
  for word in "$@"; do
    if [[ $word =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then out+=("$word"); else out+=("${word@Q}"); fi
  done
  printf '%s' "${out[*]}"
}
show() { printf '$ %s\n' "$(quoted "$@")" >&2; "$@"; }

[[ $(id -u) -eq 0 ]] || { echo "demo: run as root (it installs packages and starts a local Slurm)" >&2; exit 1; }

say "1. Dependencies, from Debian packages"
packaging/install-deps.sh

say "2. Build what the demo runs (the plugin and its helpers, deepops-ctr, deepops-bench)"
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j "$(nproc)" --target spank_deepops deepops-keeper deepops-step-state \
  deepops-ctr deepops-ctr-import deepops-bench | tail -n 1

say "3. A local registry and a one-node Slurm cluster"
"${LAB[@]}" up --name "$NAME" --nodes 1 --ports "$PORTS" --no-apt
trap 'say "Tear down"; "$REPO/${LAB[0]}" down --name "$NAME"; rm -rf /var/tmp/deepops-demo-cache' EXIT

say "4. The test image in the local registry"
show curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://127.0.0.1:$PORTS/v2/deepops/tiny/manifests/latest" | jq -c '{mediaType, layers: [.layers[] | {mediaType, size}]}'

say "5. A job on the local Slurm, as the unprivileged user ${DEEPOPS_LAB_USER:-deepops-test}"
# shellcheck disable=SC2016 # expanded inside the job
show "${LAB[@]}" run --name "$NAME" -- srun -N1 bash -c 'echo "hello from $(hostname) as $(id -un)"'

say "6. Install the plugin: spank_deepops.so in plugstack.conf (by rename), as an admin would"
"${LAB[@]}" plugin --name "$NAME" -- build/spank/spank_deepops.so
DEMO_CACHE=/var/tmp/deepops-demo-cache
rm -rf "$DEMO_CACHE" && install -d -m 1777 "$DEMO_CACHE"
echo "CACHE_PATH $DEMO_CACHE/\${USER}" >"/var/lib/deepops-lab/$NAME/deepops/etc/conf.d/demo.conf"
show cat "/var/lib/deepops-lab/$NAME/slurm/plugstack.conf"

as_user() { "${LAB[@]}" run --name "$NAME" -- "$@"; }
# A command of the lab user, shown as it can be pasted while the lab runs.
show_user() { show "${LAB[@]}" run --name "$NAME" -- "$@"; }
IMAGE=127.0.0.1:$PORTS/deepops/debian-openmpi:latest

say "7. The main job, as the unprivileged user: srun --container-image=$IMAGE"
echo "First run: the image is imported into the user's cache (one squashfs, nothing extracted):"
show_user srun --container-image="$IMAGE" cat /etc/os-release
echo
echo "Again: the image is cached, the step starts at once:"
# shellcheck disable=SC2016 # expanded by the inner shell
as_user bash -c 's=$(date +%s%N); srun -Q --container-image="$0" true; echo "  srun --container-image=... true: $(( ($(date +%s%N) - s) / 1000000 )) ms";
  s=$(date +%s%N); srun -Q true; echo "  srun true (no container):        $(( ($(date +%s%N) - s) / 1000000 )) ms"' "$IMAGE"

say "8. A multi-task step: the tasks of a node share one container"
# shellcheck disable=SC2016 # expanded in the container
show_user srun -n2 --container-image="$IMAGE" \
  sh -c 'echo "task $SLURM_PROCID: $(. /etc/os-release; echo $PRETTY_NAME), uid $(id -u), mount ns $(readlink /proc/self/ns/mnt)"'

say "9. A mistake, explained: an image that does not exist"
set +e
show_user srun --container-image="127.0.0.1:$PORTS/deepops/no-such-image" true
rc=$?
set -e
echo "(srun exited $rc)"

say "10. The validator: deepops-bench allreduce over 2 ranks of a step (the TCP ring: no GPU here)"
show_user srun -N1 -n2 "$REPO/build/bench/deepops-bench" allreduce --backend cpu \
  -b 1M -e 64M -f 4
end_stage

cat <<STATUS

What happened:
  - a local Slurm (slurmctld, slurmd, munge) and an OCI registry started on this machine;
  - spank_deepops.so was added to plugstack.conf: srun gained --container-image;
  - the first step imported $IMAGE into one squashfs in the user's
    cache ($(du -sh "$DEMO_CACHE" | cut -f1) now); later steps start from it without a download;
  - each step ran in an unprivileged container (user + mount namespaces, squashfuse,
    overlay), the tasks of a node in one container; no setuid, no root;
  - a bad image name failed the step with the registry's answer, not a timeout;
  - deepops-bench checked every element of an all-reduce between the step's two ranks.

How long each stage took:
STATUS
printf '  %s\n' "${STAGES[@]}"
cat <<'STATUS'

Next: the test suite (README.md's second command); deb and rpm packages
(cpack, packaging/README.md); man deepops-ctr, man deepops-enroot, man
deepops-bench, man 8 spank_deepops; deepops-bench validate over a whole
allocation (salloc -N4 deepops-bench validate --backend cpu); Enroot's
commands (deepops-enroot import docker://..., create, start, list -f).
Pyxis's importer= (examples/importers/caching-importer.sh).
Not provided: enroot bundle.
STATUS
