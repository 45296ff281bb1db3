#!/usr/bin/env bash
# The whole test suite on a fresh machine: install packages, build, run ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh "$@"
BUILD_DIR=${CAIRN_BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure -j "${CAIRN_TEST_JOBS:-2}" --timeout 600
