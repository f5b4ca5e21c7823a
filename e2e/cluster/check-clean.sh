#!/usr/bin/env bash
# Fails (listing what is left) unless no process, pod network namespace, veth, bridge or mount of the local
# cluster remains. scripts/e2e.sh runs it after `make cluster-down`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=e2e/cluster/lib.sh
source "$here/lib.sh"

left=()
for pid in $(ls /proc | grep -E '^[0-9]+$'); do
  [[ $pid == "$$" ]] && continue
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)
  case "$(basename "${exe% (deleted)}")" in
    etcd | kube-apiserver | kube-controller-manager | kube-scheduler | zeroscale-node-agent)
      [[ $cmd == *"$ZS_STATE/"* ]] && left+=("process $pid: $cmd")
      ;;
  esac
done
# Pod processes live in our network namespaces; a namespace left over is a failure in itself.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$ZS_NETNS_PREFIX" || true); do
  left+=("netns $ns (pids: $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' '))")
done
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^(zsv|$ZS_BRIDGE\$)" || true); do
  left+=("link $link")
done
# ClusterIPs live on the bridge (gone with it) and the agent's listeners die with it; check both anyway.
svc_prefix="${ZS_SERVICE_CIDR%.*.*/*}."
while read -r addr; do left+=("service address $addr"); done < <(ip -o -4 addr show 2>/dev/null | awk '{print $4}' | grep "^${svc_prefix//./\\.}" || true)
while read -r l; do left+=("service listener $l"); done < <(ss -Hltn 2>/dev/null | awk '{print $4}' | grep "^${svc_prefix//./\\.}" || true)
while read -r mount; do left+=("mount $mount"); done < <(grep -F " $ZS_STATE/" /proc/mounts | awk '{print $2}' || true)
# Container processes whose log files are ours (their stdout is a file under .zeroscale/logs).
for fd in /proc/[0-9]*/fd/1; do
  target=$(readlink "$fd" 2>/dev/null || true)
  [[ $target == "$ZS_LOGS/"*_*_*.log ]] && left+=("pod process ${fd#/proc/} → $target")
done

if [[ ${#left[@]} -gt 0 ]]; then
  log "local cluster not clean after cluster-down:"
  printf '  %s\n' "${left[@]}" >&2
  exit 1
fi
log "clean: no cluster process, pod process, netns, veth, bridge or mount left"
