#!/usr/bin/env bash
# Brings the local cluster up: a real one-node Kubernetes. Builds the pinned binaries if needed, creates
# the bridge, the PKI and the kubeconfigs, starts the registry (and pushes the node's pause and coredns
# images to it), etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd, the kubelet
# and kube-proxy, deploys CoreDNS, and waits until the node is Ready, CoreDNS answers and the default
# ServiceAccount exists. Idempotent: a healthy cluster started from the same scripts and binaries is left
# alone; anything else (half up, crashed, killed, changed) is torn down and started afresh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=e2e/cluster/lib.sh
source "$here/lib.sh"
# shellcheck source=e2e/cluster/pki.sh
source "$here/pki.sh"
# shellcheck source=e2e/cluster/node.sh
source "$here/node.sh"
# shellcheck source=e2e/cluster/host.sh
source "$here/host.sh"
# shellcheck source=e2e/cluster/node-images.sh
source "$here/node-images.sh"
zs_lock

[[ $(id -u) == 0 ]] || die "the local cluster needs root (containers, network namespaces, bridge); run as root"
for tool in ip openssl curl setsid base64 iptables ip6tables conntrack tar gcc; do
  command -v "$tool" >/dev/null || die "$tool is missing; run scripts/install-deps.sh"
done
for plugin in bridge host-local loopback portmap; do
  [[ -x $ZS_CNI_BIN/$plugin ]] || die "CNI plugin $ZS_CNI_BIN/$plugin is missing; run scripts/install-deps.sh"
done

t0=$(date +%s%N)
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

bash "$here/build.sh"
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
coredns_ready() {
  [[ "$(kubectl -n kube-system get deploy coredns -o jsonpath='{.status.readyReplicas}' 2>/dev/null)" == 1 ]]
}

# What the running cluster was started from: the scripts that configure it and the binaries' stamps. A
# healthy cluster started from anything else is restarted, so a changed setting always takes effect.
config_hash() {
  cat "$here"/{lib,pki,node,host,node-images,up}.sh "$here/manifests/coredns.yaml" "$ZS_BIN"/.stamp-* 2>/dev/null |
    sha256sum | cut -d' ' -f1
}
if bash "$here/status.sh" --check; then
  if [[ ! -f $ZS_RUN/config.hash ]]; then
    # Started by an up.sh that did not record it: take it as current rather than disturb its users.
    config_hash >"$ZS_RUN/config.hash"
  fi
  if [[ "$(cat "$ZS_RUN/config.hash")" == "$(config_hash)" ]]; then
    # The images may have been dropped from the registry's cache (or the pause program rebuilt).
    push_node_images
    log "cluster already up (KUBECONFIG=$ZS_KUBECONFIG)"
    exit 0
  fi
  log "the cluster's scripts or binaries changed since it started: restarting it"
fi

bash "$here/down.sh" --quiet --takeover
# Fresh logs for a fresh cluster; the previous run's are kept one generation back.
rm -rf "$ZS_STATE/logs.prev"
if [[ -d $ZS_LOGS ]]; then mv "$ZS_LOGS" "$ZS_STATE/logs.prev"; fi
mkdir -p "$ZS_RUN" "$ZS_LOGS"
ln -sfn "$ZS_BIN" "$ZS_STATE/bin"
save_baseline

# Network. The bridge exists before any pod so the API server can bind to the node address; the CNI
# bridge plugin finds it with its gateway address already in place. The service range is routed to the
# bridge, so a ClusterIP without endpoints never leaves the machine (kube-proxy rewrites the rest).
# Pods reach the host and each other, and nothing beyond: forwarding from the bridge elsewhere is
# rejected (the CNI plugin turns on net.ipv4.ip_forward).
ip link add "$ZS_BRIDGE" type bridge
ip addr add "$ZS_BRIDGE_IP/${ZS_NODE_POD_CIDR#*/}" dev "$ZS_BRIDGE"
ip link set "$ZS_BRIDGE" up
ip route add "$ZS_SERVICE_CIDR" dev "$ZS_BRIDGE" src "$ZS_BRIDGE_IP"
iptables -N ZEROSCALE-ISOLATE
iptables -A ZEROSCALE-ISOLATE -i "$ZS_BRIDGE" ! -o "$ZS_BRIDGE" -j REJECT
iptables -I FORWARD -j ZEROSCALE-ISOLATE

make_pki
t_pki=$(date +%s%N)

write_registry_config
start registry "$ZS_BIN/registry" serve "$ZS_RUN/registry.yaml"
start etcd "$ZS_BIN/etcd" --name zeroscale --data-dir "$ZS_STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ZS_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ZS_ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$((ZS_ETCD_PORT + 1))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((ZS_ETCD_PORT + 1))" \
  --initial-cluster "zeroscale=http://127.0.0.1:$((ZS_ETCD_PORT + 1))" \
  --unsafe-no-fsync --log-level warn
wait_until "the registry" 30 curl -sf "http://$ZS_REGISTRY/v2/"
push_node_images
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

# containerd needs nothing from the API server: start it meanwhile.
write_containerd_config
write_cni_config
mkdir -p "$ZS_CONTAINERD/tmp"
start containerd "$ZS_BIN/containerd" --config "$ZS_CONTAINERD/config.toml"

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
  --service-cluster-ip-range "$ZS_SERVICE_CIDR" --controllers '*' \
  --allocate-node-cidrs --cluster-cidr "$ZS_CLUSTER_CIDR" --node-cidr-mask-size "${ZS_NODE_POD_CIDR#*/}"
start kube-scheduler "$ZS_BIN/kube-scheduler" \
  --kubeconfig "$ZS_RUN/scheduler.kubeconfig" \
  --authentication-kubeconfig "$ZS_RUN/scheduler.kubeconfig" \
  --authorization-kubeconfig "$ZS_RUN/scheduler.kubeconfig" \
  --secure-port 0 --leader-elect=false

wait_until containerd 30 zs_crictl info
write_kubelet_config
start kubelet "$ZS_BIN/kubelet" --config "$ZS_KUBELET_DIR/config.yaml" \
  --kubeconfig "$ZS_RUN/node.kubeconfig" --root-dir "$ZS_KUBELET_DIR" --cert-dir "$ZS_KUBELET_DIR/pki" \
  --hostname-override "$ZS_NODE_NAME" --node-ip "$ZS_BRIDGE_IP" --v 1
write_kube_proxy_config
start kube-proxy "$ZS_BIN/kube-proxy" --config "$ZS_RUN/kube-proxy.yaml" --v 1

node_ready() {
  [[ "$(kubectl get node "$ZS_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
wait_until "node $ZS_NODE_NAME to be Ready" 90 node_ready
t_node=$(date +%s%N)
# The CNI configuration assumes the node's pod CIDR; the controller-manager gives the first node the
# first /24 of the cluster CIDR (moments after the node registers). Say so if that ever changes.
node_cidr() { [[ -n "$(kubectl get node "$ZS_NODE_NAME" -o jsonpath='{.spec.podCIDR}' 2>/dev/null)" ]]; }
wait_until "the node's pod CIDR" 30 node_cidr
pod_cidr=$(kubectl get node "$ZS_NODE_NAME" -o jsonpath='{.spec.podCIDR}')
[[ $pod_cidr == "$ZS_NODE_POD_CIDR" ]] || die "node pod CIDR is $pod_cidr, the CNI configuration assumes $ZS_NODE_POD_CIDR"

sed -e "s|@DNS_IP@|$ZS_DNS_IP|" -e "s|@IMAGE@|$ZEROSCALE_REGISTRY/zeroscale/coredns:$(coredns_version)|" \
  "$here/manifests/coredns.yaml" | kubectl apply --server-side --field-manager zeroscale-cluster -f - >/dev/null
wait_until "CoreDNS to be Ready (kubectl -n kube-system describe pod -l k8s-app=kube-dns)" 120 coredns_ready
wait_until "the default ServiceAccount" 60 kubectl get serviceaccount default -n default
t_ready=$(date +%s%N)

config_hash >"$ZS_RUN/config.hash"
# crictl's settings (without them it warns that /etc/crictl.yaml is missing on every call).
cat >"$ZS_RUN/crictl.yaml" <<EOF
runtime-endpoint: unix://$ZS_CONTAINERD_SOCK
image-endpoint: unix://$ZS_CONTAINERD_SOCK
timeout: 10
EOF
cat >"$ZS_STATE/env" <<EOF
# Source this file to use the local cluster: . .zeroscale/env
export KUBECONFIG="$ZS_KUBECONFIG"
export PATH="$ZS_BIN:\$PATH"
export CONTAINER_RUNTIME_ENDPOINT="unix://$ZS_CONTAINERD_SOCK"
export CRI_CONFIG_FILE="$ZS_RUN/crictl.yaml"
export ZEROSCALE_REGISTRY="$ZEROSCALE_REGISTRY"
EOF

log "cluster up in $(ms_since "$t0") ms (builds $(((t_built - t0) / 1000000)) ms, cleanup+pki $(((t_pki - t_built) / 1000000)) ms," \
  "registry+images+etcd $(((t_etcd - t_pki) / 1000000)) ms, apiserver $(((t_api - t_etcd) / 1000000)) ms," \
  "node ready $(((t_node - t_api) / 1000000)) ms, coredns $(((t_ready - t_node) / 1000000)) ms)"
log "use it: . .zeroscale/env && kubectl get nodes"
