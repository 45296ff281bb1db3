#!/usr/bin/env bash
# Deploy.SchemaValidation: every object the chart renders (default values and each value set
# in values/) and every file in manifests/ validates against the Kubernetes 1.33 schema.
set -euo pipefail
source "$(dirname "$0")/common.sh"
SWAGGER=${CAIRN_K8S_SWAGGER:-$REPO_DIR/../shared/k8s/swagger-1.33.json.gz}
[[ -f "$SWAGGER" ]] || { echo "FAIL: no Kubernetes schema at $SWAGGER"; exit 1; }
python3 -c 'import yaml, jsonschema' || { echo "FAIL: python3-yaml and python3-jsonschema are needed (scripts/setup.sh)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
files=()
for v in default "$VALUES_DIR"/*.yaml; do
  args=(); [[ "$v" == default ]] || args=(-f "$v")
  out="$tmp/$(basename "$v" .yaml).yaml"
  render "${args[@]}" >"$out"
  files+=("$out")
done
shopt -s nullglob
python3 "$(dirname "$0")/validate_k8s.py" "$SWAGGER" "${files[@]}" "$REPO_DIR"/manifests/*.yaml
# The validator itself: three objects with one fault each must all be rejected.
neg=$(python3 "$(dirname "$0")/validate_k8s.py" "$SWAGGER" "$(dirname "$0")/negative.yaml" || true)
echo "$neg" | grep '^INVALID'
grep -q '^0 objects valid, 3 invalid' <<<"$neg" || { echo "FAIL: the validator let a broken object through"; exit 1; }
echo "ok   validator rejects an unknown field, a wrong type and a missing required field"
