#!/usr/bin/env bash
# Profiles the activator's forwarding hop (issue #19) on loopback, nginx answering as the pod:
#   - instructions per proxied request under callgrind (valgrind), a count that does not move with the
#     machine's load, so two builds compare on a busy 2-core machine: `profile.sh ir BIN [BIN2 ...]`;
#     `profile.sh ir-peer BIN ...` counts the same on the replica that forwards a request to the one
#     owning its function, `ir-owner` on that owner (two peered replicas, `--static-peers`, as the
#     chart runs two);
#   - a perf profile (self time by function) of one build under oha's throughput load (64 connections):
#     `profile.sh perf BIN`, report in $out/perf-<n>.txt;
#   - the request path first in the activator's link order: `profile.sh order [BIN]` profiles BIN (by
#     default the data-plane build of these sources, the one the image ships) as `ir` does and puts the
#     functions that ran first in images/link-order/activator.txt (scripts/link_order.py --hot;
#     scripts/link-order.sh runs it after the real node's profile);
#   - the profile the data-plane build is optimised with (PGO): `profile.sh pgo` builds the activator
#     instrumented (`-C profile-generate`), drives the hop's traffic through it (HTTP/1.1 kept alive at
#     64 and 8 connections, new connections, a body, HTTP/2, 404s, requests parked until their client
#     gives up), then with the chart's logging (info, the JSON access log), then through two peered
#     replicas (the hop between them), and merges what they counted into
#     images/pgo/activator.profdata.xz (Debian's llvm-profdata; scripts/cargo-static.sh reads it).
# BIN is a release build with line tables (the workspace's release profile keeps them). The activator
# logs at `warn`, as the bench runs it; PROFILE_LOG=info profiles it at its default level, where each
# request has a log span, and PROFILE_ARGS adds flags (the access log: see below).
# Needs valgrind and perf (Debian packages valgrind, linux-perf), nginx and oha as bench.sh does.
set -euo pipefail
cd "$(dirname "$0")/../.."
source "${BENCH_LIB:-scripts/bench-lib.sh}"
export BENCH_TOOLS=${BENCH_TOOLS:-${ZEROSCALE_CACHE:-$HOME/.cache/zeroscale}/tools}
mkdir -p "$BENCH_TOOLS"
out=$(realpath -m "${BENCH_OUT:-target/bench}/profile")
mkdir -p "$out/nginx-pod"
mode=${1:?usage: profile.sh ir|ir-peer|ir-owner|perf BIN [BIN ...] | order [BIN] | pgo [INSTRUMENTED_BIN]}
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
  - namespace: bench
    name: cold
YAML
bench_wait_http http://127.0.0.1:18480/

# The activator listens on ${base}0 (external), ${base}1 (in-cluster, where the requests go) and
# ${base}2 (admin). Two peered replicas (the chart runs two) are on 1849x and 1859x, each with both
# in its static peer set: a request for a function the other one owns is forwarded there.
base=1849
# PROFILE_ARGS: more flags for the activator, e.g. the chart's access log ("--log-format json
# --access-log true", with PROFILE_LOG=info) to count what its logging costs a request.
read -r -a extra <<< "${PROFILE_ARGS:-}"
pair=(--static-peers 127.0.0.1:18491,127.0.0.1:18591 --pod-ip 127.0.0.1)

# Starts BIN (under the command that follows it, if any) on the ports ${base}x with "${extra[@]}";
# sets $activator_pid.
start() {
  local bin=$1
  shift
  RUST_LOG=${PROFILE_LOG:-warn} "$@" "$bin" --worker-threads 1 --static-config "$out/functions.yaml" --autoscaler-url "" \
    --external-addr "127.0.0.1:${base}0" --internal-addr "127.0.0.1:${base}1" --admin-addr "127.0.0.1:${base}2" \
    --broker-addr off "${extra[@]}" > "$out/activator-$base.log" 2>&1 &
  activator_pid=$!
  pids+=("$activator_pid")
  # Under callgrind the activator starts tens of times slower than natively.
  BENCH_WAIT_SECONDS=30 bench_wait_http "http://127.0.0.1:${base}2/ready"
}

# Starts the peered pair from BIN (under WRAPPER ..., when given: `start_pair BIN [WRAPPER ...]`) and
# finds which one forwards $host's requests to the other (its admin port counts them). Sets
# $forwarder and $owner to their port bases, and their pids in $pid_of; leaves $base at 1849.
start_pair() {
  local bin=$1 forwarded
  shift
  extra=("${pair[@]}")
  declare -gA pid_of=()
  for base in 1849 1859; do
    start "$bin" "$@"
    pid_of[$base]=$activator_pid
  done
  base=1849
  "$oha" --no-tui -n 100 -c 4 --host "$host" http://127.0.0.1:18491/ > /dev/null
  forwarded=$(curl -fsS http://127.0.0.1:18492/metrics |
    awk '/^zeroscale_activator_peer_forwards_total\{.*outcome="forwarded"/ {n += $NF} END {print n + 0}')
  if ((forwarded > 0)); then forwarder=1849 owner=1859; else forwarder=1859 owner=1849; fi
}

stop() {
  kill "$activator_pid" 2>/dev/null || true
  wait "$activator_pid" 2>/dev/null || true
}

# Builds the data-plane activator instrumented to count into $1 (a target directory of its own, so
# the image's build stays cached); prints its path.
pgo_instrumented_bin() {
  local target
  target=$(realpath -m "${CARGO_TARGET_DIR:-target}")/pgo-generate
  mkdir -p "$1"
  ZEROSCALE_PGO_GENERATE=$1 CARGO_TARGET_DIR=$target \
    bash scripts/cargo-static.sh -q --profile data-plane -p zeroscale-activator >&2
  echo "$target/$(bash scripts/cargo-static.sh --triple)/data-plane/zeroscale-activator"
}

# Merges the raw counts $@ into images/pgo/activator.profdata.xz. Functions that did not run stay in
# it with their zero counts: the compiler then knows them cold and optimises them for size (without
# them, `--sparse`, the hop is as fast but the code 4.8 MB larger instead of 3.5 MB smaller).
pgo_merge() {
  local profdata merged=$out/pgo/activator.profdata
  profdata=$(bench_llvm_profdata)
  "$profdata" merge -o "$merged" "$@"
  mkdir -p images/pgo
  xz -9 -c "$merged" > images/pgo/activator.profdata.xz
  echo "profile: images/pgo/activator.profdata.xz, $(stat -c %s images/pgo/activator.profdata.xz) bytes, from $# run(s):"
  "$profdata" show "$merged" | sed -n 's/^/  /p' | head -4
}

if [[ $mode == order ]]; then
  (($#)) || set -- "$(bench_activator_bin)"
  (($# == 1)) || { echo "profile: order takes one build" >&2; exit 2; }
fi
if [[ $mode == pgo ]]; then
  # An instrumented build may be named (LLVM_PROFILE_FILE puts its counts where this mode reads them).
  (($#)) || set -- "$(pgo_instrumented_bin "$out/pgo")"
  (($# == 1)) || { echo "profile: pgo takes one instrumented build" >&2; exit 2; }
  mkdir -p "$out/pgo"
fi

n=0
for bin in "$@"; do
  n=$((n + 1))
  case $mode in
    ir | order | ir-peer | ir-owner)
      rm -f "$out/callgrind-$n".*
      # The requests go to $to. ir-peer counts the replica that forwards them to the function's
      # owner, ir-owner the owner (the other one runs natively): the two halves of the hop a request
      # takes when it arrives at the replica that does not own its function.
      to=1849
      if [[ $mode == ir-peer || $mode == ir-owner ]]; then
        start_pair "$bin"
        to=$forwarder
        base=$forwarder
        [[ $mode == ir-peer ]] || base=$owner
        activator_pid=${pid_of[$base]}
        stop
        other=${pid_of[$((forwarder + owner - base))]}
      fi
      # Instruction addresses too: the order needs them (and they cost the count nothing).
      start "$bin" valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$out/callgrind-$n.%p"
      # Warm the pod (and owner) connections, then count only the measured requests.
      "$oha" --no-tui -n 1000 -c 8 --host "$host" "http://127.0.0.1:${to}1/" > /dev/null
      callgrind_control -z "$activator_pid" > /dev/null
      "$oha" --no-tui -n "$requests" -c 8 --host "$host" "http://127.0.0.1:${to}1/" > "$out/oha-$n.txt"
      callgrind_control -d "$activator_pid" > /dev/null
      # The dump is written asynchronously: wait for it (10 s at most) rather than a fixed time.
      for _ in $(seq 1 200); do
        compgen -G "$out/callgrind-$n.*.1" > /dev/null && break
        sleep 0.05
      done
      stop
      if [[ $mode == ir-peer || $mode == ir-owner ]]; then
        kill "$other" && wait "$other" || true
        extra=() base=1849
      fi
      file=$(ls "$out/callgrind-$n".*.1)  # the dump after the measured requests
      # awk reads to the end: leaving early would kill callgrind_annotate (SIGPIPE), and pipefail
      # would fail the assignment.
      ir=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}')
      echo "$bin: $((ir / requests)) instructions per request ($requests requests, $file)"
      if [[ $mode == order ]]; then
        python3 scripts/link_order.py --hot "$bin" images/link-order/activator.txt "$file"
      fi
      ;;
    pgo)
      rm -f "$out"/pgo/*.profraw
      start "$bin" env LLVM_PROFILE_FILE="$out/pgo/activator-%p.profraw"
      url=http://127.0.0.1:18491/
      "$oha" --no-tui -n 20000 -c 64 --host "$host" "$url" > /dev/null
      "$oha" --no-tui -n 5000 -c 8 --host "$host" "$url" > /dev/null
      "$oha" --no-tui -n 1000 -c 8 --disable-keepalive --host "$host" "$url" > /dev/null
      "$oha" --no-tui -n 2000 -c 8 -m POST -d '{"greeting":"hello"}' -H 'content-type: application/json' \
        --host "$host" "$url" > /dev/null
      "$oha" --no-tui -n 2000 -c 8 --http2 --host "$host" "$url" > /dev/null
      # Answers without a pod: an unknown host (404), and requests parked for a function with no
      # pod until their client gives up (HTTP/1.1 connections, and h2c streams).
      "$oha" --no-tui -n 500 -c 8 --host nothing.bench.svc.cluster.local "$url" > /dev/null
      "$oha" --no-tui -n 200 -c 200 -t 1s --host cold.bench.svc.cluster.local "$url" > /dev/null || true
      "$oha" --no-tui -n 200 -c 2 -p 100 --http2 -t 1s --host cold.bench.svc.cluster.local "$url" > /dev/null || true
      stop # the counts are written as the process exits
      # The chart's logging (level info, the JSON access log): a user's activator runs its request
      # span and access line on every request, so they are counted as the hot code they are there,
      # not optimised for size as code that never ran.
      extra=(--log-format json --access-log true)
      PROFILE_LOG=info start "$bin" env LLVM_PROFILE_FILE="$out/pgo/activator-%p.profraw"
      "$oha" --no-tui -n 10000 -c 64 --host "$host" "$url" > /dev/null
      "$oha" --no-tui -n 500 -c 8 --host nothing.bench.svc.cluster.local "$url" > /dev/null
      stop
      extra=()
      # The peered pair: each replica takes the keep-alive loads, so the one that does not own the
      # function forwards its requests to the other (the hop between replicas, on the chart's two).
      start_pair "$bin" env LLVM_PROFILE_FILE="$out/pgo/activator-%p.profraw"
      for base in 1849 1859; do
        url=http://127.0.0.1:${base}1/
        "$oha" --no-tui -n 10000 -c 64 --host "$host" "$url" > /dev/null
        "$oha" --no-tui -n 2000 -c 8 --host "$host" "$url" > /dev/null
        "$oha" --no-tui -n 1000 -c 8 -m POST -d '{"greeting":"hello"}' -H 'content-type: application/json' \
          --host "$host" "$url" > /dev/null
      done
      for pid in "${pid_of[@]}"; do kill "$pid" 2> /dev/null || true; done
      for pid in "${pid_of[@]}"; do wait "$pid" 2> /dev/null || true; done
      extra=() base=1849
      pgo_merge "$out"/pgo/*.profraw
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
      echo "profile: unknown mode $mode (ir, ir-peer, ir-owner, perf, order or pgo)" >&2
      exit 2
      ;;
  esac
done
