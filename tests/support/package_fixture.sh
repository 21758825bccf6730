#!/usr/bin/env bash
# Shared by the package tests (package_test.sh, ansible_test.sh), which
# install this build's deb on this machine for their duration.
PKG=deepops-containers

# make_packages BUILD_DIR WORK GENERATORS: CPack's packages of the build
# ("DEB" or "DEB;RPM") into WORK; on failure, CPack's output and exit 1.
make_packages() {
  (cd "$2" && cpack --config "$1/CPackConfig.cmake" -G "$3" >cpack.log 2>&1) ||
    { cat "$2/cpack.log"; exit 1; }
}

# remove_everything LAB NAME: the lab back on its own plugin settings, the
# package purged, and what the Ansible role adds beside it, so that the
# machine is as before the test.
remove_everything() {
  "$1" plugin --name "$2" >/dev/null 2>&1 || true
  rm -f /etc/deepops/conf.d/50-ansible.conf
  if dpkg-query -W "$PKG" >/dev/null 2>&1; then apt-get purge -y -qq "$PKG" >/dev/null 2>&1 || true; fi
  rmdir /etc/deepops/conf.d /etc/deepops 2>/dev/null || true
}
