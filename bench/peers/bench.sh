#!/usr/bin/env bash
# Peers section of `make bench` (issue #18): Zeroscale against the KEDA HTTP add-on (with KEDA), both
# installed on the local cluster and driven one after the other by the same client (drive.py), with the
# same echo function image pinned by digest:
#   peers.warm_added_p50_us, warm_added_p99_us   added latency at 1,000 rps open loop vs the pod direct
#   peers.throughput_rps, throughput_errors      closed loop, 64 connections, through the data path
#   peers.coldstart_p50_ms, coldstart_p95_ms     first request to each of 20 functions created at zero
#   peers.burst_errors, burst_last_over_ready_ms 1,000 concurrent requests at zero: errors, last answer −
#                                                the moment the first pod could serve
#   peers.{datapath,controlplane}_{idle,parked_10k}_rss_mib   RSS summed over each system's pods
# Each figure is `peers.<figure>.ours`, `.theirs` and `.ratio` (ours / theirs); also the peer's versions
# and the load average. How each is taken and what was left out: docs/benchmarks.md, "Peers".
#
# Optional: runs when BENCH_PEERS=1, or by default when the peer's binaries are already built (cached
# under $ZEROSCALE_CACHE/peers); otherwise it writes a fragment saying it was skipped and why.
# BENCH_PEERS=0 skips it. Everything that touches the cluster (pushing images, both installs, the
# measurements, both removals) runs inside one acquisition of /tmp/zeroscale-cluster.lock; the builds
# come before it. The peer is removed afterwards and the cluster-scoped objects are compared with a
# snapshot taken before its install (nothing of it may be left).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
source e2e/cluster/lib.sh
# shellcheck source=scripts/bench-lib.sh
source "${BENCH_LIB:-scripts/bench-lib.sh}"
source bench/peers/versions.env
out=${BENCH_OUT:-$root/target/bench}/peers
fragment=${BENCH_FRAGMENT:-$out/fragment.json}
mkdir -p "$out"
kubectl() { "$ZS_BIN/kubectl" --kubeconfig "$ZS_KUBECONFIG" "$@"; }
cache="${ZEROSCALE_CACHE:-$HOME/.cache/zeroscale}/peers/keda-${KEDA_VERSION}_http-add-on-${HTTP_ADDON_VERSION}"

skip() {
  log "peers: skipped: $1"
  python3 - "$fragment" "$1" <<'PY'
import json, sys
json.dump({"peers": {"skipped": sys.argv[2]}}, open(sys.argv[1], "w"), indent=2)
PY
  exit 0
}
case ${BENCH_PEERS:-} in
  1) ;;
  0) skip "BENCH_PEERS=0" ;;
  *) [[ -f $cache/bin/.stamp ]] || skip "the peer's images are not built (BENCH_PEERS=1 builds them: ~15 min once)" ;;
esac
bash e2e/cluster/status.sh --check || skip "the local cluster is not running (make cluster-up)"

# --- builds, before the lock -------------------------------------------------------------------------
bin=$(bash bench/peers/build.sh | tail -1)
oha=$(bench_oha)
# BENCH_PEERS_SKIP_IMAGES=1: Zeroscale runs from the images already in the registry (scripts/install.sh
# still builds them when missing) instead of this checkout's. Those are built here, before the lock, so
# pushing them inside the lock compiles nothing.
if [[ ${BENCH_PEERS_SKIP_IMAGES:-} != 1 ]]; then
  bash scripts/images.sh --no-push operator activator autoscaler echo busybox >&2
fi

lock=/tmp/zeroscale-cluster.lock
exec 9>"$lock"
log "peers: waiting for $lock"
flock -w 1800 9 || die "peers: cannot take $lock"
zs_ns=peers-zs
keda_ns=peers-keda
installed=0
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local status=$?
  kubectl delete namespace "$zs_ns" "$keda_ns" --ignore-not-found --wait --timeout 240s >/dev/null || status=1
  [[ $installed == 0 ]] || bash bench/peers/install.sh down || status=1
  bash scripts/uninstall.sh || status=1
  flock -u 9
  exit "$status"
}
trap cleanup EXIT

# Zeroscale: this checkout's images, installed as the coldstart section does.
[[ ${BENCH_PEERS_SKIP_IMAGES:-} == 1 ]] || bash scripts/images.sh operator activator autoscaler echo busybox >&2
bash scripts/install.sh >&2
# shellcheck disable=SC1091
source "$ZS_STATE/activator.env"
echo_ref="localhost:5000/zeroscale/echo@$("$ZS_BIN/crane" digest localhost:5000/zeroscale/echo:0.1.0)"
busybox_ref="localhost:5000/zeroscale/busybox@$("$ZS_BIN/crane" digest localhost:5000/zeroscale/busybox:0.1.0)"

# What is cluster-scoped (and the kube-system RBAC KEDA adds to) before the peer is installed.
snapshot() {
  kubectl get crd,clusterrole,clusterrolebinding,apiservice,namespace,validatingwebhookconfiguration,mutatingwebhookconfiguration \
    -o name | sort
  kubectl get role,rolebinding -n kube-system -o name | sort
}
snapshot >"$out/cluster-before.txt"

# The peer: images pushed, installed in namespace keda.
bash bench/peers/images.sh "$bin" >"$out/images.txt"
installed=1
bash bench/peers/install.sh up "$out/images.txt"
interceptor=$(kubectl get svc -n keda keda-http-add-on-interceptor-proxy -o jsonpath='{.spec.clusterIP}')

for ns in "$zs_ns" "$keda_ns"; do kubectl create namespace "$ns" >/dev/null; done
ulimit -n 65536 2>/dev/null || true
crictl="[\"$ZS_BIN/crictl\", \"--runtime-endpoint\", \"unix://$ZS_CONTAINERD_SOCK\"]"
system() { # name url namespace datapath controlplane
  cat <<JSON
{"name": "$1", "url": "$2", "namespace": "$3", "domain": "example.com", "image": "$echo_ref",
 "park_image": "$busybox_ref", "oha": "$oha",
 "kubectl": ["$ZS_BIN/kubectl", "--kubeconfig", "$ZS_KUBECONFIG"],
 "cold_starts": ${BENCH_COLD_STARTS:-20}, "burst": ${BENCH_BURST:-1000}, "parked": ${BENCH_PARKED:-10000},
 "rounds": ${BENCH_PEERS_ROUNDS:-5}, "duration": "${BENCH_PEERS_DURATION:-3s}",
 "rss_groups": {"crictl": $crictl, "datapath": $4, "controlplane": $5}}
JSON
}
system zeroscale "$ZEROSCALE_ACTIVATOR" "$zs_ns" '[["zeroscale-system", "activator"]]' \
  '[["zeroscale-system", "operator"], ["zeroscale-system", "autoscaler"]]' >"$out/zeroscale.json"
system keda "http://$interceptor:8080" "$keda_ns" '[["keda", "interceptor"]]' \
  '[["keda", "keda-operator"], ["keda", "keda-metrics-apiserver"], ["keda", "operator"], ["keda", "scaler"]]' \
  >"$out/keda.json"
phases=${BENCH_PEERS_PHASES:-memory warm cold burst}
status=0
: >"$out/loadavg.txt"
for phase in $phases; do
  for s in zeroscale keda; do
    # shellcheck disable=SC2086
    python3 bench/peers/drive.py "$out/$s.json" "$out" "$phase" || status=1
    cut -d' ' -f1 /proc/loadavg >>"$out/loadavg.txt"
  done
done
kubectl get pods -n keda -o wide >"$out/keda-pods.txt" 2>&1 || true

python3 - "$out" "$fragment" "$KEDA_VERSION" "$HTTP_ADDON_VERSION" "$echo_ref" <<'PY'
import json, pathlib, statistics, sys
out, fragment = pathlib.Path(sys.argv[1]), sys.argv[2]
def load(system):
    figures = {}
    for f in sorted(out.glob(f"{system}-*.json")):
        if f.stem.split("-", 1)[1] in ("warm", "cold", "burst", "memory"):
            figures.update(json.loads(f.read_text()))
    return figures
ours, theirs = load("zeroscale"), load("keda")
peers = {}
for key in sorted(set(ours) | set(theirs)):
    o, t = ours.get(key), theirs.get(key)
    ratio = round(o / t, 3) if isinstance(o, (int, float)) and isinstance(t, (int, float)) and t else None
    peers[key] = {"ours": o, "theirs": t, "ratio": ratio}
loads = [float(x) for x in (out / "loadavg.txt").read_text().split()]
peers["versions"] = {"keda": sys.argv[3], "http_add_on": sys.argv[4], "function_image": sys.argv[5]}
peers["load_avg_1m_median"] = round(statistics.median(loads), 2) if loads else None
peers["load_avg_1m_max"] = max(loads) if loads else None
json.dump({"peers": peers}, open(fragment, "w"), indent=2, sort_keys=True)
print(json.dumps(peers, indent=2, sort_keys=True))
PY

# Removal, checked: every cluster-scoped object is as before the peer's install.
kubectl delete namespace "$zs_ns" "$keda_ns" --ignore-not-found --wait --timeout 240s >/dev/null
bash bench/peers/install.sh down
installed=0
snapshot | grep -v -x -e "namespace/$zs_ns" -e "namespace/$keda_ns" >"$out/cluster-after.txt" || true
grep -v -x -e "namespace/$zs_ns" -e "namespace/$keda_ns" "$out/cluster-before.txt" >"$out/cluster-before-cmp.txt" || true
if ! diff "$out/cluster-before-cmp.txt" "$out/cluster-after.txt" >"$out/cluster-diff.txt"; then
  log "peers: the cluster differs from before the peer's install:"
  cat "$out/cluster-diff.txt" >&2
  status=1
else
  log "peers: the cluster's cluster-scoped objects are as before the peer's install"
fi
exit "$status"
