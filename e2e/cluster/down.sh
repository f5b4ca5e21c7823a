#!/usr/bin/env bash
# Stops the local cluster and removes everything it created: pod sandboxes (so CNI releases their
# addresses and veths), processes (also ones whose pid files were lost in a crash, and container
# processes), mounts, network namespaces, the bridge, iptables rules and chains (v4 and v6), cgroups,
# changed sysctls, the host paths a kubelet or CNI creates regardless of its configuration, and the
# cluster state. Logs, the PKI and the registry's storage stay. Safe to run any number of times.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=e2e/cluster/lib.sh
source "$here/lib.sh"
# shellcheck source=e2e/cluster/host.sh
source "$here/host.sh"
zs_lock
# --quiet: no summary line. --takeover (up.sh): also stop a cluster started from another checkout; the
# bridge, addresses and ports are per machine, so only one local cluster can run at a time.
quiet=0
match="$ZS_STATE/"
for arg in "$@"; do
  case $arg in
    --quiet) quiet=1 ;;
    --takeover) match="/.zeroscale/" ;;
  esac
done
say() { [[ $quiet == 1 ]] || log "$@"; }
start=$(date +%s%N)

# Pids of processes that belong to this cluster: their command line names our state directory.
# cluster_pids [name...]: only those executables (default: every daemon and the runc shims).
cluster_pids() {
  local file pid names=("$@")
  [[ ${#names[@]} -gt 0 ]] || names=("${ZS_DAEMONS[@]}" containerd-shim-runc-v2 zeroscale-node-agent)
  # One grep over every command line (cheap), then a closer look at the few that match.
  for file in $(grep -lsF -- "$match" /proc/[0-9]*/cmdline 2>/dev/null || true); do
    pid=${file#/proc/}
    pid=${pid%/cmdline}
    [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
    # Only our own daemons, never an editor or `tail` that happens to have a path in there.
    local exe
    exe=$(basename "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" | sed 's/ (deleted)$//')
    for name in "${names[@]}"; do [[ $exe == "$name" ]] && echo "$pid"; done
  done
  return 0
}
# Processes in the pods' cgroups (containers), in any hierarchy.
container_pids() {
  local dir
  for dir in $(cgroup_mounts); do
    if [[ -d $dir/kubepods ]]; then find "$dir/kubepods" -name cgroup.procs -exec cat {} + 2>/dev/null || true; fi
  done | sort -u
  return 0
}
cgroup_mounts() { awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/mounts; }

# stop <pids...>: SIGTERM, up to 2 s to exit, then SIGKILL.
stop() {
  local pids=("$@") pid i
  [[ ${#pids[@]} -gt 0 ]] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do
    local alive=0
    for pid in "${pids[@]}"; do pid_alive "$pid" && alive=1; done
    [[ $alive == 0 ]] && return 0
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

# 1. The kubelet (and the old node agent) first, so nothing starts pods again while we clean up.
mapfile -t pids < <(cluster_pids kubelet zeroscale-node-agent)
stop "${pids[@]}"

# 2. Pod sandboxes through containerd while it runs: stopping a sandbox runs CNI DEL (address, veth,
#    portmap rules) and kills its containers.
if [[ -S $ZS_CONTAINERD_SOCK && -n "$(cluster_pids containerd)" && -x $ZS_BIN/crictl ]]; then
  zs_crictl --timeout 10s rmp -a -f >/dev/null 2>&1 || log "crictl rmp failed; cleaning up by hand"
fi

# 3. The other daemons, then the shims, then whatever container process is left (kill, not TERM:
#    their state is thrown away).
for name in kube-proxy containerd registry kube-scheduler kube-controller-manager kube-apiserver etcd; do
  mapfile -t pids < <(cluster_pids "$name")
  stop "${pids[@]}"
done
mapfile -t pids < <(cluster_pids containerd-shim-runc-v2)
[[ ${#pids[@]} -gt 0 ]] && { kill -KILL "${pids[@]}" 2>/dev/null || true; }
for ((i = 0; i < 30; i++)); do
  mapfile -t pids < <(container_pids)
  [[ ${#pids[@]} -eq 0 ]] && break
  kill -KILL "${pids[@]}" 2>/dev/null || true
  sleep 0.1
done
for pid in $(cluster_pids); do
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)
  [[ $cmd == *"$ZS_STATE/"* ]] || log "stopping a local cluster of another checkout: $cmd"
  kill -KILL "$pid" 2>/dev/null || true
done
for ((i = 0; i < 50; i++)); do
  [[ -z "$(cluster_pids)" ]] && break
  sleep 0.1
done

# 4. Mounts under the state directory (the kubelet's rshared root, volumes, overlay root filesystems,
#    network namespaces), deepest first; again while propagation brings more to light.
#    With --takeover also those of another checkout's cluster (its containerd and kubelet state).
mount_re="^($ZS_STATE/|/var/lib/kubelet|/run/netns/cni-|$ZS_SHIM_SOCKETS)"
[[ $match == "$ZS_STATE/" ]] || mount_re="^($ZS_STATE/|/.*/\.zeroscale/(containerd|kubelet)(/|\$)|/var/lib/kubelet|/run/netns/cni-|$ZS_SHIM_SOCKETS)"
for ((pass = 0; pass < 5; pass++)); do
  mapfile -t mounts < <(awk '{print $2}' /proc/mounts | grep -E "$mount_re" | sort -r || true)
  [[ ${#mounts[@]} -eq 0 ]] && break
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
done

# 5. Network: namespaces containerd left in /run/netns, veths on our bridge, the bridge (its route goes
#    with it). Namespaces under the state directory went with their mounts.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-' || true); do
  ip netns delete "$ns" 2>/dev/null || true
done
# A cluster of the old process-based node agent (another checkout): its pods' namespaces and veths.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^zs-' || true); do
  # shellcheck disable=SC2046
  kill -KILL $(ip netns pids "$ns" 2>/dev/null) 2>/dev/null || true
  ip netns delete "$ns" 2>/dev/null || true
done
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^zsv' || true); do
  ip link delete "$link" 2>/dev/null || true
done
for link in $(ip -o link show master "$ZS_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
  ip link delete "$link" 2>/dev/null || true
done
ip link show "$ZS_BRIDGE" >/dev/null 2>&1 && ip link delete "$ZS_BRIDGE"

# 6. iptables (v4 and v6): every rule that jumps to one of our chains, then the chains themselves.
ours='^(KUBE-|CNI-|ZEROSCALE-)'
for cmd in iptables ip6tables; do
  command -v "$cmd-save" >/dev/null || continue
  for table in $("$cmd-save" 2>/dev/null | sed -n 's/^\*//p'); do
    dump=$("$cmd-save" -t "$table" 2>/dev/null)
    # Rules in other chains that lead to ours (the rule text is shell-quoted; xargs splits it alike).
    { grep -E '^-A ' <<<"$dump" || true; } | awk '$2 !~ /^(KUBE-|CNI-|ZEROSCALE-)/' |
      { grep -E -- "-j (KUBE-|CNI-|ZEROSCALE-)" || true; } | sed 's/^-A /-D /' |
      while IFS= read -r rule; do xargs "$cmd" -w -t "$table" <<<"$rule" 2>/dev/null || true; done
    chains=$(sed -n 's/^:\([^ ]*\) .*/\1/p' <<<"$dump" | grep -E "$ours" || true)
    for c in $chains; do "$cmd" -w -t "$table" -F "$c" 2>/dev/null || true; done
    for c in $chains; do "$cmd" -w -t "$table" -X "$c" 2>/dev/null || true; done
  done
done
# Connections to pods and Services are forgotten with them.
if command -v conntrack >/dev/null; then
  conntrack -D -d "$ZS_CLUSTER_CIDR" >/dev/null 2>&1 || true
  conntrack -D -d "$ZS_SERVICE_CIDR" >/dev/null 2>&1 || true
fi

# 7. Cgroups of the pods (cgroupfs driver: /kubepods in every hierarchy, name=systemd included),
#    deepest first.
for dir in $(cgroup_mounts); do
  if [[ -d $dir/kubepods ]]; then find "$dir/kubepods" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
done

# 8. Sysctls, iptables tables and host paths back to how they were.
restore_baseline

# 9. State, but not the logs nor the PKI (up.sh reuses it while it is valid).
rm -rf "$ZS_STATE/etcd" "$ZS_RUN" "$ZS_STATE/pods" "$ZS_CONTAINERD" "$ZS_KUBELET_DIR" "$ZS_CNI_DIR" \
  "$ZS_STATE/pod-logs" "$ZS_KUBECONFIG" "$ZS_STATE/env"

left=$(cluster_pids | wc -l)
[[ $left == 0 ]] || die "$left cluster processes survived SIGKILL"
say "cluster down in $((($(date +%s%N) - start) / 1000000)) ms"
