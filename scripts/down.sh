#!/usr/bin/env bash
# `make down`: stops Zeroscale's components and tears down the local cluster, leaving nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
source e2e/cluster/lib.sh
source scripts/components.sh
stop_components
rm -f "$ZS_STATE/activator.env"
make -s cluster-down
