#!/usr/bin/env bash
# deepops-ctr starts every container: it leaves the importer's libraries
# (libcurl, libarchive and the dozens they pull in, ~7 ms of dynamic linking
# per start) to deepops-ctr-import. A lookup that drags an import source file
# into the lean build brings them back; this says which.
# Usage: lean_linkage_test.sh DEEPOPS_CTR
set -euo pipefail
needed=$(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
heavy=$(grep -E '^(libcurl|libarchive)' <<<"$needed" || true)
if [[ -z $heavy ]]; then
  echo "PASS deepops-ctr needs neither libcurl nor libarchive"
else
  echo "FAIL deepops-ctr needs $(tr '\n' ' ' <<<"$heavy"): an import source file is linked into the lean build (link with -Wl,-Map to see which)"
  exit 1
fi
