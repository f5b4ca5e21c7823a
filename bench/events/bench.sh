#!/usr/bin/env bash
# Eventing section of `make bench` (issues #7 and #15), on loopback, no cluster: the same figures for
# each event store in the same run, one activator per store (--static-config for the function,
# --static-triggers for the Trigger):
#   - memory: the default store;
#   - jetstream: a real nats-server (the binary `e2e/cluster/build.sh nats` builds from the pinned Go
#     module, built here when missing) with JetStream, file storage under target/bench/events and
#     `sync_interval: always` as the chart's development server, so a 202 waits for an fsync.
# Figures, under events.<store>:
#   - accepted_per_s: broker ingress throughput. bench/events/ingress.py POSTs binary-mode CloudEvents,
#     each with its own ce-id (a repeated source + id would be dropped as a duplicate and measure the
#     duplicate check, not the store), 64 keep-alive connections, closed loop, BENCH_DURATION per
#     round, median of BENCH_ROUNDS (3) rounds, of a type no Trigger matches: each is parsed, stored
#     and answered 202 (with JetStream also read and acknowledged by the Trigger's consumer, whose
#     filter it does not pass). Only 202 answers count (ingress_non202 counts the rest).
#   - delivery_p99_ms (and _p50_ms): time from just before an event's POST to the ingress until it
#     reaches a warm function through the Trigger and the activator's request path. Open loop at
#     BENCH_EVENTS_RATE events/s (default 200) for BENCH_EVENTS_SECONDS (default 10); the function and
#     the poster are one Python process (bench/events/delivery.py), so both ends read one clock.
#     delivery_lost: events not arrived within 10 s of the last POST.
# events.direct_p50_ms/_p99_ms: the same loop POSTing straight to the function (the harness alone).
# Writes $BENCH_FRAGMENT: {"events": {...}}.
set -euo pipefail
cd "$(dirname "$0")/../.."
source "${BENCH_LIB:-scripts/bench-lib.sh}"
out=${BENCH_OUT:-target/bench}/events
fragment=${BENCH_FRAGMENT:-$out/fragment.json}
mkdir -p "$out"
duration=${BENCH_DURATION:-5s}
seconds_per_round=${duration%s}
rounds=${BENCH_ROUNDS:-3}
rate=${BENCH_EVENTS_RATE:-200} seconds=${BENCH_EVENTS_SECONDS:-10}

# BENCH_ACTIVATOR_BIN runs another build of the activator (an A/B against an older commit).
activator_bin=$(bench_activator_bin)
bash e2e/cluster/build.sh nats > "$out/nats-build.log" 2>&1
nats_bin=$(source e2e/cluster/lib.sh && echo "$ZS_BIN/nats-server")
[[ -x $nats_bin ]] || { echo "nats-server not built at $nats_bin (see $out/nats-build.log)" >&2; exit 1; }

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# An activator for store $1 on ports $2..$2+3 delivering to a function on port $3; extra flags after.
start_activator() {
  local store=$1 base=$2 function_port=$3
  shift 3
  mkdir -p "$out/$store"
  cat > "$out/$store/functions.yaml" <<YAML
functions:
  - namespace: bench
    name: sink
    endpoints: [{address: "127.0.0.1:$function_port"}]
YAML
  cat > "$out/$store/triggers.yaml" <<YAML
apiVersion: zeroscale.dev/v1alpha1
kind: Trigger
metadata: {name: delivery, namespace: bench}
spec:
  source: {broker: {}}
  filters: [{exact: {type: bench.delivery}}]
  subscriber: {function: sink}
YAML
  RUST_LOG=warn "$activator_bin" --static-config "$out/$store/functions.yaml" \
    --static-triggers "$out/$store/triggers.yaml" --autoscaler-url "" \
    --external-addr "127.0.0.1:$base" --internal-addr "127.0.0.1:$((base + 1))" \
    --admin-addr "127.0.0.1:$((base + 2))" --broker-addr "127.0.0.1:$((base + 3))" "$@" \
    > "$out/$store/activator.log" 2>&1 &
  pids+=($!)
  bench_wait_http "http://127.0.0.1:$((base + 2))/ready"
}

# Ingress rounds, then delivery latency, for store $1 whose broker is on port $2 and function on $3.
# Delivery first: the ingress rounds leave tens of thousands of stored events that a JetStream
# consumer still reads (and acknowledges) afterwards, which would queue the delivery events behind them.
measure() {
  local store=$1 broker=$2 function_port=$3 round
  python3 bench/events/delivery.py "http://127.0.0.1:$broker/bench" "$function_port" "$rate" "$seconds" \
    > "$out/$store/delivery.json"
  echo "$store delivery: $(cat "$out/$store/delivery.json")"
  python3 bench/events/ingress.py "http://127.0.0.1:$broker/bench" 16 1 > /dev/null # warm-up
  : > "$out/$store/rounds.txt"
  for round in $(seq 1 "$rounds"); do
    python3 bench/events/ingress.py "http://127.0.0.1:$broker/bench" 64 "$seconds_per_round" |
      tee -a "$out/$store/rounds.txt"
  done
}

# --- memory ---------------------------------------------------------------------------------
start_activator memory 18290 18280
measure memory 18293 18280
# The harness alone: the same loop POSTing straight to the function.
python3 bench/events/delivery.py http://127.0.0.1:18280/direct 18280 "$rate" "$seconds" > "$out/direct.json"
echo "direct: $(cat "$out/direct.json")"

# --- jetstream ------------------------------------------------------------------------------
nats_port=18422
rm -rf "$out/jetstream/nats" && mkdir -p "$out/jetstream/nats"
cat > "$out/jetstream/nats.conf" <<CONF
listen: 127.0.0.1:$nats_port
jetstream {
  store_dir: "$out/jetstream/nats"
  sync_interval: always
}
CONF
"$nats_bin" --config "$out/jetstream/nats.conf" > "$out/jetstream/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
  sleep 0.1
done
start_activator jetstream 18390 18380 --event-store jetstream --nats-url "nats://127.0.0.1:$nats_port"
# The Trigger's durable consumer is created within a second or two; events stored before it exists
# are not kept (interest retention). Post until one is delivered.
for _ in $(seq 1 30); do
  python3 bench/events/delivery.py "http://127.0.0.1:18393/bench" 18380 20 0.5 > "$out/jetstream/probe.json" || true
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["received"] > 0 else 1)' \
    "$out/jetstream/probe.json" && break
  sleep 1
done
measure jetstream 18393 18380

python3 - "$out" "$fragment" <<'PY'
import json, statistics, sys
out, fragment = sys.argv[1], sys.argv[2]
figures = {}
for store in ("memory", "jetstream"):
    rounds = [line.split() for line in open(f"{out}/{store}/rounds.txt") if line.strip()]
    delivery = json.load(open(f"{out}/{store}/delivery.json"))
    figures[store] = {
        "accepted_per_s": round(statistics.median(float(r[0]) for r in rounds), 1),
        "accepted_per_s_rounds": [float(r[0]) for r in rounds],
        "ingress_non202": sum(int(r[1]) for r in rounds),
        "delivery_p50_ms": delivery["p50_ms"],
        "delivery_p99_ms": delivery["p99_ms"],
        "delivery_lost": delivery["sent"] - delivery["received"],
    }
direct = json.load(open(f"{out}/direct.json"))
figures["direct_p50_ms"] = direct["p50_ms"]
figures["direct_p99_ms"] = direct["p99_ms"]
json.dump({"events": figures}, open(fragment, "w"), indent=2)
print(json.dumps(figures))
PY
