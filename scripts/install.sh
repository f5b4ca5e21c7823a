#!/usr/bin/env bash
# Installs Zeroscale into the running local cluster, idempotently, and writes .zeroscale/activator.env:
#   ZEROSCALE_ACTIVATOR=http://<ip>:<port>   the activator's external data port, reachable from the host
#   ZEROSCALE_BROKER=http://<ip>:<port>      the broker ingress
# Fast when Zeroscale is already installed and healthy. Exit status 0 means ready.
set -euo pipefail
cd "$(dirname "$0")/.."
source e2e/cluster/lib.sh
source scripts/components.sh
[[ -f $ZS_KUBECONFIG ]] || die "no local cluster: run 'make cluster-up' first"
export KUBECONFIG="$ZS_KUBECONFIG" PATH="$ZS_BIN:$PATH"

if ! components_healthy; then
  start_components
fi
write_activator_env
