#!/usr/bin/env bash
# Cold-start section of `make bench` (SPEC §9 P3, P4, P5, P9), on the local cluster with Zeroscale
# installed by `scripts/install.sh` from RELEASE builds (ZEROSCALE_INSTALL_PROFILE=release: image tag
# `release`, which the node agent maps to target/release/zeroscale-<x>), the benchmarked Functions
# running `zeroscale/echo:release` too:
#   coldstart.arrival_to_patch_p99_ms   request arrival at the activator → autoscaler's /scale patch sent
#   coldstart.ready_to_forward_p99_ms   pod able to serve → first buffered request forwarded to it
#   coldstart.e2e_p50_ms, e2e_p95_ms    20 cold starts of the echo example (20 Functions created at zero)
#   burst.errors, burst.max_over_ready_ms   1,000 concurrent requests, one connection each, at zero
#   footprint.idle_rss_mib              operator + activator + autoscaler RSS after 60 s idle
# plus the plot coldstart.svg and every sample in coldstart/samples.json. How each figure is taken:
# docs/benchmarks.md. If the cluster was down, this section brings it up and tears it down at the end;
# on a running cluster (shared with others) it puts the debug install back at the end, as others'
# tests expect it. It holds the install lock throughout, so a concurrent scripts/install.sh (someone's
# test) waits instead of switching the components back to debug builds in the middle of a measurement.
# BENCH_PROFILE=debug measures the debug install instead (for comparison).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
source e2e/cluster/lib.sh
out=${BENCH_OUT:-$root/target/bench}
fragment=${BENCH_FRAGMENT:-$out/coldstart/fragment.json}
mkdir -p "$out/coldstart"
export KUBECONFIG=$ZS_KUBECONFIG PATH="$ZS_BIN:$PATH"
kubectl() { "$ZS_BIN/kubectl" --kubeconfig "$ZS_KUBECONFIG" "$@"; }

brought_up=0
if ! bash e2e/cluster/status.sh --check; then
  log "coldstart: the local cluster is down; bringing it up (and down again at the end)"
  brought_up=1
fi
locked=0
cleanup() {
  local status=$?
  if [[ $brought_up == 1 ]]; then
    [[ $locked == 1 ]] && flock -u 8
    bash scripts/uninstall.sh || true
    bash e2e/cluster/down.sh || true
  elif [[ $locked == 1 ]]; then
    log "coldstart: restoring the debug install"
    ZEROSCALE_INSTALL_PROFILE=debug bash scripts/install.sh || {
      log "coldstart: could not restore the debug install (run: bash scripts/install.sh)"
      status=1
    }
  fi
  exit "$status"
}
trap cleanup EXIT
[[ $brought_up == 1 ]] && make -s cluster-up

profile=${BENCH_PROFILE:-release}
case $profile in
  release) image=${BENCH_IMAGE:-zeroscale/echo:release} ;;
  *) image=${BENCH_IMAGE:-zeroscale/echo} ;;
esac
# The debug builds are what the install goes back to at the end (a no-op build when current). The
# driver is a release build: its client overhead is part of every latency it measures.
cargo build -q -p zeroscale-operator -p zeroscale-activator -p zeroscale-autoscaler -p zeroscale-echo \
  --bins || log "coldstart: warning: cannot build the debug components; the restore uses what target/debug holds"
cargo build -q --release -p zeroscale-bench-coldstart
# install.sh builds the release binaries too; building them before taking the lock keeps it short.
if [[ $profile == release ]]; then
  for p in operator activator autoscaler echo; do cargo build -q --release -p "zeroscale-$p"; done
fi
exec 8>"$ZS_STATE/.install.lock"
log "coldstart: waiting for the install lock (held until the end of this section)"
flock -w 900 8 || die "cannot take $ZS_STATE/.install.lock: another install runs"
locked=1
export ZEROSCALE_INSTALL_LOCK_HELD=1
ZEROSCALE_INSTALL_PROFILE=$profile bash scripts/install.sh
# shellcheck disable=SC1091
source "$ZS_STATE/activator.env"
export ZEROSCALE_ACTIVATOR
# BENCH_DIRECT=1 (diagnosis): the driver talks to one activator pod's data port directly instead of the
# ClusterIP, leaving out the node agent's userspace Service proxy (a real node's kube-proxy is in the
# kernel), so its share of the figures shows.
if [[ ${BENCH_DIRECT:-0} == 1 ]]; then
  direct=$(kubectl get pods -n zeroscale-system -l app.kubernetes.io/component=activator \
    --field-selector status.phase=Running -o jsonpath='{.items[0].status.podIP}:{.items[0].spec.containers[0].ports[?(@.name=="http")].containerPort}')
  [[ $direct == *.*:* ]] || die "BENCH_DIRECT: no running activator pod with an http port"
  ZEROSCALE_ACTIVATOR=http://$direct
fi

# Admin endpoints (/metrics): the pods' when the chart installed the components, else the host
# processes' loopback ports (scripts/components.sh).
admin_urls() { # component, host-mode address
  local ips
  ips=$(kubectl get pods -n zeroscale-system -l "app.kubernetes.io/component=$1" \
    --field-selector status.phase=Running -o jsonpath='{.items[*].status.podIP}' 2>/dev/null || true)
  if [[ -n $ips ]]; then
    local port
    port=$(kubectl get pods -n zeroscale-system -l "app.kubernetes.io/component=$1" -o \
      jsonpath='{.items[0].spec.containers[0].ports[?(@.name=="admin")].containerPort}' 2>/dev/null || true)
    local ip urls=()
    for ip in $ips; do urls+=("http://$ip:${port:-9090}"); done
    (IFS=,; echo "${urls[*]}")
  else
    echo "http://$2"
  fi
}
activator_admin=$(admin_urls activator 127.0.0.1:9191)
autoscaler_admin=$(admin_urls autoscaler 127.0.0.1:9192)
log "coldstart: activator $ZEROSCALE_ACTIVATOR (admin $activator_admin), autoscaler admin $autoscaler_admin"
# The platform-share figures need the wall-clock stamps the components export; components started from
# older builds do not have them (restart them to measure P3). The activator's stamps are per function,
# so they appear only after its first cold start: the driver names a missing one per sample.
curl -fsS "${autoscaler_admin%%,*}/metrics" | grep -q "^# TYPE zeroscale_autoscaler_demand_accepted_timestamp_seconds" ||
  log "coldstart: warning: the autoscaler exports no demand stamp (an older build); P3 figures will be missing"

ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null || true
"$root/target/release/coldstart-bench" --activator "$ZEROSCALE_ACTIVATOR" \
  --activator-admin "$activator_admin" --autoscaler-admin "$autoscaler_admin" \
  --cold-starts "${BENCH_COLD_STARTS:-20}" --burst "${BENCH_BURST:-1000}" --image "$image" \
  --out "$out/coldstart" \
  >"$out/coldstart/driver.out" 2> >(tee "$out/coldstart/driver.log" >&2)
cp "$out/coldstart/coldstart.svg" "$out/coldstart.svg"

# --- P9: RSS of the three components after 60 s without benchmark traffic ---------------------------
# The installed processes: the node agent's pid files of the zeroscale-system pods (chart install), else
# scripts/components.sh's pid files (host processes), else every process by executable name; each is
# checked to run zeroscale-<component>. A component with several replicas counts once, at its largest
# replica: P9 is about one of each.
idle=${BENCH_IDLE_SECONDS:-60}
log "coldstart: idle ${idle}s before measuring RSS"
sleep "$idle"
installed_pids() { # component → pids of the installed component's processes
  local files=("$ZS_STATE"/pods/zeroscale-system_*-"$1"-*/*.pid) f pid exe
  [[ -e ${files[0]} ]] || files=("$ZS_STATE/run/components/$1.pid")
  for f in "${files[@]}"; do
    [[ -f $f ]] && pid=$(<"$f") && [[ -d /proc/$pid ]] && echo "$pid"
  done
  # Elsewhere (another cluster), by executable name alone.
  if [[ ! -e ${files[0]} ]]; then
    for pid in /proc/[0-9]*; do
      exe=$(readlink "$pid/exe" 2>/dev/null) || continue
      [[ ${exe% (deleted)} == */zeroscale-$1 ]] && echo "${pid#/proc/}"
    done
  fi
}
rss_line() { # component → "kib replicas"
  local best=0 n=0 pid exe kib
  for pid in $(installed_pids "$1"); do
    # A rebuilt binary shows as "<path> (deleted)"; the process is still the component.
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    [[ ${exe% (deleted)} == */zeroscale-$1 ]] || continue
    kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
    n=$((n + 1))
    ((kib > best)) && best=$kib
  done
  echo "$best $n"
}
read -r op_kib op_n < <(rss_line operator)
read -r act_kib act_n < <(rss_line activator)
read -r as_kib as_n < <(rss_line autoscaler)
built=release
for c in operator activator autoscaler; do
  for pid in $(installed_pids "$c"); do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    [[ $exe == */debug/* ]] && built=debug
  done
done

python3 - "$out/coldstart/figures.json" "$fragment" <<PY
import json, sys
figures = json.load(open(sys.argv[1]))
mib = lambda kib: round(kib / 1024, 1)
kibs = {"operator": $op_kib, "activator": $act_kib, "autoscaler": $as_kib}
counts = {"operator": $op_n, "activator": $act_n, "autoscaler": $as_n}
figures["footprint"] = {
    "idle_rss_mib": mib(sum(kibs.values())) if all(counts.values()) else None,
    **{f"{c}_rss_mib": mib(k) for c, k in kibs.items()},
    **{f"{c}_processes": n for c, n in counts.items()},
    "debug_build": 1 if "$built" == "debug" else 0,
}
json.dump(figures, open(sys.argv[2], "w"), indent=2, sort_keys=True)
print(json.dumps(figures, indent=2, sort_keys=True))
PY
