#!/usr/bin/env bash
# `make down`: stops Zeroscale's components and tears down the local cluster, leaving nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
source e2e/cluster/lib.sh
bash scripts/uninstall.sh
make -s cluster-down
