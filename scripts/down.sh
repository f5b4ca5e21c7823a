#!/usr/bin/env bash
# `make down`: uninstalls Zeroscale and tears down the local cluster, leaving nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
source e2e/cluster/lib.sh
# Best effort: the cluster goes anyway, and with it everything the chart created.
bash scripts/uninstall.sh || log "uninstall failed; tearing the cluster down regardless"
make -s cluster-down
