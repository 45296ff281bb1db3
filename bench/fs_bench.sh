#!/usr/bin/env bash
# One command for the file-system benchmark: builds fs_bench (and the brickd and cairn-mount it
# starts) into $CAIRN_BUILD_DIR (default build/) with -j2, then runs it with the given flags.
#
#   bench/fs_bench.sh --quick                 # smoke run, both sides
#   bench/fs_bench.sh --json /tmp/fs.json     # full run
#
# Setting up the mounts needs root (glusterd, FUSE allow_other, dropping the page cache); fs_bench
# says so. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${CAIRN_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja >/dev/null
cmake --build "$BUILD_DIR" -j "${CAIRN_JOBS:-2}" --target fs_bench
exec "$BUILD_DIR/bench/fs_bench" "$@"
