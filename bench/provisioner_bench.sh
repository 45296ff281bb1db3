#!/usr/bin/env bash
# One command for the provisioner benchmark: builds provisioner_bench (and, unless --only gluster,
# the cairn-provisioner, storaged and brickd it starts) into $CAIRN_BUILD_DIR (default build/) with
# -j2, then runs it with the given flags.
#
#   bench/provisioner_bench.sh --quick                      # smoke run: 50 volumes, both sides
#   bench/provisioner_bench.sh --json /tmp/prov.json        # full run: 500 volumes, 50 GlusterFS
#   bench/provisioner_bench.sh --only cairn --profile cpu   # Cairn alone, perf of the creates
#
# It needs root (loop device and mount for the devices' file system, glusterd);
# provisioner_bench says so. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${CAIRN_BUILD_DIR:-build}
targets=(provisioner_bench)
only=both
prev=
for arg in "$@"; do
  case "$arg" in
    --only=*) only=${arg#--only=} ;;
  esac
  if [[ "$prev" == --only ]]; then only=$arg; fi
  prev=$arg
done
if [[ "$only" != gluster ]]; then targets+=(cairn-provisioner storaged brickd); fi
cmake -S . -B "$BUILD_DIR" -G Ninja >/dev/null
cmake --build "$BUILD_DIR" -j "${CAIRN_JOBS:-2}" --target "${targets[@]}"
exec "$BUILD_DIR/bench/provisioner_bench" "$@"
