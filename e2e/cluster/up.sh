#!/usr/bin/env bash
# Brings the local cluster up: builds the pinned control plane if needed, creates the bridge, the PKI and
# the kubeconfigs, starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the node
# agent, and waits until the node is Ready and the default ServiceAccount exists. Idempotent: a healthy
# cluster is left alone; anything else (half up, crashed, killed) is torn down and started afresh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=e2e/cluster/lib.sh
source "$here/lib.sh"
# shellcheck source=e2e/cluster/pki.sh
source "$here/pki.sh"
zs_lock

[[ $(id -u) == 0 ]] || die "the local cluster needs root (network namespaces, bridge); run as root"
for tool in ip openssl curl setsid base64; do
  command -v "$tool" >/dev/null || die "$tool is missing; run scripts/install-deps.sh"
done

t0=$(date +%s%N)
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

bash "$here/build.sh"
target_dir="${CARGO_TARGET_DIR:-$ZS_ROOT/target}"
[[ $target_dir == /* ]] || target_dir="$ZS_ROOT/$target_dir"
agent="$target_dir/debug/zeroscale-node-agent"
if [[ ! -x $agent || ! -x $target_dir/debug/zeroscale-echo ]]; then
  log "building the node agent and the echo function"
  (cd "$ZS_ROOT" && cargo build -q -p zeroscale-node-agent -p zeroscale-echo)
fi
t_built=$(date +%s%N)

kubectl() { "$ZS_BIN/kubectl" --kubeconfig "$ZS_KUBECONFIG" "$@"; }


# start <name> <command...>: a daemon in its own session (so it outlives this script and the terminal),
# output to .zeroscale/logs/<name>.log, pid in .zeroscale/run/<name>.pid.
start() {
  local name=$1
  shift
  setsid "$@" >>"$ZS_LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$ZS_RUN/$name.pid"
}
# wait_until <what> <seconds> <command...>
wait_until() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "timed out after ${secs}s waiting for $what (see $ZS_LOGS/)"
}

start_agent() {
  start node-agent "$agent" \
    --kubeconfig "$ZS_RUN/node.kubeconfig" --node-name "$ZS_NODE_NAME" --state-dir "$ZS_STATE" \
    --bridge "$ZS_BRIDGE" --bridge-ip "$ZS_BRIDGE_IP" --pod-cidr "$ZS_POD_CIDR" \
    --service-cidr "$ZS_SERVICE_CIDR" --proxy-kubeconfig "$ZS_RUN/proxy.kubeconfig" \
    --netns-prefix "$ZS_NETNS_PREFIX" --bin-dir "$target_dir/debug" \
    --image-map "$here/images.conf" --ca-file "$ZS_PKI/ca.crt" --api-port "$ZS_API_PORT" \
    --tls-cert-file "$ZS_PKI/kubelet.crt" --tls-key-file "$ZS_PKI/kubelet.key"
}

alive() { pid_alive "$(cat "$ZS_RUN/$1.pid" 2>/dev/null || echo none)"; }
node_ready() {
  [[ "$(kubectl get node "$ZS_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# A running control plane is kept (with its objects); only the node agent is (re)started when it died or
# its binary was rebuilt. The new agent cleans up the pods the old one left and starts them again.
if alive etcd && alive kube-apiserver && alive kube-controller-manager && alive kube-scheduler &&
  ip link show "$ZS_BRIDGE" >/dev/null 2>&1 &&
  curl -sf --max-time 2 --cacert "$ZS_PKI/ca.crt" --cert "$ZS_PKI/admin.crt" --key "$ZS_PKI/admin.key" \
    "https://$ZS_BRIDGE_IP:$ZS_API_PORT/readyz" >/dev/null 2>&1; then
  if ! alive node-agent || [[ $agent -nt $ZS_RUN/node-agent.pid ]]; then
    log "(re)starting the node agent"
    kill -TERM "$(cat "$ZS_RUN/node-agent.pid" 2>/dev/null || echo none)" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do alive node-agent || break; sleep 0.1; done
    make_proxy_kubeconfig
    start_agent
  fi
  wait_until "node $ZS_NODE_NAME to be Ready" 60 node_ready
  log "cluster already up (KUBECONFIG=$ZS_KUBECONFIG)"
  exit 0
fi

bash "$here/down.sh" --quiet --takeover
# Fresh logs for a fresh cluster; the previous run's are kept one generation back.
rm -rf "$ZS_STATE/logs.prev"
if [[ -d $ZS_LOGS ]]; then mv "$ZS_LOGS" "$ZS_STATE/logs.prev"; fi
mkdir -p "$ZS_RUN" "$ZS_LOGS" "$ZS_STATE/pods"
ln -sfn "$ZS_BIN" "$ZS_STATE/bin"

# Network: our own bridge only. No default route, forwarding or NAT is set up: pods reach the host
# (API server, and the ClusterIPs the node agent puts on the bridge and proxies) and each other on the
# bridge, and nothing else.
ip link add "$ZS_BRIDGE" type bridge
ip addr add "$ZS_BRIDGE_IP/${ZS_POD_CIDR#*/}" dev "$ZS_BRIDGE"
ip link set "$ZS_BRIDGE" up

make_pki
t_pki=$(date +%s%N)

start etcd "$ZS_BIN/etcd" --name zeroscale --data-dir "$ZS_STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ZS_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ZS_ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$((ZS_ETCD_PORT + 1))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((ZS_ETCD_PORT + 1))" \
  --initial-cluster "zeroscale=http://127.0.0.1:$((ZS_ETCD_PORT + 1))" \
  --unsafe-no-fsync --log-level warn
wait_until etcd 30 curl -sf "http://127.0.0.1:$ZS_ETCD_PORT/health"
t_etcd=$(date +%s%N)

start kube-apiserver "$ZS_BIN/kube-apiserver" \
  --bind-address "$ZS_BRIDGE_IP" --advertise-address "$ZS_BRIDGE_IP" --secure-port "$ZS_API_PORT" \
  --etcd-servers "http://127.0.0.1:$ZS_ETCD_PORT" \
  --client-ca-file "$ZS_PKI/ca.crt" \
  --tls-cert-file "$ZS_PKI/apiserver.crt" --tls-private-key-file "$ZS_PKI/apiserver.key" \
  --kubelet-client-certificate "$ZS_PKI/admin.crt" --kubelet-client-key "$ZS_PKI/admin.key" \
  --kubelet-certificate-authority "$ZS_PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$ZS_PKI/sa.pub" --service-account-signing-key-file "$ZS_PKI/sa.key" \
  --service-cluster-ip-range "$ZS_SERVICE_CIDR" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --allow-privileged=true --profiling=false --event-ttl 1h
wait_until "the API server" 60 curl -sf --cacert "$ZS_PKI/ca.crt" --cert "$ZS_PKI/admin.crt" \
  --key "$ZS_PKI/admin.key" "https://$ZS_BRIDGE_IP:$ZS_API_PORT/readyz"
t_api=$(date +%s%N)

start kube-controller-manager "$ZS_BIN/kube-controller-manager" \
  --kubeconfig "$ZS_RUN/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$ZS_RUN/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$ZS_RUN/controller-manager.kubeconfig" \
  --secure-port 0 --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file "$ZS_PKI/sa.key" --root-ca-file "$ZS_PKI/ca.crt" \
  --cluster-signing-cert-file "$ZS_PKI/ca.crt" --cluster-signing-key-file "$ZS_PKI/ca.key" \
  --service-cluster-ip-range "$ZS_SERVICE_CIDR" --controllers '*'
start kube-scheduler "$ZS_BIN/kube-scheduler" \
  --kubeconfig "$ZS_RUN/scheduler.kubeconfig" \
  --authentication-kubeconfig "$ZS_RUN/scheduler.kubeconfig" \
  --authorization-kubeconfig "$ZS_RUN/scheduler.kubeconfig" \
  --secure-port 0 --leader-elect=false
start_agent

wait_until "node $ZS_NODE_NAME to be Ready" 60 node_ready
wait_until "the default ServiceAccount" 60 kubectl get serviceaccount default -n default
t_ready=$(date +%s%N)

cat >"$ZS_STATE/env" <<EOF
# Source this file to use the local cluster: . .zeroscale/env
export KUBECONFIG="$ZS_KUBECONFIG"
export PATH="$ZS_BIN:\$PATH"
EOF

log "cluster up in $(ms_since "$t0") ms (builds $((($t_built - t0) / 1000000)) ms, cleanup+pki $((($t_pki - t_built) / 1000000)) ms," \
  "etcd $((($t_etcd - t_pki) / 1000000)) ms, apiserver $((($t_api - t_etcd) / 1000000)) ms," \
  "node ready $((($t_ready - t_api) / 1000000)) ms)"
log "use it: . .zeroscale/env && kubectl get nodes"
