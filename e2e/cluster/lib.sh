#!/usr/bin/env bash
# Shared settings and helpers for the local-cluster scripts (sourced, not run).

ZS_CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ZS_ROOT="$(cd "$ZS_CLUSTER_DIR/../.." && pwd)"
# The Kubernetes version is whatever k8s/go.mod pins (the only place to change it).
ZS_K8S_VERSION="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$ZS_CLUSTER_DIR/k8s/go.mod")"
ZEROSCALE_CACHE="${ZEROSCALE_CACHE:-$HOME/.cache/zeroscale}"
ZS_BIN="$ZEROSCALE_CACHE/k8s-$ZS_K8S_VERSION/bin"
# Everything the running cluster owns lives under the repository's .zeroscale/ (gitignored).
ZS_STATE="$ZS_ROOT/.zeroscale"
ZS_PKI="$ZS_STATE/pki"
ZS_RUN="$ZS_STATE/run"
ZS_LOGS="$ZS_STATE/logs"
ZS_KUBECONFIG="$ZS_STATE/kubeconfig"

# Networking: the CNI bridge plugin puts pods on our own bridge; the node gets 10.244.0.0/24 from the
# controller-manager (the first /24 of the cluster CIDR, always, on a one-node cluster). The bridge's
# address is the node IP: the API server, the kubelet and the registry's clients reach the host there.
ZS_BRIDGE="zs0"
ZS_BRIDGE_IP="10.244.0.1"
ZS_CLUSTER_CIDR="10.244.0.0/16"
ZS_NODE_POD_CIDR="10.244.0.0/24"
# Kept for scripts that predate the real node: the cluster-wide pod range.
ZS_POD_CIDR="$ZS_CLUSTER_CIDR"
ZS_SERVICE_CIDR="10.96.0.0/16"
ZS_DNS_IP="10.96.0.10"
ZS_API_PORT=6443
ZS_ETCD_PORT=2379
ZS_NODE_NAME="zeroscale-node"
# The node's registry (distribution/distribution) and the images the node itself needs.
ZS_REGISTRY="127.0.0.1:5000"
ZEROSCALE_REGISTRY="${ZEROSCALE_REGISTRY:-localhost:5000}"
ZS_PAUSE_IMAGE="localhost:5000/zeroscale/pause:3.10"
# Node state. containerd's shim sockets must sit in a directory of at most 38 characters, which a
# checkout's path cannot promise, so they go to a fixed directory of the project's own under /run.
ZS_CONTAINERD="$ZS_STATE/containerd"
ZS_CONTAINERD_SOCK="$ZS_STATE/run/containerd.sock"
ZS_SHIM_SOCKETS="/run/zeroscale-shims"

ZS_KUBELET_DIR="$ZS_STATE/kubelet"
ZS_CNI_DIR="$ZS_STATE/cni"
ZS_CNI_BIN="/usr/lib/cni"
# The OCI runtime containerd runs: runc built from its pinned module (build.sh); ZS_RUNC names another
# (an A/B of runtimes).
ZS_RUNC="${ZS_RUNC:-$ZS_BIN/runc}"
# Host paths a kubelet or CNI creates whatever it is told (see docs/local-cluster.md); down.sh removes
# the ones that did not exist before the first bring-up.
ZS_HOST_PATHS=(/var/lib/cni /var/log/containers /var/log/pods /var/lib/kubelet /run/containerd "$ZS_SHIM_SOCKETS")
# Sysctls a node component changes: saved before the first bring-up, restored by down.sh.
ZS_SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  net.ipv4.conf.all.route_localnet vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.netfilter.nf_conntrack_max
  net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_close_wait
  net.netfilter.nf_conntrack_tcp_be_liberal)
# The baseline of the host before the first bring-up (sysctls, iptables tables, host paths); kept until
# down.sh has restored it.
ZS_BASELINE="$ZS_STATE/host-baseline"
# Every process the node runs, by executable name (down.sh and check-clean.sh look for them).
ZS_DAEMONS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy registry)

export ZEROSCALE_CACHE

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
# pid_alive <pid>: the process exists and is not a zombie (a killed daemon stays a zombie until init
# reaps it, and `kill -0` still succeeds on it).
pid_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}
# zs_crictl <args...>: crictl on our containerd. Its settings file (written by up.sh, named by
# CRI_CONFIG_FILE in .zeroscale/env) may not exist yet or any more: crictl then needs some file to read,
# or it fails looking for /etc/crictl.yaml.
zs_crictl() {
  local cfg="$ZS_STATE/run/crictl.yaml"
  [[ -f $cfg ]] || cfg=/dev/null
  CRI_CONFIG_FILE=$cfg "$ZS_BIN/crictl" --runtime-endpoint "unix://$ZS_CONTAINERD_SOCK" \
    --image-endpoint "unix://$ZS_CONTAINERD_SOCK" "$@"
}
# zs_lock: one bring-up or tear-down at a time (several people and CI may share a machine). Nested calls
# (up.sh runs down.sh) inherit the lock; daemons must not inherit fd 9 (see `start` in up.sh).
zs_lock() {
  [[ -n ${ZS_LOCK_HELD:-} ]] && return 0
  mkdir -p "$ZS_STATE"
  exec 9>"$ZS_STATE/.lock"
  flock -w 900 9 || die "another cluster-up/cluster-down holds $ZS_STATE/.lock"
  export ZS_LOCK_HELD=1
}
