#!/usr/bin/env bash
# Removes Zeroscale from the running local cluster (the cluster itself stays up); idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
source e2e/cluster/lib.sh
source scripts/components.sh
export KUBECONFIG="$ZS_KUBECONFIG" PATH="$ZS_BIN:$PATH"
stop_components
rm -f "$ZS_STATE/activator.env"
