#!/usr/bin/env bash
# Creates the Secrets manifests/cairn.yaml needs (the Helm chart makes them itself), with
# fresh random keys, unless they exist. Run once, before or after `kubectl apply -f manifests/`:
#   manifests/create-secrets.sh [NAMESPACE]      (default: cairn)
set -euo pipefail
ns=${1:-cairn}
kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns"
if kubectl -n "$ns" get secret cairn-secrets >/dev/null 2>&1; then
  echo "cairn-secrets exists in $ns: keeping it (the bricks and the database use its keys)"
  exit 0
fi
rnd() { head -c 36 /dev/urandom | base64 | tr -d '/+=\n'; }
user_key=$(rnd) data_token=$(rnd)
kubectl -n "$ns" create secret generic cairn-secrets \
  --from-literal=admin.key="$(rnd)" --from-literal=user.key="$user_key" \
  --from-literal=join.key="$(rnd)" --from-literal=node.token="$(rnd)" \
  --from-literal=data.token="$data_token"
kubectl -n "$ns" create secret generic cairn-csi-provisioner \
  --from-literal=user=user --from-literal=key="$user_key" \
  --from-literal=server="http://cairn-provisioner.$ns.svc:8080"
kubectl -n "$ns" create secret generic cairn-csi-node-stage --from-literal=dataToken="$data_token"
