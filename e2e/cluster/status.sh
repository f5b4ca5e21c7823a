#!/usr/bin/env bash
# Shows what runs in the local cluster. With --check: prints nothing and exits 0 only when every daemon
# runs, the API server is ready, the node is Ready and CoreDNS is Ready (up.sh uses it to leave a healthy
# cluster alone).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=e2e/cluster/lib.sh
source "$here/lib.sh"
check=0
[[ ${1:-} == --check ]] && check=1

healthy=1
for c in "${ZS_DAEMONS[@]}"; do
  pid=$(cat "$ZS_RUN/$c.pid" 2>/dev/null || true)
  if [[ -n $pid ]] && pid_alive "$pid"; then
    state="running (pid $pid)"
  else
    state="not running"
    healthy=0
  fi
  [[ $check == 1 ]] || printf '%-24s %s\n' "$c" "$state"
done

kubectl() { "$ZS_BIN/kubectl" --kubeconfig "$ZS_KUBECONFIG" "$@"; }
api="https://$ZS_BRIDGE_IP:$ZS_API_PORT"
if [[ -f $ZS_KUBECONFIG ]] && curl -sf --max-time 2 --cacert "$ZS_PKI/ca.crt" --cert "$ZS_PKI/admin.crt" \
  --key "$ZS_PKI/admin.key" "$api/readyz" >/dev/null 2>&1; then
  ready=$(kubectl get node "$ZS_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
  [[ $ready == True ]] || healthy=0
  dns=$(kubectl -n kube-system get deploy coredns -o jsonpath='{.status.readyReplicas}' 2>/dev/null || true)
  [[ $dns == 1 ]] || healthy=0
else
  healthy=0
fi
ip link show "$ZS_BRIDGE" >/dev/null 2>&1 || healthy=0
curl -sf --max-time 2 "http://$ZS_REGISTRY/v2/" >/dev/null 2>&1 || healthy=0

if [[ $check == 1 ]]; then
  [[ $healthy == 1 ]]
  exit
fi
if [[ $healthy == 1 ]]; then
  echo "cluster: up   KUBECONFIG=$ZS_KUBECONFIG (or: . .zeroscale/env)   registry: $ZEROSCALE_REGISTRY"
  kubectl get nodes -o wide
  echo
  kubectl get pods -A -o wide
  echo
  zs_crictl ps 2>/dev/null || true
else
  echo "cluster: not (fully) up; logs in $ZS_LOGS/; \`make cluster-up\` restarts it"
fi
