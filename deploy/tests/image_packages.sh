#!/usr/bin/env bash
# Deploy.ImagePackages: every shared library the built binaries link comes from a Debian
# package the image's runtime stage installs (deploy/images/Dockerfile RUNTIME_PACKAGES),
# and every binary the chart runs is one the image copies. No Docker engine needed.
#   image_packages.sh BUILD_DIR
set -euo pipefail
DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$DEPLOY_DIR/../build}
DOCKERFILE="$DEPLOY_DIR/images/Dockerfile"
runtime=$(sed -n '/^ARG RUNTIME_PACKAGES="/,/"$/p' "$DOCKERFILE" | tr -d '\\"' | sed 's/ARG RUNTIME_PACKAGES=//' | tr -s ' \n' '\n')
bins=(storaged/storaged brickd/brickd provisioner/cairn-provisioner csi/cairn-csi fuse/cairn-mount cairnctl/cairnctl csi/cairn-csc)
fail=0
for b in "${bins[@]}"; do
  [[ -x "$BUILD/$b" ]] || { echo "SKIP: $BUILD/$b not built"; exit 77; }
  grep -q "/build/$b " <(tr '\n' ' ' <"$DOCKERFILE") || { echo "FAIL: the image does not copy $b"; fail=1; }
done
libs=$(for b in "${bins[@]}"; do ldd "$BUILD/$b" | awk '/=>/ {print $3}'; done | sort -u)
# One dpkg query for every library under each name it may be known by (usr-merge, symlinks).
cands=$(for f in $libs; do r=$(realpath "$f"); printf '%s\n' "$f" "/usr$f" "$r" "/usr$r"; done | sort -u)
owners=$(dpkg -S $cands 2>/dev/null || true)
pkgs=$(LIBS="$libs" OWNERS="$owners" python3 -c '
import os
owner = {}
for line in os.environ["OWNERS"].splitlines():
    pkg, _, path = line.partition(": ")
    owner[path] = pkg.split(":")[0]
out = set()
for f in os.environ["LIBS"].split():
    r = os.path.realpath(f)
    names = [f, "/usr" + f, r, "/usr" + r]
    out.add(next((owner[n] for n in names if n in owner), "UNKNOWN(%s)" % f))
print("\n".join(sorted(out)))
')
for p in $pkgs; do
  case "$p" in libc6|libgcc-s1|libstdc++6) continue ;; esac  # in every Debian base image
  grep -qx "$p" <<<"$runtime" || { echo "FAIL: $p (linked by the binaries) is not in RUNTIME_PACKAGES"; fail=1; }
done
# Every /usr/local/bin/X the chart runs is in the image.
for x in $(grep -rhoE '/usr/local/bin/[a-z-]+' "$DEPLOY_DIR/helm/cairn/templates" | sort -u); do
  n=$(basename "$x")
  [[ "$n" == cairn-node-config ]] && continue
  grep -q "/$n " <(tr '\n' ' ' <"$DOCKERFILE") || { echo "FAIL: the chart runs $x; the image lacks it"; fail=1; }
done
[[ $fail -eq 0 ]] && echo "ok   $(wc -w <<<"$pkgs") linked packages all in the runtime stage; the chart's binaries are all in the image"
exit $fail
