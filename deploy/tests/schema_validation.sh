#!/usr/bin/env bash
# Deploy.SchemaValidation: every object the chart renders (default values and each value set
# in values/) and every file in manifests/ validates against the Kubernetes 1.33 schema.
set -euo pipefail
source "$(dirname "$0")/common.sh"
# The schema lives beside the repository (../shared/k8s); a clone elsewhere finds it through
# CAIRN_K8S_SWAGGER or /work/shared. Without it there is nothing to validate against: skip (77).
SWAGGER=${CAIRN_K8S_SWAGGER:-}
if [[ -z "$SWAGGER" ]]; then
  for c in "$REPO_DIR/../shared/k8s/swagger-1.33.json.gz" /work/shared/k8s/swagger-1.33.json.gz; do
    if [[ -f "$c" ]]; then SWAGGER=$c; break; fi
  done
fi
if [[ -z "$SWAGGER" || ! -f "$SWAGGER" ]]; then
  echo "SKIP: no Kubernetes 1.33 schema (../shared/k8s/swagger-1.33.json.gz; set CAIRN_K8S_SWAGGER)"
  exit 77
fi
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
