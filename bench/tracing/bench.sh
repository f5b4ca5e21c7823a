#!/usr/bin/env bash
# Tracing benchmark (issue #16): the activator's added latency with tracing off and on, on loopback.
#   - the upstream is nginx answering `200 ok` (one worker);
#   - two activators (--static-config) in front of it, both logging JSON at `info` as the chart runs
#     them: one with tracing off (no --otlp-endpoint), one exporting every request's spans (sampling
#     ratio 1) over OTLP/HTTP to a real OpenTelemetry Collector (otelcol-zeroscale, file exporter);
#   - added latency at 1k rps open loop (oha -q 1000 with latency correction) over direct, in rounds
#     interleaving direct, off and on so drift in machine load hits each alike; medians over rounds.
# Writes $BENCH_FRAGMENT: {"tracing": {"added_p50_us_off", "added_p50_us_on", ..., "spans_exported"}}.
set -euo pipefail
cd "$(dirname "$0")/../.."
source "${BENCH_LIB:-scripts/bench-lib.sh}"
source e2e/cluster/lib.sh
out=${BENCH_OUT:-target/bench}/tracing
fragment=${BENCH_FRAGMENT:-$out/fragment.json}
mkdir -p "$out"
rm -f "$out/spans.jsonl"
duration=${BENCH_DURATION:-5s}
host=hello.bench.svc.cluster.local

oha=$(bench_oha)
nginx=$(bench_nginx)
bash e2e/cluster/build.sh otelcol >&2
otelcol=$ZS_BIN/otelcol-zeroscale
# BENCH_ACTIVATOR_BIN runs another build of the activator (an A/B against an older commit).
activator_bin=$(bench_activator_bin)

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

mkdir -p "$out/nginx"
cat > "$out/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $out/nginx/nginx.pid;
error_log $out/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $out/nginx/body;
  proxy_temp_path $out/nginx/proxy;
  fastcgi_temp_path $out/nginx/fastcgi;
  uwsgi_temp_path $out/nginx/uwsgi;
  scgi_temp_path $out/nginx/scgi;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:18380; location / { return 200 "ok\n"; } }
}
NGINX
"$nginx" -p "$out/nginx" -c "$out/nginx/nginx.conf" &
pids+=($!)

cat > "$out/otelcol.yaml" <<YAML
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:18318
exporters:
  file:
    path: $out/spans.jsonl
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
YAML
"$otelcol" --config "$out/otelcol.yaml" > "$out/otelcol.log" 2>&1 &
pids+=($!)

cat > "$out/functions.yaml" <<YAML
functions:
  - namespace: bench
    name: hello
    endpoints: [{address: "127.0.0.1:18380"}]
YAML
# activator <name> <port base> [flags...]: data port base+1, admin base+2.
activator() {
  local name=$1 base=$2; shift 2
  RUST_LOG=info "$activator_bin" --worker-threads "${BENCH_ACTIVATOR_WORKERS:-1}" \
    --static-config "$out/functions.yaml" --autoscaler-url "" --log-format json \
    --external-addr "127.0.0.1:$base" --internal-addr "127.0.0.1:$((base + 1))" \
    --admin-addr "127.0.0.1:$((base + 2))" --broker-addr off "$@" > "$out/activator-$name.log" 2>&1 &
  pids+=($!)
}
activator off 18390
activator on 18395 --otlp-endpoint http://127.0.0.1:18318 --trace-sampling-ratio 1

bench_wait_http http://127.0.0.1:18380/
bench_wait_http http://127.0.0.1:18392/ready
bench_wait_http http://127.0.0.1:18397/ready
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/18318) 2>/dev/null && break; sleep 0.1; done

# oha prints JSON; returns "p50_us p99_us errors".
run_oha() {
  local name=$1; shift
  "$oha" --no-tui --output-format json -w --host "$host" "$@" > "$out/$name.json"
  python3 - "$out/$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r["latencyPercentiles"]
errors = sum(r.get("errorDistribution", {}).values())
non2xx = sum(v for k, v in r.get("statusCodeDistribution", {}).items() if not k.startswith("2"))
print(f'{p["p50"] * 1e6:.1f} {p["p99"] * 1e6:.1f} {errors + non2xx}')
PY
}
for port in 18380 18391 18396; do
  "$oha" --no-tui -n 2000 -c 16 --host "$host" "http://127.0.0.1:$port/" > /dev/null
done

latency() { run_oha "$1" -z "$duration" -q 1000 -c 16 --latency-correction "http://127.0.0.1:$2/"; }
rounds=${BENCH_ROUNDS:-3}
: > "$out/rounds.txt"
for round in $(seq 1 "$rounds"); do
  read -r d50 d99 _ < <(latency "direct-$round" 18380)
  read -r f50 f99 ferr < <(latency "off-$round" 18391)
  read -r n50 n99 nerr < <(latency "on-$round" 18396)
  echo "$d50 $d99 $f50 $f99 $n50 $n99 $ferr $nerr" | tee -a "$out/rounds.txt"
done
# The batch exporter sends every 5 s: wait for the last batch, then count what the collector wrote.
sleep 7

python3 - "$fragment" "$out/rounds.txt" "$out/spans.jsonl" <<'PY'
import json, statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[2]) if l.strip()]
med = lambda xs: round(statistics.median(xs), 1)
added = lambda a, d: med([r[a] - r[d] for r in rows])
spans = 0
try:
    for line in open(sys.argv[3]):
        doc = json.loads(line)
        spans += sum(len(s.get("spans", [])) for rs in doc.get("resourceSpans", []) for s in rs.get("scopeSpans", []))
except FileNotFoundError:
    pass
off50, on50 = added(2, 0), added(4, 0)
figures = {"tracing": {
    "added_p50_us_off": off50,
    "added_p50_us_on": on50,
    "added_p99_us_off": added(3, 1),
    "added_p99_us_on": added(5, 1),
    "p50_us_on_minus_off": med([r[4] - r[2] for r in rows]),
    "added_p50_ratio_on_vs_off": round(on50 / off50, 2) if off50 > 0 else None,
    "errors_off": int(sum(r[6] for r in rows)),
    "errors_on": int(sum(r[7] for r in rows)),
    "spans_exported": spans,
    "sampling_ratio": 1.0,
    "rounds": len(rows),
}}
json.dump(figures, open(sys.argv[1], "w"), indent=2)
print(json.dumps(figures, indent=2))
PY
