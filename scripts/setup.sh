#!/usr/bin/env bash
# Installs every Debian package that Cairn's build, tests and benchmarks need.
# Idempotent: packages already present are skipped; `apt-get update` runs at most once.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  nlohmann-json3-dev libcpp-httplib-dev libspdlog-dev libssl-dev libsqlite3-dev
  libfuse3-dev fuse3 libiscsi-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  attr iproute2 procps psmisc python3 curl
)
# GlusterFS is only needed for the side-by-side benchmarks: `scripts/setup.sh --bench`.
if [[ "${1:-}" == "--bench" ]]; then
  PACKAGES+=(glusterfs-server glusterfs-client)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
