#!/usr/bin/env bash
# Eventing section of `make bench` (issue #7), on loopback with one activator (--static-config for
# the function, --static-triggers for the Trigger; no cluster):
#   - events.accepted_per_s: broker ingress throughput. oha POSTs binary-mode CloudEvents (64
#     connections, closed loop) of a type no Trigger matches, so each is parsed, accepted (202) and
#     discarded: the figure is the ingress alone. Only 202 answers count.
#   - events.delivery_p99_ms (and _p50_ms): time from just before an event's POST to the ingress until
#     it reaches a warm function through the Trigger and the activator's request path (the broker
#     sends it to the activator's own data port, which proxies to the function). Open loop at
#     BENCH_EVENTS_RATE events/s (default 200) for BENCH_EVENTS_SECONDS (default 10); the function and
#     the poster are one Python process (bench/events/delivery.py), so both ends read one clock.
#     events.direct_p50_ms/_p99_ms: the same loop POSTing straight to the function (the harness alone).
# Writes $BENCH_FRAGMENT: {"events": {...}}.
set -euo pipefail
cd "$(dirname "$0")/../.."
source "${BENCH_LIB:-scripts/bench-lib.sh}"
out=${BENCH_OUT:-target/bench}/events
fragment=${BENCH_FRAGMENT:-$out/fragment.json}
mkdir -p "$out"
duration=${BENCH_DURATION:-5s}

oha=$(bench_oha)
cargo build -q --release -p zeroscale-activator
activator_bin=target/release/zeroscale-activator

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

cat > "$out/functions.yaml" <<YAML
functions:
  - namespace: bench
    name: sink
    endpoints: [{address: "127.0.0.1:18280"}]
YAML
cat > "$out/triggers.yaml" <<YAML
apiVersion: zeroscale.dev/v1alpha1
kind: Trigger
metadata: {name: delivery, namespace: bench}
spec:
  source: {broker: {}}
  filters: [{exact: {type: bench.delivery}}]
  subscriber: {function: sink}
YAML
RUST_LOG=warn "$activator_bin" --static-config "$out/functions.yaml" --static-triggers "$out/triggers.yaml" \
  --autoscaler-url "" --external-addr 127.0.0.1:18290 --internal-addr 127.0.0.1:18291 \
  --admin-addr 127.0.0.1:18292 --broker-addr 127.0.0.1:18293 > "$out/activator.log" 2>&1 &
pids+=($!)
bench_wait_http http://127.0.0.1:18292/ready

# --- ingress throughput ---------------------------------------------------------------------
ingress() {
  "$oha" --no-tui --output-format json -z "$duration" -c 64 -m POST \
    -H 'ce-specversion: 1.0' -H 'ce-id: bench-ingress' -H 'ce-source: /bench' -H 'ce-type: bench.ingress' \
    -T application/json -d '{"n":1}' http://127.0.0.1:18293/bench > "$out/$1.json"
  python3 - "$out/$1.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
codes = r.get("statusCodeDistribution", {})
# Requests still open when the duration ends are "aborted due to deadline": not failures.
errors = {k: v for k, v in r.get("errorDistribution", {}).items() if "deadline" not in k}
total = sum(codes.values()) + sum(errors.values())
accepted = codes.get("202", 0)
secs = r["summary"]["total"]
print(f'{accepted / secs:.1f} {total - accepted}')
PY
}
"$oha" --no-tui -n 2000 -c 16 -m POST -H 'ce-specversion: 1.0' -H 'ce-id: w' -H 'ce-source: /w' \
  -H 'ce-type: bench.ingress' http://127.0.0.1:18293/bench > /dev/null
rounds=${BENCH_ROUNDS:-3}
: > "$out/rounds.txt"
for round in $(seq 1 "$rounds"); do
  ingress "ingress-$round" | tee -a "$out/rounds.txt"
done

# --- delivery latency to a warm function -----------------------------------------------------
rate=${BENCH_EVENTS_RATE:-200} seconds=${BENCH_EVENTS_SECONDS:-10}
python3 bench/events/delivery.py http://127.0.0.1:18293/bench 18280 "$rate" "$seconds" > "$out/delivery.json"
# The harness alone: the same loop POSTing straight to the function.
python3 bench/events/delivery.py http://127.0.0.1:18280/direct 18280 "$rate" "$seconds" > "$out/direct.json"
cat "$out/delivery.json" "$out/direct.json"

python3 - "$out/rounds.txt" "$out/delivery.json" "$out/direct.json" "$fragment" <<'PY'
import json, statistics, sys
rounds = [line.split() for line in open(sys.argv[1]) if line.strip()]
delivery = json.load(open(sys.argv[2]))
direct = json.load(open(sys.argv[3]))
figures = {
    "accepted_per_s": round(statistics.median(float(r[0]) for r in rounds), 1),
    "ingress_non202": sum(int(r[1]) for r in rounds),
    "delivery_p50_ms": delivery["p50_ms"],
    "delivery_p99_ms": delivery["p99_ms"],
    "delivery_lost": delivery["sent"] - delivery["received"],
    "direct_p50_ms": direct["p50_ms"],
    "direct_p99_ms": direct["p99_ms"],
}
json.dump({"events": figures}, open(sys.argv[4], "w"), indent=2)
print(json.dumps(figures))
PY
