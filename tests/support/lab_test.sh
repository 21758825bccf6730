# Shared by the integration scripts that drive a lab's Slurm as its
# unprivileged user: the lab's environment, a work folder in the lab's shared
# folder, and the clean-up at exit. Source it from the script's folder after
# `set -euo pipefail`.
# shellcheck shell=bash
# The variables it sets are the sourcing script's:
# shellcheck disable=SC2034

# lab_test_init PREFIX: sets LAB, LAB_NAME (DEEPOPS_TEST_LAB, default main),
# the lab's variables (its env file), USER_NAME, ETC (the plugin's settings
# folder) and work (a fresh 0755 folder). At exit the plugin is taken out of
# the lab, the files listed in lab_test_files are removed, the script's own
# on_cleanup runs if it has one, and work is removed (kept with KEEP_WORK=1,
# to look at after a failure).
lab_test_files=()
lab_test_init() {
  LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")/../lab" && pwd)/lab
  LAB_NAME=${DEEPOPS_TEST_LAB:-main}
  # shellcheck disable=SC1090,SC1091
  source "/var/lib/deepops-lab/$LAB_NAME/env"
  USER_NAME=$DEEPOPS_LAB_USER
  ETC=$DEEPOPS_LAB/deepops/etc
  work=$(mktemp -d "$DEEPOPS_LAB_SHARED/$1.XXXXXX")
  chmod 0755 "$work"
  trap lab_test_cleanup EXIT
}

# shellcheck disable=SC2317 # called by the trap
lab_test_cleanup() {
  "$LAB" plugin --name "$LAB_NAME" >/dev/null 2>&1 || true
  rm -f "${lab_test_files[@]}"
  if declare -F on_cleanup >/dev/null; then on_cleanup; fi
  [[ -n ${KEEP_WORK:-} ]] || rm -rf "$work"
}

# as_user COMMAND...: in the lab's environment, as the test user, from $work.
# shellcheck disable=SC2016 # $0 and $@ are the inner bash's
as_user() { "$LAB" run --name "$LAB_NAME" -- bash -c 'cd "$0" && exec "$@"' "$work" "$@"; }
