#!/usr/bin/env bash
# One command for the self-heal benchmark: builds heal_bench (and, unless --only gluster, the
# storaged, storagectl, brickd and cairn-mount it starts) into $CAIRN_BUILD_DIR (default build/)
# with -j2, then runs it with the given flags.
#
#   bench/heal_bench.sh --quick                 # smoke run, both sides
#   bench/heal_bench.sh --json /tmp/heal.json   # full run: 2 GiB file, 10,000 files
#   bench/heal_bench.sh --only gluster          # GlusterFS alone (Cairn targets not built)
#
# It needs root (glusterd, FUSE allow_other, killing and restarting its own daemons); heal_bench
# says so. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${CAIRN_BUILD_DIR:-build}
targets=(heal_bench)
only=both
prev=
for arg in "$@"; do
  case "$arg" in
    --only=*) only=${arg#--only=} ;;
  esac
  if [[ "$prev" == --only ]]; then only=$arg; fi
  prev=$arg
done
if [[ "$only" != gluster ]]; then targets+=(storaged storagectl brickd cairn-mount); fi
cmake -S . -B "$BUILD_DIR" -G Ninja >/dev/null
cmake --build "$BUILD_DIR" -j "${CAIRN_JOBS:-2}" --target "${targets[@]}"
exec "$BUILD_DIR/bench/heal_bench" "$@"
