#!/usr/bin/env bash
# Profiles the activator's forwarding hop (issue #19) on loopback, nginx answering as the pod:
#   - instructions per proxied request under callgrind (valgrind), a count that does not move with the
#     machine's load, so two builds compare on a busy 2-core machine: `profile.sh ir BIN [BIN2 ...]`;
#   - a perf profile (self time by function) of one build under oha's throughput load (64 connections):
#     `profile.sh perf BIN`, report in $out/perf-<n>.txt;
#   - the request path first in the activator's link order: `profile.sh order [BIN]` profiles BIN (by
#     default the data-plane build of these sources, the one the image ships) as `ir` does and puts the
#     functions that ran first in images/link-order/activator.txt (scripts/link_order.py --hot;
#     scripts/link-order.sh runs it after the real node's profile).
# BIN is a release build with line tables (the workspace's release profile keeps them). The activator
# logs at `warn`, as the bench runs it; PROFILE_LOG=info profiles it at its default level, where each
# request has a log span.
# Needs valgrind and perf (Debian packages valgrind, linux-perf), nginx and oha as bench.sh does.
set -euo pipefail
cd "$(dirname "$0")/../.."
source "${BENCH_LIB:-scripts/bench-lib.sh}"
export BENCH_TOOLS=${BENCH_TOOLS:-${ZEROSCALE_CACHE:-$HOME/.cache/zeroscale}/tools}
mkdir -p "$BENCH_TOOLS"
out=$(realpath -m "${BENCH_OUT:-target/bench}/profile")
mkdir -p "$out/nginx-pod"
mode=${1:?usage: profile.sh ir|perf BIN [BIN ...] | order [BIN]}
shift
requests=${PROFILE_REQUESTS:-4000}
host=hello.bench.svc.cluster.local
oha=$(bench_oha)
nginx=$(bench_nginx)

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

cat > "$out/nginx-pod/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $out/nginx-pod/nginx.pid;
error_log $out/nginx-pod/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path $out/nginx-pod/body;
  proxy_temp_path $out/nginx-pod/proxy;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:18480; location / { return 200 "ok\n"; } }
}
NGINX
"$nginx" -p "$out/nginx-pod" -c "$out/nginx-pod/nginx.conf" &
pids+=($!)
cat > "$out/functions.yaml" <<YAML
functions:
  - namespace: bench
    name: hello
    endpoints: [{address: "127.0.0.1:18480"}]
YAML
bench_wait_http http://127.0.0.1:18480/

# Starts BIN (under `$wrap`) on the ports 1849x; sets $activator_pid.
start() {
  local bin=$1
  shift
  RUST_LOG=${PROFILE_LOG:-warn} "$@" "$bin" --worker-threads 1 --static-config "$out/functions.yaml" --autoscaler-url "" \
    --external-addr 127.0.0.1:18490 --internal-addr 127.0.0.1:18491 --admin-addr 127.0.0.1:18492 \
    --broker-addr off > "$out/activator.log" 2>&1 &
  activator_pid=$!
  pids+=("$activator_pid")
  # Under callgrind the activator starts tens of times slower than natively.
  BENCH_WAIT_SECONDS=30 bench_wait_http http://127.0.0.1:18492/ready
}

stop() {
  kill "$activator_pid" 2>/dev/null || true
  wait "$activator_pid" 2>/dev/null || true
}

if [[ $mode == order ]]; then
  (($#)) || set -- "$(bench_activator_bin)"
  (($# == 1)) || { echo "profile: order takes one build" >&2; exit 2; }
fi

n=0
for bin in "$@"; do
  n=$((n + 1))
  case $mode in
    ir | order)
      rm -f "$out/callgrind-$n".*
      # Instruction addresses too: the order needs them (and they cost the count nothing).
      start "$bin" valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$out/callgrind-$n.%p"
      # Warm the pod connections, then count only the measured requests.
      "$oha" --no-tui -n 1000 -c 8 --host "$host" http://127.0.0.1:18491/ > /dev/null
      callgrind_control -z "$activator_pid" > /dev/null
      "$oha" --no-tui -n "$requests" -c 8 --host "$host" http://127.0.0.1:18491/ > "$out/oha-$n.txt"
      callgrind_control -d "$activator_pid" > /dev/null
      # The dump is written asynchronously: wait for it (10 s at most) rather than a fixed time.
      for _ in $(seq 1 200); do
        compgen -G "$out/callgrind-$n.*.1" > /dev/null && break
        sleep 0.05
      done
      stop
      file=$(ls "$out/callgrind-$n".*.1)  # the dump after the measured requests
      ir=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
      echo "$bin: $((ir / requests)) instructions per request ($requests requests, $file)"
      if [[ $mode == order ]]; then
        python3 scripts/link_order.py --hot "$bin" images/link-order/activator.txt "$file"
      fi
      ;;
    perf)
      start "$bin"
      "$oha" --no-tui -n 2000 -c 16 --host "$host" http://127.0.0.1:18491/ > /dev/null
      "$oha" --no-tui -z 8s -c 64 --host "$host" http://127.0.0.1:18491/ > "$out/oha-$n.txt" &
      load=$!
      sleep 1
      perf record -F 2999 -g -p "$activator_pid" -o "$out/perf-$n.data" -- sleep 5 2> /dev/null
      wait "$load"
      stop
      perf report -i "$out/perf-$n.data" --no-children --stdio --sort dso,symbol -g none 2> /dev/null \
        | grep -v '^#' | grep -v '^$' > "$out/perf-$n.txt"
      echo "$bin: $(awk '/Requests\/sec/ {print $2}' "$out/oha-$n.txt") rps, load $(cut -d' ' -f1 /proc/loadavg); top of $out/perf-$n.txt:"
      head -25 "$out/perf-$n.txt" | cut -c1-160
      ;;
    *)
      echo "profile: unknown mode $mode (ir or perf)" >&2
      exit 2
      ;;
  esac
done
