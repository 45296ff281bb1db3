#!/usr/bin/env bash
# Configures and builds Cairn into build/ (or $CAIRN_BUILD_DIR) with -j2.
# Extra arguments go to cmake's configure step, e.g. -DCAIRN_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${CAIRN_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "${CAIRN_JOBS:-2}"
