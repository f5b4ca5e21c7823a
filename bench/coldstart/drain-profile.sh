#!/usr/bin/env bash
# Where the node's CPU goes during a burst from zero (issue #19's P5): runs the cold-start driver's
# burst (1,000 requests at a Function at zero, after one cold start) DRAIN_RUNS times (default 3) under
# a system-wide `perf record`, and prints for each run the share of the node's CPU time each program
# took while the function woke (the burst's first request → the first pod serving) and while the
# backlog drained (the first pod serving → the last answer: `burst.max_over_ready_ms`).
# bench/coldstart/drain_profile.py reads the samples. Writes target/bench/coldstart/drain-profile.json
# (every run's windows in CPU milliseconds per program) and keeps each run's perf.data beside it.
#
# Needs the local cluster up (`make cluster-up`) and perf (Debian's linux-perf, installed here when
# missing); installs Zeroscale from the images of these sources as bench/coldstart/bench.sh does (the
# chart's JSON logs, values-bench.yaml), holding the install lock for the whole run. Not part of
# `make bench`: sampling every CPU at 2,999 Hz costs CPU itself, so the figures of a profiled burst are
# not P5's. docs/benchmarks.md ("Where a burst's drain spends the node's CPU") has the findings.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
source e2e/cluster/lib.sh
source scripts/bench-lib.sh # bench_admin_urls, bench_apt_install, bench_coldstart_driver
out=${BENCH_OUT:-$root/target/bench}/coldstart/drain-profile
runs=${DRAIN_RUNS:-3}
export KUBECONFIG=$ZS_KUBECONFIG PATH="$ZS_BIN:$PATH"

command -v perf >/dev/null || bench_apt_install linux-perf
bash e2e/cluster/status.sh --check || die "drain-profile: the local cluster is not up and healthy: make cluster-up"
driver=$(bench_coldstart_driver)
exec 8>"$ZS_STATE/.install.lock"
flock -w 900 8 || die "drain-profile: cannot take $ZS_STATE/.install.lock: another install runs"
export ZEROSCALE_INSTALL_LOCK_HELD=1
ZEROSCALE_VALUES="${ZEROSCALE_VALUES:-} bench/coldstart/values-bench.yaml" bash scripts/install.sh
# shellcheck disable=SC1091
source "$ZS_STATE/activator.env"
ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null || true

mkdir -p "$out"
for ((run = 1; run <= runs; run++)); do
  dir=$out/run-$run
  rm -rf "$dir" && mkdir -p "$dir"
  log "drain-profile: run $run of $runs"
  # Wall-clock sample times (-k CLOCK_REALTIME), comparable with the driver's figures.
  perf record -q -a -F 2999 -k CLOCK_REALTIME -o "$dir/perf.data" -- \
    "$driver" --activator "$ZEROSCALE_ACTIVATOR" --activator-admin "$(bench_admin_urls activator)" \
    --autoscaler-admin "$(bench_admin_urls autoscaler)" --operator-admin "$(bench_admin_urls operator)" \
    --cold-starts 1 --burst 1000 --out "$dir" >"$dir/driver.out" 2>"$dir/driver.log" ||
    die "drain-profile: the driver failed (see $dir/driver.log)"
  python3 "$root/bench/coldstart/drain_profile.py" "$dir/perf.data" "$dir/figures.json" "$dir/windows.json"
done
python3 - "$out" "$runs" <<'PY'
import json, sys
out, runs = sys.argv[1], int(sys.argv[2])
report = [json.load(open(f"{out}/run-{i}/windows.json")) for i in range(1, runs + 1)]
json.dump({"runs": report}, open(f"{out}.json", "w"), indent=2)
print(f"wrote {out}.json")
PY
