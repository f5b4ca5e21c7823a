#!/usr/bin/env bash
# Autoscaler section of `make bench`: see scripts/bench-autoscaler.sh.
set -euo pipefail
exec bash "$(dirname "$0")/../../scripts/bench-autoscaler.sh"
