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

# Networking: our own bridge; pods get addresses from the node's pod CIDR. ClusterIPs are allocated
# from the service CIDR but not routed (there is no kube-proxy).
ZS_BRIDGE="zs0"
ZS_BRIDGE_IP="10.244.0.1"
ZS_POD_CIDR="10.244.0.0/16"
ZS_SERVICE_CIDR="10.96.0.0/16"
ZS_API_PORT=6443
ZS_ETCD_PORT=2379
ZS_NODE_NAME="zeroscale-node"
# Pod network namespaces are named with this prefix so tear-down can find every one of them.
ZS_NETNS_PREFIX="zs-"

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
# zs_lock: one bring-up or tear-down at a time (several people and CI may share a machine). Nested calls
# (up.sh runs down.sh) inherit the lock; daemons must not inherit fd 9 (see `start` in up.sh).
zs_lock() {
  [[ -n ${ZS_LOCK_HELD:-} ]] && return 0
  mkdir -p "$ZS_STATE"
  exec 9>"$ZS_STATE/.lock"
  flock -w 900 9 || die "another cluster-up/cluster-down holds $ZS_STATE/.lock"
  export ZS_LOCK_HELD=1
}
