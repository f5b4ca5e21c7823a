#!/usr/bin/env bash
# Cold-start section of `make bench` (SPEC §9 P3, P4, P5, P9), on the local cluster's real node
# (kubelet, containerd, kube-proxy) with Zeroscale installed by `scripts/install.sh` from the images in
# the local registry (release builds, pushed by `make images`), logging JSON as the chart does
# (values-bench.yaml), the benchmarked Functions running the echo image
# `localhost:5000/zeroscale/echo:0.1.0`:
#   coldstart.arrival_to_patch_p99_ms   request arrival at the activator → autoscaler's /scale patch sent
#   coldstart.ready_to_forward_p99_ms   pod able to serve → first buffered request forwarded to it
#   coldstart.e2e_p50_ms, e2e_p95_ms    20 cold starts of the echo example (20 Functions created at zero),
#                                       spread over the second between the kubelet's relists
#   coldstart.container_start_p50_ms    of those, pod scheduled → container running (the kubelet's pod
#                                       status: the runtime's share, apart from the platform's)
#   burst.errors, burst.max_over_ready_ms   1,000 concurrent requests, one connection each, at zero
#   burst.drain_answers_per_s, drain_longest_gap_ms (and _from_ms), drain_first_answer_ms,
#   burst.last_pod_serving_ms           how that backlog drained
#   burst.apiserver_requests, apiserver_cpu_ms, operator_api_requests   what the burst cost the API server
#   footprint.idle_rss_mib              operator + activator + autoscaler RSS 60 s after the burst
# plus the plot coldstart.svg and every sample in coldstart/samples.json. How each figure is taken:
# docs/benchmarks.md. If the cluster was down, this section brings it up and tears it down at the end.
# It holds the install lock throughout, so a concurrent scripts/install.sh (someone's test) waits
# instead of rolling the components in the middle of a measurement.
# BENCH_IMAGE overrides the benchmarked function's image.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
source e2e/cluster/lib.sh
source scripts/bench-lib.sh # bench_admin_urls, bench_coldstart_driver, bench_raise_nofile
out=${BENCH_OUT:-$root/target/bench}
fragment=${BENCH_FRAGMENT:-$out/coldstart/fragment.json}
mkdir -p "$out/coldstart"
export KUBECONFIG=$ZS_KUBECONFIG PATH="$ZS_BIN:$PATH"
kubectl() { "$ZS_BIN/kubectl" --kubeconfig "$ZS_KUBECONFIG" "$@"; }

# Brings the cluster up (and down at the end) only when none runs. One whose API server runs but that is
# not healthy right now (CoreDNS or the node briefly not Ready) is someone's cluster: wait for it, and if
# it stays unhealthy stop, rather than restart it and tear it down at the end.
brought_up=0
if ! bash e2e/cluster/status.sh --check; then
  if pid_alive "$(cat "$ZS_RUN/kube-apiserver.pid" 2>/dev/null || echo 0)"; then
    log "coldstart: the local cluster runs but is not healthy; waiting up to 60 s for it"
    healthy=0
    for _ in $(seq 1 30); do
      sleep 2
      bash e2e/cluster/status.sh --check && healthy=1 && break
    done
    if [[ $healthy == 0 ]]; then
      bash e2e/cluster/status.sh >&2 || true
      die "coldstart: the local cluster runs but stayed unhealthy (above); not restarting it: make cluster-up"
    fi
  else
    log "coldstart: the local cluster is down; bringing it up (and down again at the end)"
    brought_up=1
  fi
fi
locked=0
cleanup() {
  local status=$?
  if [[ $brought_up == 1 ]]; then
    [[ $locked == 1 ]] && flock -u 8
    bash scripts/uninstall.sh || true
    bash e2e/cluster/down.sh || true
  fi
  exit "$status"
}
trap cleanup EXIT
[[ $brought_up == 1 ]] && make -s cluster-up

image=${BENCH_IMAGE:-localhost:5000/zeroscale/echo:0.1.0}
# The images of the current sources (a no-op push when nothing changed), before taking the lock. Their
# release build (scripts/images.sh) also builds the driver, in the same cargo invocation: the driver is
# a release build because its client overhead is part of every latency it measures, and built on its
# own it would compile most dependencies again with other features. Building the images before taking
# the cluster lock (`bash scripts/images.sh --no-push`) leaves nothing to compile here.
driver=$(bench_coldstart_driver)
exec 8>"$ZS_STATE/.install.lock"
log "coldstart: waiting for the install lock (held until the end of this section)"
flock -w 900 8 || die "cannot take $ZS_STATE/.install.lock: another install runs"
locked=1
export ZEROSCALE_INSTALL_LOCK_HELD=1
# The chart's log format (JSON), not the local cluster's `plain`: see values-bench.yaml.
ZEROSCALE_VALUES="${ZEROSCALE_VALUES:-} bench/coldstart/values-bench.yaml" bash scripts/install.sh
# shellcheck disable=SC1091
source "$ZS_STATE/activator.env"
export ZEROSCALE_ACTIVATOR

activator_admin=$(bench_admin_urls activator)
autoscaler_admin=$(bench_admin_urls autoscaler)
operator_admin=$(bench_admin_urls operator)
log "coldstart: activator $ZEROSCALE_ACTIVATOR (admin $activator_admin), autoscaler admin $autoscaler_admin, operator admin $operator_admin"

bench_raise_nofile # the burst's connections
"$driver" --activator "$ZEROSCALE_ACTIVATOR" \
  --activator-admin "$activator_admin" --autoscaler-admin "$autoscaler_admin" \
  --operator-admin "$operator_admin" \
  --cold-starts "${BENCH_COLD_STARTS:-20}" --burst "${BENCH_BURST:-1000}" --image "$image" \
  --out "$out/coldstart" \
  >"$out/coldstart/driver.out" 2> >(tee "$out/coldstart/driver.log" >&2)
cp "$out/coldstart/coldstart.svg" "$out/coldstart.svg"

# --- P9: RSS of the three components 60 s after the burst ------------------------------------------
# Counted from the burst's last answer (`burst.ended_unix`, from the driver), not from the driver's exit:
# the driver deletes its namespace after the burst and waits for it to go, which takes a varying time
# (pods terminating), and a sleep after that measured anywhere from 60 to 120 s after the burst. If the
# driver ran no burst, from its exit. `footprint.seconds_after_burst` says when the RSS was read.
# The host pids of the components' containers, as containerd reports them (crictl inspect); each is
# checked to run zeroscale-<component>. A component with several replicas counts once, at its largest
# replica: P9 is about one of each.
idle=${BENCH_IDLE_SECONDS:-60}
ended=$(python3 -c 'import json, sys, time
e = json.load(open(sys.argv[1])).get("burst", {}).get("ended_unix")
print(e if isinstance(e, (int, float)) else time.time())' "$out/coldstart/figures.json")
wait_s=$(python3 -c 'import sys, time; print(max(0.0, float(sys.argv[1]) + float(sys.argv[2]) - time.time()))' \
  "$ended" "$idle")
log "coldstart: waiting ${wait_s}s, until ${idle}s after the burst, before measuring RSS"
sleep "$wait_s"
crictl() { "$ZS_BIN/crictl" --runtime-endpoint "unix://$ZS_CONTAINERD_SOCK" "$@"; }
installed_pids() { # component → host pids of its running containers' main processes
  local id
  for id in $(crictl ps -q --label io.kubernetes.pod.namespace=zeroscale-system \
    --label "io.kubernetes.container.name=$1" --state running); do
    crictl inspect "$id" | python3 -c 'import json, sys; print(json.load(sys.stdin)["info"]["pid"])'
  done
}
# RssAnon (heap, stacks: what the process allocated) and RssFile (the binary's pages mapped in) are
# reported apart: a component's idle RSS is mostly the latter, which no allocator returns.
rss_line() { # component → "kib anon_kib file_kib replicas", of its largest replica
  local best=0 anon=0 file=0 n=0 pid exe kib a f
  for pid in $(installed_pids "$1"); do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    [[ ${exe% (deleted)} == */zeroscale-$1 ]] || continue
    read -r kib a f < <(awk '/^VmRSS:/ {r = $2} /^RssAnon:/ {a = $2} /^RssFile:/ {f = $2}
      END {print r + 0, a + 0, f + 0}' "/proc/$pid/status" 2>/dev/null) || continue
    n=$((n + 1))
    ((kib > best)) && best=$kib anon=$a file=$f
  done
  echo "$best $anon $file $n"
}
read -r op_kib op_anon op_file op_n < <(rss_line operator)
read -r act_kib act_anon act_file act_n < <(rss_line activator)
read -r as_kib as_anon as_file as_n < <(rss_line autoscaler)
after=$(python3 -c 'import sys, time; print(round(time.time() - float(sys.argv[1]), 1))' "$ended")

python3 - "$out/coldstart/figures.json" "$fragment" <<PY
import json, sys
figures = json.load(open(sys.argv[1]))
mib = lambda kib: round(kib / 1024, 1)
kibs = {"operator": $op_kib, "activator": $act_kib, "autoscaler": $as_kib}
counts = {"operator": $op_n, "activator": $act_n, "autoscaler": $as_n}
figures["footprint"] = {
    "idle_rss_mib": mib(sum(kibs.values())) if all(counts.values()) else None,
    **{f"{c}_rss_mib": mib(k) for c, k in kibs.items()},
    **{f"{c}_rss_anon_mib": mib(k) for c, k in
       {"operator": $op_anon, "activator": $act_anon, "autoscaler": $as_anon}.items()},
    **{f"{c}_rss_file_mib": mib(k) for c, k in
       {"operator": $op_file, "activator": $act_file, "autoscaler": $as_file}.items()},
    **{f"{c}_processes": n for c, n in counts.items()},
    "seconds_after_burst": $after,
}
json.dump(figures, open(sys.argv[2], "w"), indent=2, sort_keys=True)
print(json.dumps(figures, indent=2, sort_keys=True))
PY
