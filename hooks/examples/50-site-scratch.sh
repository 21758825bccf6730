#!/bin/sh
# Example hooks.d hook: give every container the node-local scratch folder of
# the job (or of the user, outside Slurm) at /scratch, and tell the job where.
set -eu
base=${SITE_SCRATCH_BASE:-/local/scratch}
dir=$base/${SLURM_JOB_ID:-$(id -un)}
if [ ! -d "$dir" ]; then
  # Not an error: nodes without local disks simply go without.
  exit 0
fi
echo "$dir /scratch none bind,x-create=dir" >>"$ENROOT_MOUNTS"
echo "SCRATCH=/scratch" >>"$ENROOT_ENVIRON"
