#!/usr/bin/env bash
# The packages: CPack's deb and rpm of this build pass lintian and rpmlint, the
# rpm lists what it must, and the deb, installed with apt on this machine,
# works from the installed files alone: the lab's Slurm reads the package's
# plugstack.conf.d drop-in (srun --container-image), the installed deepops-ctr
# imports and starts an image, and the installed deepops-bench finds its
# profiles in /etc. Removing the package leaves Slurm working; purging it
# leaves nothing. Root (apt); lab main.
#
# Usage: package_test.sh BUILD_DIR
#   PACKAGE_TEST_FORMATS  "DEB;RPM" (default), or "DEB" for the deb alone,
#                         without lintian (tests/matrix/, in a release root)
set -euo pipefail
FORMATS=${PACKAGE_TEST_FORMATS:-DEB;RPM}
BUILD=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
LAB=$SRC/tests/lab/lab
# shellcheck source=tests/support/package_fixture.sh
source "$SRC/tests/support/package_fixture.sh"
NAME=${DEEPOPS_TEST_LAB:-main}
work=$(mktemp -d)
chmod 755 "$work"
# shellcheck source=tests/support/checks.sh
source "$(dirname "$0")/../support/checks.sh"
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  remove_everything "$LAB" "$NAME"
  rm -rf "$work"
}
trap cleanup EXIT
as_user() { "$LAB" run --name "$NAME" -- "$@"; }

# ---- build the packages from this build
make_packages "$BUILD" "$work" "$FORMATS"
deb=$(ls "$work"/"$PKG"_*.deb)

# The deb depends on the Slurm release it was built against, the one here.
slurm_here=$(dpkg-query -W -f='${Version}' slurm-client | sed -E 's/^([0-9]+:)?([0-9]+\.[0-9]+).*/\2/')
depends=$(dpkg-deb -f "$deb" Depends)
if [[ $depends == *"slurm-client (>= $slurm_here)"* ]]; then
  pass "the deb depends on this machine's Slurm release: slurm-client (>= $slurm_here)"
else fail "the deb's Depends does not name Slurm $slurm_here: $depends"; fi

plugin_dir=$(sed -n 's/^DEEPOPS_SLURM_PLUGIN_DIR:[A-Z]*=//p' "$BUILD/CMakeCache.txt")

# lint_and_list_rpm: lintian on the deb, rpmlint on the rpm, the rpm's files.
lint_and_list_rpm() {
  local rpm lint listed config f missing=() expected=(/usr/bin/deepops-ctr /usr/bin/deepops-bench
    /usr/bin/deepops-enroot /usr/share/man/man1/deepops-enroot.1.gz
    /usr/share/deepops/importers/caching-importer.sh
    /usr/libexec/deepops/deepops-ctr-import /usr/libexec/deepops/deepops-step-state
    /usr/libexec/deepops/deepops-keeper
    "$plugin_dir/spank_deepops.so"
    /etc/slurm/plugstack.conf.d/deepops.conf /etc/deepops/deepops.conf
    /etc/deepops/bench/dgx-h100.conf /usr/lib/tmpfiles.d/deepops.conf
    /usr/share/man/man1/deepops-ctr.1.gz /usr/share/man/man1/deepops-bench.1.gz
    /usr/share/man/man8/spank_deepops.8.gz /usr/share/doc/deepops-containers/copyright)
  rpm=$(ls "$work"/"$PKG"-*.rpm)
  lint=$(lintian --pedantic "$deb" 2>&1 | grep -v '^running with root' || true)
  if [[ -z $lint ]]; then pass "lintian --pedantic: no error, no warning (the one override says why)"
  else fail "lintian: $lint"; fi
  if rpmlint -c "$SRC/packaging/rpmlint.toml" "$rpm" 2>&1 | grep -q " 0 errors, 0 warnings"; then
    pass "rpmlint: no error, no warning (each filter in packaging/rpmlint.toml says why)"
  else fail "rpmlint: $(rpmlint -c "$SRC/packaging/rpmlint.toml" "$rpm" 2>&1 | tail -15)"; fi
  listed=$(rpm -qlp "$rpm" 2>/dev/null)
  for f in "${expected[@]}"; do grep -qx "$f" <<<"$listed" || missing+=("$f"); done
  config=$(rpm -qcp "$rpm" 2>/dev/null)
  if [[ ${#missing[@]} == 0 ]] && grep -qx /etc/deepops/deepops.conf <<<"$config" &&
    ! grep -q spank_deepops.so <<<"$config"; then
    pass "rpm -qlp lists the ${#expected[@]} expected files; /etc files are config, the plugin is not"
  else fail "rpm: missing ${missing[*]:-nothing}; config files: $config"; fi
}
if [[ $FORMATS == DEB ]]; then
  echo "SKIP lintian, rpmlint and the rpm's file list (PACKAGE_TEST_FORMATS=DEB)"
else
  lint_and_list_rpm
fi

# ---- install the deb with apt
# A real Enroot here is the admin's: the alternative checks below would touch it.
real_enroot=
if [[ -e /usr/bin/enroot && ! -L /usr/bin/enroot ]]; then real_enroot=1; fi
if apt-get install -y -qq --no-install-recommends "$deb" >"$work/apt.log" 2>&1 &&
  dpkg-query -W -f='${Status}' "$PKG" | grep -q "install ok installed"; then
  pass "apt-get install ./$(basename "$deb")"
else fail "apt install: $(tail -20 "$work/apt.log")"; fi
if [[ -d /run/deepops ]] && [[ $(/usr/bin/deepops-ctr --version) == "deepops-ctr $(dpkg-query -W -f='${Version}' "$PKG" | cut -d- -f1)" ]] &&
  man -w deepops-bench >/dev/null 2>&1 && man -w 8 spank_deepops >/dev/null 2>&1; then
  pass "installed: /run/deepops made, deepops-ctr --version is the package's, man pages found by man"
else fail "installed files: $(ls -ld /run/deepops 2>&1; /usr/bin/deepops-ctr --version 2>&1)"; fi

# ---- deepops-enroot as the enroot alternative, never over a real Enroot
if [[ -n $real_enroot ]]; then
  echo "SKIP the enroot alternative: this machine has a real /usr/bin/enroot"
else
  if [[ $(readlink -f /usr/bin/enroot) == /usr/bin/deepops-enroot ]] &&
    [[ $(/usr/bin/enroot version) == 4.1.0+deepops.* ]] && man -w enroot >/dev/null 2>&1; then
    pass "installed: /usr/bin/enroot is the deepops-enroot alternative, with its man page"
  else fail "enroot alternative: $(ls -l /usr/bin/enroot 2>&1; update-alternatives --display enroot 2>&1)"; fi
  postinst=/var/lib/dpkg/info/$PKG.postinst
  update-alternatives --remove enroot /usr/bin/deepops-enroot >/dev/null 2>&1
  printf '#!/bin/sh\necho real enroot\n' >/usr/bin/enroot
  chmod 0755 /usr/bin/enroot
  out=$("$postinst" configure 2>&1)
  if [[ $(/usr/bin/enroot) == "real enroot" ]] && grep -q "is a real Enroot: left as it is" <<<"$out"; then
    pass "postinst leaves a real Enroot's /usr/bin/enroot as it is, and says so"
  else fail "postinst over a real enroot: $out; $(ls -l /usr/bin/enroot)"; fi
  rm -f /usr/bin/enroot
  "$postinst" configure >/dev/null 2>&1
fi

# ---- the lab's Slurm through the package's drop-in and /etc/deepops
"$LAB" plugin --name "$NAME" -- system >/dev/null
# shellcheck disable=SC1090
source "/var/lib/deepops-lab/$NAME/env"
IMG=$DEEPOPS_LAB_REGISTRY/deepops/tiny
# shellcheck disable=SC2016 # expanded in the container
out=$(as_user srun -N2 --container-image="$IMG" sh -c 'echo inside $(id -u)' 2>&1 || true)
if [[ $(grep -c "^inside [0-9]*$" <<<"$out") == 2 ]]; then
  pass "srun -N2 --container-image with the installed plugin (plugstack.conf.d drop-in, /etc/deepops)"
else fail "srun --container-image (installed): $out"; fi

cache=/tmp/pkgtest-cache-$$
# shellcheck disable=SC2016 # $1 is the inner shell's
out=$(as_user env DEEPOPS_ALLOW_HTTP="${DEEPOPS_LAB_REGISTRY}" DEEPOPS_CACHE_PATH=$cache \
  sh -c '/usr/bin/deepops-ctr import -q "$1" >/dev/null && /usr/bin/deepops-ctr start "$1" sh -c "echo started"' \
  _ "$IMG" 2>&1 || true)
as_user rm -rf "$cache"
if grep -q "^started$" <<<"$out"; then
  pass "installed deepops-ctr: import (through /usr/libexec/deepops/deepops-ctr-import), then start"
else fail "deepops-ctr start (installed): $out"; fi

rc=0
out=$(as_user /usr/bin/deepops-bench allreduce --backend cpu -np 2 -b 1M -e 1M --profile dgx-h100 2>&1) || rc=$?
if [[ $rc == 1 ]] && grep -q "expected (dgx-h100: 370 GB/s within a node)" <<<"$out"; then
  pass "installed deepops-bench: profile dgx-h100 read from /etc/deepops/bench (a CPU misses it: FAIL, exit 1)"
else fail "deepops-bench (installed, exit $rc): $out"; fi

# ---- remove: Slurm keeps working (the drop-in stays, as a conffile, and is optional)
apt-get remove -y -qq "$PKG" >"$work/remove.log" 2>&1 || fail "apt-get remove: $(tail "$work/remove.log")"
rc=0
out=$(as_user srun -N2 hostname 2>&1) || rc=$?
if [[ $rc == 0 ]] && [[ $(grep -cv "^srun:" <<<"$out") == 2 ]] && [[ ! -e $plugin_dir/spank_deepops.so ]] &&
  { [[ -n $real_enroot ]] || [[ ! -e /usr/bin/enroot ]]; }; then
  pass "after apt-get remove: srun -N2 hostname still works (the drop-in is optional); no enroot link left"
else fail "after remove: $out"; fi
"$LAB" plugin --name "$NAME" >/dev/null
apt-get purge -y -qq "$PKG" >/dev/null 2>&1
if [[ ! -e /etc/slurm/plugstack.conf.d/deepops.conf && ! -e /etc/deepops ]]; then
  pass "after apt-get purge: no /etc/deepops, no drop-in"
else fail "after purge: $(ls -la /etc/deepops /etc/slurm/plugstack.conf.d 2>&1)"; fi

echo "package_test: $failures failure(s)"
exit $((failures > 0))
