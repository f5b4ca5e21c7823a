#!/usr/bin/env bash
# Removes Zeroscale from the running local cluster (the cluster itself stays up); idempotent. Leaves
# the CRDs, and so Functions and Triggers, in place (as `helm uninstall` does).
set -euo pipefail
cd "$(dirname "$0")/.."
source e2e/cluster/lib.sh
rm -f "$ZS_STATE/activator.env" "$ZS_RUN/install.stamp"
[[ -f $ZS_KUBECONFIG ]] || exit 0
export KUBECONFIG="$ZS_KUBECONFIG" PATH="$ZS_BIN:$PATH"
if [[ -d $ZS_RUN/components ]]; then
  source scripts/components.sh
  stop_components
fi
helm="$(bash e2e/cluster/helm/build.sh)"
if "$helm" status zeroscale -n zeroscale-system >/dev/null 2>&1; then
  "$helm" uninstall zeroscale -n zeroscale-system --wait --timeout 120s >/dev/null
  log "uninstalled the zeroscale release"
fi
kubectl delete namespace zeroscale-system --ignore-not-found --wait=true --timeout=120s >/dev/null
