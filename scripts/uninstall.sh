#!/usr/bin/env bash
# Removes Zeroscale from the running local cluster (the cluster itself stays up); idempotent. Leaves
# the CRDs, and so Functions and Triggers, in place (as `helm uninstall` does).
set -euo pipefail
cd "$(dirname "$0")/.."
source e2e/cluster/lib.sh
rm -f "$ZS_STATE/activator.env" "$ZS_RUN/install.stamp"
[[ -f $ZS_KUBECONFIG ]] || exit 0
export KUBECONFIG="$ZS_KUBECONFIG" PATH="$ZS_BIN:$PATH"
# One install/uninstall at a time: test binaries call install.sh concurrently, and two helm upgrades of
# one release fail ("another operation is in progress").
exec 8>"$ZS_STATE/.install.lock"
flock -w 600 8 || die "another scripts/install.sh or uninstall.sh holds $ZS_STATE/.install.lock"
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
