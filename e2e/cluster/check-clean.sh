#!/usr/bin/env bash
# Fails, naming what is left, unless the local cluster left nothing behind: no process (daemons, runc
# shims, container processes), no mount, no cgroup (every hierarchy, name=systemd included), no network
# namespace, no iptables rule or chain (v4 and v6), no interface, no route, and the sysctls, iptables
# tables and host paths as they were before the cluster. scripts/e2e.sh runs it after `make cluster-down`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=e2e/cluster/lib.sh
source "$here/lib.sh"
# shellcheck source=e2e/cluster/host.sh
source "$here/host.sh"

left=()
# Processes: our daemons and shims (any checkout's: only one cluster can run), the old node agent.
for dir in /proc/[0-9]*; do
  pid=${dir#/proc/}
  [[ $pid == "$$" ]] && continue
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)
  case "$(basename "${exe% (deleted)}")" in
    etcd | kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kube-proxy | containerd | \
      containerd-shim-runc-v2 | registry | zeroscale-node-agent)
      [[ $cmd == *"/.zeroscale/"* ]] && left+=("process $pid: $cmd")
      ;;
    coredns | pause) left+=("process $pid: $cmd") ;;
  esac
done
# Cgroups of the pods, and processes still in them (each is in every hierarchy: name it once).
cgroups=()
while read -r dir; do
  [[ -d $dir/kubepods ]] || continue
  left+=("cgroup $dir/kubepods ($(find "$dir/kubepods" -type d | wc -l) directories)")
  cgroups+=("$dir/kubepods")
done < <(awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/mounts)
if [[ ${#cgroups[@]} -gt 0 ]]; then
  for pid in $(find "${cgroups[@]}" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un); do
    left+=("container process $pid: $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)")
  done
fi
# Mounts: the state directory (kubelet root, volumes, overlays, network namespaces) and the host paths.
while read -r mount; do left+=("mount $mount"); done < <(awk '{print $2}' /proc/mounts |
  grep -E "^($ZS_STATE/|$ZS_STATE\$|/var/lib/kubelet|/run/netns/cni-|/run/containerd|$ZS_SHIM_SOCKETS)" || true)
while read -r mount; do left+=("network namespace mount $mount"); done < <(awk '$3 == "nsfs" {print $2}' /proc/mounts)
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^(cni|zs)-' || true); do left+=("netns $ns"); done
# Interfaces: the bridge, veths (CNI's and the node agent's), routes to the cluster's ranges.
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^(veth|zsv|$ZS_BRIDGE\$)" || true); do
  left+=("link $link")
done
while read -r route; do left+=("route $route"); done < <(ip route show 2>/dev/null | grep -E "^(${ZS_SERVICE_CIDR%%/*}|${ZS_CLUSTER_CIDR%.*.*/*}\.)" || true)
# iptables, v4 and v6: chains of kube-proxy, the kubelet, CNI and ours, and rules naming our ranges.
for cmd in iptables-save ip6tables-save; do
  command -v "$cmd" >/dev/null || continue
  while read -r line; do left+=("$cmd: $line"); done < <("$cmd" 2>/dev/null |
    grep -E "^:(KUBE-|CNI-|ZEROSCALE-)|^-A .*(KUBE-|CNI-|ZEROSCALE-|$ZS_BRIDGE|${ZS_CLUSTER_CIDR%.*.*/*}\.|${ZS_SERVICE_CIDR%.*.*/*}\.)" || true)
done
# Sysctls, tables and host paths against the baseline taken before the first bring-up.
base="$ZS_BASELINE.restored"
[[ -d $ZS_BASELINE ]] && { left+=("host baseline $ZS_BASELINE not restored (cluster-down did not finish)"); base="$ZS_BASELINE"; }
while read -r line; do left+=("$line"); done < <(baseline_drift "$base")
# State that cluster-down removes.
for path in "$ZS_RUN" "$ZS_CONTAINERD" "$ZS_KUBELET_DIR" "$ZS_CNI_DIR" "$ZS_STATE/etcd"; do
  [[ -e $path ]] && left+=("state $path")
done

if [[ ${#left[@]} -gt 0 ]]; then
  log "local cluster not clean after cluster-down:"
  printf '  %s\n' "${left[@]}" >&2
  exit 1
fi
log "clean: no cluster process, container, mount, cgroup, netns, interface, route or iptables chain left; sysctls restored"
