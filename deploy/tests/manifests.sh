#!/usr/bin/env bash
# Deploy.ManifestsMatchChart: manifests/cairn.yaml is the chart rendered with the default
# values (release cairn, namespace cairn) less its Secrets, whose keys are random per render
# (manifests/create-secrets.sh makes them). `manifests.sh --write` regenerates the file.
set -euo pipefail
source "$(dirname "$0")/common.sh"
want=$(mktemp); trap 'rm -f "$want"' EXIT
{
  echo "# Cairn rendered from deploy/helm/cairn with its default values (release cairn, namespace"
  echo "# cairn) by deploy/tests/manifests.sh --write; do not edit: change the chart."
  echo "# Secrets are not here: run manifests/create-secrets.sh first (see manifests/README.md)."
  echo "---"
  echo "apiVersion: v1"
  echo "kind: Namespace"
  echo "metadata:"
  echo "  name: cairn"
  render | python3 -c '
import sys, yaml
docs = sys.stdin.read().split("\n---\n")
for d in docs:
    obj = yaml.safe_load(d)
    if not obj or obj.get("kind") == "Secret":
        continue
    sys.stdout.write("---\n" + d.lstrip("-\n").rstrip("\n") + "\n")
'
} >"$want"
target="$REPO_DIR/manifests/cairn.yaml"
if [[ "${1:-}" == "--write" ]]; then
  cp "$want" "$target"; echo "wrote $target ($(grep -c '^kind: ' "$target") objects)"; exit 0
fi
if ! diff -u "$target" "$want"; then
  echo "FAIL: manifests/cairn.yaml differs from the chart's render: run deploy/tests/manifests.sh --write"
  exit 1
fi
echo "ok   manifests/cairn.yaml equals the chart's default render ($(grep -c '^kind: ' "$target") objects)"
