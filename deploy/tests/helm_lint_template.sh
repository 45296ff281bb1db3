#!/usr/bin/env bash
# Deploy.HelmLintTemplate: `helm lint --strict` and `helm template` with the default values
# and every value set in values/, and each values/broken/ set is rejected by values.schema.json.
set -euo pipefail
source "$(dirname "$0")/common.sh"
"$HELM" version --short
fail=0
for v in default "$VALUES_DIR"/*.yaml; do
  args=(); [[ "$v" == default ]] || args=(-f "$v")
  name=$(basename "$v")
  if ! "$HELM" lint --strict "$CHART" --namespace cairn "${args[@]}" >/tmp/lint.$$ 2>&1; then
    cat /tmp/lint.$$; echo "FAIL lint $name"; fail=1
  elif ! out=$(render "${args[@]}" 2>&1); then
    echo "$out"; echo "FAIL template $name"; fail=1
  else
    echo "ok   lint+template $name: $(grep -c '^kind: ' <<<"$out") objects"
  fi
done
rm -f /tmp/lint.$$
for v in "$VALUES_DIR"/broken/*.yaml; do
  if out=$(render -f "$v" 2>&1); then
    echo "FAIL broken value set accepted: $(basename "$v")"; fail=1
  else
    echo "ok   rejected $(basename "$v"): $(grep -m1 -E '^- ' <<<"$out" || tail -1 <<<"$out")"
  fi
done
exit $fail
