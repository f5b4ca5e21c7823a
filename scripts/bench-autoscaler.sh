#!/usr/bin/env bash
# Autoscaler benchmark section (SPEC §9 P7, P8):
#   autoscaler.tick_1000_fns_us        median time of one decision tick over 1,000 busy functions
#   sim.<policy>.cold_start_pct        cold starts, % of invocations, on azure2019-sample100
#   sim.<policy>.queued_pct            invocations that waited only behind busy pods, %
#   sim.<policy>.idle_pod_seconds      idle pod-seconds on azure2019-sample100
# for policies kpa, predictive, fixed_1m, fixed_5m, fixed_10m, fixed_20m, fixed_60m, all from one
# run of the release simulator; the P8 verdicts
#   sim.p8.predictive_dominates_fixed_10m   1 when predictive has fewer cold starts and fewer idle
#                                           pod-seconds than fixed_10m, else 0
#   sim.p8.predictive_beats_kpa             1 when predictive has fewer cold starts than kpa at no
#                                           more idle pod-seconds, else 0
# plus the plot target/bench/keepalive.svg and the full simulator report
# target/bench/sim-sample100.json.
#
# Writes target/bench/autoscaler.json as {"autoscaler": {...}, "sim": {...}} (the report's
# component → figure shape) and, when run by scripts/bench.sh, the same to $BENCH_FRAGMENT.
# Traces: $ZEROSCALE_TRACES, else ../shared/traces beside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${BENCH_OUT:-$root/target/bench}
traces=${ZEROSCALE_TRACES:-$root/../shared/traces}
mkdir -p "$out"

cargo build -q --release -p zeroscale-autoscaler --bin zeroscale-bench-tick --bin zeroscale-simulate
bin=${CARGO_TARGET_DIR:-$root/target}/release

"$bin/zeroscale-bench-tick" --functions 1000 --runs 501 --out "$out/autoscaler-tick.json"
"$bin/zeroscale-simulate" --trace "$traces/azure2019-sample100" --policy all \
  --out "$out/sim-sample100.json" --plot "$out/keepalive.svg" --bench-out "$out/autoscaler-sim.json"

python3 - "$out" "${BENCH_FRAGMENT:-}" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
fragment = {"autoscaler": {}, "sim": {}}
for name in ("autoscaler-tick.json", "autoscaler-sim.json"):
    for key, value in json.loads((out / name).read_text()).items():
        component, figure = key.split(".", 1)
        fragment.setdefault(component, {})[figure] = value
sim = fragment["sim"]
def beats(a, b, idle_strict):
    cold = sim[f"{a}.cold_start_pct"] < sim[f"{b}.cold_start_pct"]
    ia, ib = sim[f"{a}.idle_pod_seconds"], sim[f"{b}.idle_pod_seconds"]
    return int(cold and (ia < ib if idle_strict else ia <= ib))
sim["p8.predictive_dominates_fixed_10m"] = beats("predictive", "fixed_10m", True)
sim["p8.predictive_beats_kpa"] = beats("predictive", "kpa", False)
text = json.dumps(fragment, indent=2, sort_keys=True) + "\n"
(out / "autoscaler.json").write_text(text)
if sys.argv[2]:
    pathlib.Path(sys.argv[2]).write_text(text)
print(text, end="")
PY
