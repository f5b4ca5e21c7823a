#!/usr/bin/env bash
# Activator benchmark (SPEC §9 P1, P2, P6), all on loopback in one run:
#   - the upstream is nginx answering `200 ok` (one worker);
#   - direct vs through the activator (--static-config) vs through nginx as a reverse proxy;
#   - added latency at 1k rps open loop (oha -q 1000 with latency correction), max throughput at
#     64 connections, idle RSS, RSS growth with 10,000 requests parked at a function at zero, and the
#     RSS once they are gone (peak and after BENCH_ACTIVATOR_SETTLE, default 20 s: memory back after a burst);
#   - the CPU time (user and system, from /proc) the activator and the nginx proxy spend per proxied
#     request during the throughput runs: what a hop costs, whatever the other processes take;
#   - what the chart's logging costs (level info, the JSON access log): a second activator run so,
#     against the first in pairs of throughput runs, and whether it wrote a line for every request.
# Writes $BENCH_FRAGMENT: {"activator": {...}, "nginx": {...}}.
set -euo pipefail
cd "$(dirname "$0")/../.."
source "${BENCH_LIB:-scripts/bench-lib.sh}"
out=${BENCH_OUT:-target/bench}/activator
fragment=${BENCH_FRAGMENT:-$out/fragment.json}
mkdir -p "$out"
duration=${BENCH_ACTIVATOR_DURATION:-3s}
host=hello.bench.svc.cluster.local

oha=$(bench_oha)
nginx=$(bench_nginx)
# BENCH_ACTIVATOR_BIN runs another build of the activator (an A/B against an older commit).
activator_bin=$(bench_activator_bin)

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# --- upstream and nginx proxy -------------------------------------------------------------
# Two nginx processes, one worker each: the pod, and the reverse proxy. (One process serving both
# would proxy to itself without a cross-process wake-up, which flatters the nginx hop.)
nginx_conf() { # name, server block
  mkdir -p "$out/nginx-$1"
  cat > "$out/nginx-$1/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $out/nginx-$1/nginx.pid;
error_log $out/nginx-$1/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path $out/nginx-$1/body;
  proxy_temp_path $out/nginx-$1/proxy;
  fastcgi_temp_path $out/nginx-$1/fastcgi;
  uwsgi_temp_path $out/nginx-$1/uwsgi;
  scgi_temp_path $out/nginx-$1/scgi;
  keepalive_requests 1000000;
  $2
}
NGINX
  "$nginx" -p "$out/nginx-$1" -c "$out/nginx-$1/nginx.conf" &
  pids+=($!)
  nginx_master[$1]=$!
}
declare -A nginx_master
nginx_conf pod 'server { listen 127.0.0.1:18080; location / { return 200 "ok\n"; } }'
nginx_conf proxy 'upstream pod { server 127.0.0.1:18080; keepalive 256; }
  server {
    listen 127.0.0.1:18081;
    location / {
      proxy_pass http://pod;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }'

cat > "$out/functions.yaml" <<YAML
functions:
  - namespace: bench
    name: hello
    endpoints: [{address: "127.0.0.1:18080"}]
  - namespace: bench
    name: cold
    timeoutSeconds: 600
YAML
RUST_LOG=warn "$activator_bin" --worker-threads "${BENCH_ACTIVATOR_WORKERS:-1}" --static-config "$out/functions.yaml" --autoscaler-url "" \
  --external-addr 127.0.0.1:18090 --internal-addr 127.0.0.1:18091 --admin-addr 127.0.0.1:18092 \
  --broker-addr off --queue-max-requests 20000 > "$out/activator.log" 2>&1 &
activator_pid=$!
pids+=($activator_pid)
# The same activator with the chart's logging: level info, JSON, one access line per request (to a
# file here; a container's standard output is a pipe to the runtime).
RUST_LOG=info "$activator_bin" --worker-threads "${BENCH_ACTIVATOR_WORKERS:-1}" --static-config "$out/functions.yaml" --autoscaler-url "" \
  --external-addr 127.0.0.1:18093 --internal-addr 127.0.0.1:18094 --admin-addr 127.0.0.1:18095 \
  --broker-addr off --queue-max-requests 20000 --log-format json --access-log true \
  > "$out/activator-logged.log" 2> "$out/activator-logged.err" &
logged_pid=$!
pids+=($logged_pid)

bench_wait_http http://127.0.0.1:18080/
bench_wait_http http://127.0.0.1:18081/
bench_wait_http http://127.0.0.1:18092/ready
bench_wait_http http://127.0.0.1:18095/ready
sleep 1
idle_rss_kib=$(bench_rss_kib "$activator_pid")

# The proxy's worker: the process that spends the nginx hop's CPU.
proxy_worker=$(pgrep -P "${nginx_master[proxy]}" | head -n 1)
[[ -n $proxy_worker ]] || { echo "bench: the nginx proxy has no worker process" >&2; exit 1; }
clock_ticks=$(getconf CLK_TCK)

# oha prints JSON; returns "rps p50_us p99_us errors requests".
run_oha() {
  local name=$1; shift
  "$oha" --no-tui --output-format json -w --host "$host" "$@" > "$out/$name.json"
  python3 - "$out/$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["summary"]
p = r["latencyPercentiles"]
errors = sum(r.get("errorDistribution", {}).values())
codes = r.get("statusCodeDistribution", {})
non2xx = sum(v for k, v in codes.items() if not k.startswith("2"))
print(f'{s["requestsPerSec"]:.1f} {p["p50"] * 1e6:.1f} {p["p99"] * 1e6:.1f} {errors + non2xx} {sum(codes.values())}')
PY
}

# Warm up pools on every path.
for port in 18080 18081 18091 18094; do
  "$oha" --no-tui -n 2000 -c 16 --host "$host" "http://127.0.0.1:$port/" > /dev/null
done

# --- P1 and P2: rounds, each measuring every system in a rotating order -------------------
# Latency: 1k rps open loop (oha corrects for coordinated omission). Throughput: 64 connections,
# closed loop. Within a round the three systems run back to back, the first one rotating from round
# to round, so drift in the machine's load hits each alike; the comparisons are the per-round ratios
# (activator against nginx measured seconds apart), reported as their median and their spread
# (min–max), with the load average sampled at every round. At least 5 rounds of 3 s runs: about the
# time 3 rounds of 5 s took.
latency() { run_oha "$1" -z "$duration" -q 1000 -c 16 --latency-correction "http://127.0.0.1:$2/"; }
# Throughput, and the CPU time process $3 spent per answered request meanwhile: "rps errors user_ns
# system_ns requests"; with $3 = 0 (no proxy: the direct runs) both times are 0. /proc counts in ticks of
# 1/CLK_TCK s: a proxy spends some 250 of them in a 3 s run at ~50k rps (about 40 in user space), so
# the sum resolves about half a percent, the user time a few percent.
throughput() {
  local before=(0 0) after=(0 0) rps errors requests
  [[ $3 == 0 ]] || read -r -a before < <(awk '{print $14, $15}' "/proc/$3/stat")
  read -r rps _ _ errors requests < <(run_oha "$1" -z "$duration" -c 64 "http://127.0.0.1:$2/")
  [[ $3 == 0 ]] || read -r -a after < <(awk '{print $14, $15}' "/proc/$3/stat")
  awk -v t="$clock_ticks" -v n="$requests" -v u0="${before[0]}" -v s0="${before[1]}" \
    -v u1="${after[0]}" -v s1="${after[1]}" -v head="$rps $errors" \
    'BEGIN { m = n > 0 ? n : 1; printf "%s %.0f %.0f %d\n", head, (u1 - u0) * 1e9 / t / m, (s1 - s0) * 1e9 / t / m, n }'
}
rounds=${BENCH_ACTIVATOR_ROUNDS:-5}
((rounds >= 5)) || rounds=5
systems=(direct activator nginx)
declare -A port=([direct]=18080 [activator]=18091 [nginx]=18081)
declare -A proxy_pid=([direct]=0 [activator]=$activator_pid [nginx]=$proxy_worker)
: > "$out/rounds.txt"
: > "$out/loadavg.txt"
for round in $(seq 1 "$rounds"); do
  order=()
  for i in 0 1 2; do order+=("${systems[$(((round - 1 + i) % 3))]}"); done
  declare -A p50 p99 err rps rerr user_ns sys_ns
  for system in "${order[@]}"; do
    read -r _ "p50[$system]" "p99[$system]" "err[$system]" _ < <(latency "$system-1k-$round" "${port[$system]}")
  done
  for system in "${order[@]}"; do
    read -r "rps[$system]" "rerr[$system]" "user_ns[$system]" "sys_ns[$system]" _ \
      < <(throughput "$system-max-$round" "${port[$system]}" "${proxy_pid[$system]}")
  done
  cut -d' ' -f1 /proc/loadavg >> "$out/loadavg.txt"
  echo "${p50[direct]} ${p99[direct]} ${p50[activator]} ${p99[activator]} ${p50[nginx]} ${p99[nginx]}"     "${err[activator]} ${rps[activator]} ${rerr[activator]} ${rps[nginx]} ${rerr[nginx]} ${rps[direct]}" \
    "${user_ns[activator]} ${sys_ns[activator]} ${user_ns[nginx]} ${sys_ns[nginx]}"     "# order: ${order[*]}" | tee -a "$out/rounds.txt"
done
active_rss_kib=$(bench_rss_kib "$activator_pid")

# --- The chart's logging: pairs of throughput runs, without and with it, the first alternating ---
# Every request the logged activator answered must have its line: lines written during the pairs
# (after the writer thread's last batch) against the requests oha got answered. A run cut at its end
# may leave a request recorded but not answered, so there may be more lines, never fewer.
access_lines() { grep -c '"target":"access"' "$out/activator-logged.log" || true; }
lines_before=$(access_lines)
: > "$out/access-log.txt"
port[logged]=18094 proxy_pid[logged]=$logged_pid
for pair in 1 2 3; do
  runs=(activator logged)
  ((pair % 2)) || runs=(logged activator)
  declare -A pair_row
  for run in "${runs[@]}"; do
    pair_row[$run]=$(throughput "$run-pair-$pair" "${port[$run]}" "${proxy_pid[$run]}")
  done
  echo "${pair_row[activator]} ${pair_row[logged]} # order: ${runs[*]}" | tee -a "$out/access-log.txt"
done
sleep 1
access_log_lines=$(($(access_lines) - lines_before))
# Its log is some 200 MiB by now: keep a few lines to read, not the file.
kill "$logged_pid" 2>/dev/null || true
wait "$logged_pid" 2>/dev/null || true
grep -m 3 '"target":"access"' "$out/activator-logged.log" > "$out/activator-logged.sample.log" || true
rm -f "$out/activator-logged.log"

# --- P6: 10,000 requests parked at a function at zero -----------------------------------
# 10,000 parked connections need that many descriptors.
bench_raise_nofile
park() {
  local name=$1; shift
  local before after queued
  before=$(bench_rss_kib "$activator_pid")
  "$oha" --no-tui -n 10000 -t 120s --host cold.bench "$@" http://127.0.0.1:18091/ > "$out/$name.txt" 2>&1 &
  local load=$!
  queued=0
  for _ in $(seq 1 600); do
    queued=$(curl -fsS http://127.0.0.1:18092/metrics | awk '/^zeroscale_activator_queue_depth\{.*function="cold"/ {print $2}')
    [[ ${queued:-0} -ge 10000 ]] && break
    sleep 0.1
  done
  sleep 1
  after=$(bench_rss_kib "$activator_pid")
  kill "$load" 2>/dev/null || true
  wait "$load" 2>/dev/null || true
  # Let the queue empty (clients gone) before the next measurement.
  for _ in $(seq 1 100); do
    q=$(curl -fsS http://127.0.0.1:18092/metrics | awk '/^zeroscale_activator_queue_depth\{.*function="cold"/ {print $2}')
    [[ ${q:-0} -eq 0 ]] && break
    sleep 0.1
  done
  echo "${queued:-0} $(( after - before ))"
}
read -r parked_h1 parked_h1_kib < <(park parked-http1 -c 10000)
read -r parked_h2 parked_h2_kib < <(park parked-h2c --http2 -c 100 -p 100)
# Memory back after the bursts (issue #19): RSS once the parked clients are gone and the activator
# has been idle for BENCH_ACTIVATOR_SETTLE seconds (the allocator's decay time is 10 s).
peak_rss_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$activator_pid/status")
sleep "${BENCH_ACTIVATOR_SETTLE:-20}"
settled_rss_kib=$(bench_rss_kib "$activator_pid")

python3 - "$fragment" "$out/rounds.txt" "$out/loadavg.txt" "$out/access-log.txt" <<PY
import json, statistics, sys
rows = [list(map(float, l.split("#")[0].split())) for l in open(sys.argv[2]) if l.strip()]
load = [float(l) for l in open(sys.argv[3]) if l.strip()]
col = lambda i: [r[i] for r in rows]
med = lambda xs: round(statistics.median(xs), 1)
added = lambda a, d: med([r[a] - r[d] for r in rows])
mib = lambda kib: round(kib / 1024, 1)
act_rps, ngx_rps = med(col(7)), med(col(9))
# Per-round ratios: activator against nginx within the same round. A round whose nginx hop added
# nothing measurable (<= 0 µs at the median) has no added-latency ratio.
rps_ratios = [r[7] / r[9] for r in rows if r[9] > 0]
added_ratios = [(r[2] - r[0]) / (r[4] - r[0]) for r in rows if r[4] - r[0] > 0]
# CPU per proxied request (user + system ns, columns 12-15): activator against nginx in the same round.
cpu = lambda r, i: r[i] + r[i + 1]
cpu_ratios = [cpu(r, 12) / cpu(r, 14) for r in rows if cpu(r, 14) > 0]
us = lambda i: round(statistics.median(col(i)) / 1000, 2)

def ratio_figures(name, ratios, limit, better):
    """Median, spread and whether the spread decides better (<= or >=) against limit."""
    if not ratios:
        return {name: None, f"{name}_note": "no round measured it"}
    lo, hi, mid = min(ratios), max(ratios), statistics.median(ratios)
    if lo <= limit <= hi:
        note = f"too wide to decide: per-round ratios {lo:.2f}–{hi:.2f} straddle {limit}"
    else:
        met = (hi <= limit) if better == "<=" else (lo >= limit)
        note = f"decided: every round {'meets' if met else 'misses'} {better} {limit}"
    return {name: round(mid, 3), f"{name}_min": round(lo, 3), f"{name}_max": round(hi, 3),
            f"{name}_note": note}

# The chart's logging (pairs: plain rps errors user system requests, then the same logged).
pairs = [list(map(float, l.split("#")[0].split())) for l in open(sys.argv[4]) if l.strip()]
pair_med = lambda f: round(statistics.median(f(p) for p in pairs), 2)
logged_requests = int(sum(p[9] for p in pairs))
access_log = {
  "cpu_user_us_per_request": pair_med(lambda p: p[7] / 1000),
  "cpu_system_us_per_request": pair_med(lambda p: p[8] / 1000),
  "cpu_user_added_us_per_request": pair_med(lambda p: (p[7] - p[2]) / 1000),
  "cpu_added_us_per_request": pair_med(lambda p: (p[7] + p[8] - p[2] - p[3]) / 1000),
  "rps": pair_med(lambda p: p[5]),
  "rps_ratio_vs_plain": round(statistics.median(p[5] / p[0] for p in pairs if p[0] > 0), 3),
  "errors": int(sum(p[6] for p in pairs)),
  "requests": logged_requests,
  "lines": $access_log_lines,
  "lines_missing": max(0, logged_requests - $access_log_lines),
  "pairs": len(pairs),
}

figures = {
  "activator": {
    "added_p50_us": added(2, 0),
    "added_p99_us": added(3, 1),
    "p50_us": med(col(2)), "p99_us": med(col(3)),
    "direct_p50_us": med(col(0)), "direct_p99_us": med(col(1)),
    "errors_1k": int(sum(col(6))),
    "rps": act_rps,
    "rps_errors": int(sum(col(8))),
    "direct_rps": med(col(11)),
    **ratio_figures("added_p50_ratio_vs_nginx", added_ratios, 1.0, "<="),
    **ratio_figures("rps_ratio_vs_nginx", rps_ratios, 1.0, ">="),
    "cpu_user_us_per_request": us(12),
    "cpu_system_us_per_request": us(13),
    **ratio_figures("cpu_per_request_ratio_vs_nginx", cpu_ratios, 1.0, "<="),
    "load_avg_1m_median": round(statistics.median(load), 2) if load else None,
    "load_avg_1m_max": round(max(load), 2) if load else None,
    "idle_rss_mib": mib($idle_rss_kib),
    "loaded_rss_mib": mib($active_rss_kib),
    "parked_10k_rss_mib": mib($parked_h1_kib),
    "parked_10k_requests": $parked_h1,
    "parked_10k_h2c_rss_mib": mib($parked_h2_kib),
    "parked_10k_h2c_requests": $parked_h2,
    "peak_rss_mib": mib($peak_rss_kib),
    "settled_rss_mib": mib($settled_rss_kib),
    "rounds": len(rows),
    "access_log": access_log,
  },
  "nginx": {
    "rps": ngx_rps,
    "rps_errors": int(sum(col(10))),
    "added_p50_us": added(4, 0),
    "added_p99_us": added(5, 1),
    "cpu_user_us_per_request": us(14),
    "cpu_system_us_per_request": us(15),
  },
}
json.dump(figures, open(sys.argv[1], "w"), indent=2)
print(json.dumps(figures, indent=2))
PY
