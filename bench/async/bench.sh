#!/usr/bin/env bash
# Async invocation section of `make bench` (issue #15), on loopback with one activator
# (--static-config for the function; no cluster) and the echo function as its one warm pod:
#   - async.accepted_per_s: `Prefer: respond-async` requests answered 202 per second with the memory
#     store (oha, 64 connections, closed loop, BENCH_DURATION each of BENCH_ROUNDS rounds, median).
#     The workers run the accepted invocations against the echo pod meanwhile, so the figure is the
#     accept path while the invocations it accepted run. Only 202 answers count; others are reported
#     as async.non202.
#   - async.jetstream.accepted_per_s: the same with --event-store jetstream against a local
#     nats-server (`sync_interval: always`), when the binary is there ($NATS_SERVER, or
#     e2e/cluster/build.sh nats); 202 only once JetStream acknowledged each one.
# Writes $BENCH_FRAGMENT: {"async": {...}}.
set -euo pipefail
cd "$(dirname "$0")/../.."
source "${BENCH_LIB:-scripts/bench-lib.sh}"
out=${BENCH_OUT:-target/bench}/async
fragment=${BENCH_FRAGMENT:-$out/fragment.json}
mkdir -p "$out"
duration=${BENCH_DURATION:-5s}
rounds=${BENCH_ROUNDS:-3}

oha=$(bench_oha)
cargo build -q --release -p zeroscale-echo
activator_bin=$(bench_activator_bin)

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap cleanup EXIT

cat > "$out/functions.yaml" <<YAML
functions:
  - namespace: bench
    name: work
    endpoints: [{address: "127.0.0.1:18480"}]
YAML

# A Trigger no event matches: eventing from static files, so no cluster is needed.
cat > "$out/triggers.yaml" <<YAML
apiVersion: zeroscale.dev/v1alpha1
kind: Trigger
metadata: {name: none, namespace: bench}
spec:
  source: {broker: {}}
  filters: [{exact: {type: bench.none}}]
  subscriber: {function: work}
YAML

# start_activator <log> <extra flags...>
start_activator() {
  local log=$1
  shift
  RUST_LOG=warn "$activator_bin" --static-config "$out/functions.yaml" --static-triggers "$out/triggers.yaml" \
    --autoscaler-url "" \
    --external-addr 127.0.0.1:18490 --internal-addr 127.0.0.1:18491 --admin-addr 127.0.0.1:18492 \
    --broker-addr 127.0.0.1:18493 "$@" > "$out/$log" 2>&1 &
  pids+=($!)
  bench_wait_http http://127.0.0.1:18492/ready
}

# accept <name>: one oha round; prints "<202 per second> <other answers>".
accept() {
  "$oha" --no-tui --output-format json -z "$duration" -c 64 -m POST \
    -H 'Host: work.bench.svc.cluster.local' -H 'Prefer: respond-async' \
    -T application/json -d '{"n":1}' http://127.0.0.1:18490/ > "$out/$1.json"
  python3 - "$out/$1.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
codes = r.get("statusCodeDistribution", {})
errors = {k: v for k, v in r.get("errorDistribution", {}).items() if "deadline" not in k}
total = sum(codes.values()) + sum(errors.values())
accepted = codes.get("202", 0)
print(f'{accepted / r["summary"]["total"]:.1f} {total - accepted}')
PY
}

# measure <store>: warm-up, then the rounds into $out/<store>-rounds.txt.
measure() {
  "$oha" --no-tui -n 2000 -c 16 -m POST -H 'Host: work.bench.svc.cluster.local' \
    -H 'Prefer: respond-async' http://127.0.0.1:18490/ > /dev/null
  : > "$out/$1-rounds.txt"
  for round in $(seq 1 "$rounds"); do
    accept "$1-$round" | tee -a "$out/$1-rounds.txt"
  done
}

PORT=18480 "${CARGO_TARGET_DIR:-target}"/release/zeroscale-echo > "$out/echo.log" 2>&1 &
pids+=($!)
bench_wait_http http://127.0.0.1:18480/

start_activator activator-memory.log
measure memory
kill "${pids[-1]}" && wait "${pids[-1]}" 2>/dev/null || true
unset 'pids[-1]'

nats=${NATS_SERVER:-}
if [[ -z $nats ]]; then
  version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' e2e/cluster/k8s/go.mod)
  nats=${ZEROSCALE_CACHE:-$HOME/.cache/zeroscale}/k8s-$version/bin/nats-server
fi
if [[ -x $nats ]]; then
  store=$(mktemp -d)
  printf 'listen: 127.0.0.1:18494\njetstream {\n  store_dir: "%s"\n  sync_interval: always\n}\n' "$store" > "$out/nats.conf"
  "$nats" --config "$out/nats.conf" > "$out/nats.log" 2>&1 &
  pids+=($!)
  sleep 1
  start_activator activator-jetstream.log --event-store jetstream --nats-url nats://127.0.0.1:18494
  measure jetstream
  cleanup
  rm -rf "$store"
else
  echo "bench async: no nats-server at $nats; async.jetstream.accepted_per_s not measured" >&2
  : > "$out/jetstream-rounds.txt"
fi

python3 - "$out/memory-rounds.txt" "$out/jetstream-rounds.txt" "$fragment" <<'PY'
import json, statistics, sys
def rounds(path):
    return [line.split() for line in open(path) if line.strip()]
memory, jetstream = rounds(sys.argv[1]), rounds(sys.argv[2])
figures = {
    "accepted_per_s": round(statistics.median(float(r[0]) for r in memory), 1),
    "non202": sum(int(r[1]) for r in memory),
}
if jetstream:
    figures["jetstream"] = {
        "accepted_per_s": round(statistics.median(float(r[0]) for r in jetstream), 1),
        "non202": sum(int(r[1]) for r in jetstream),
    }
json.dump({"async": figures}, open(sys.argv[3], "w"), indent=2)
print(json.dumps(figures))
PY
