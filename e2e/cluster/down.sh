#!/usr/bin/env bash
# Stops the local cluster and removes everything it created: processes (also ones whose pid files were
# lost in a crash), pod network namespaces and their veths, the bridge, mounts and the cluster state.
# Logs stay in .zeroscale/logs for debugging. Safe to run any number of times.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=e2e/cluster/lib.sh
source "$here/lib.sh"
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
cluster_pids() {
  local file pid
  # One grep over every command line (cheap), then a closer look at the few that match.
  for file in $(grep -lsF -- "$match" /proc/[0-9]*/cmdline 2>/dev/null || true); do
    pid=${file#/proc/}
    pid=${pid%/cmdline}
    [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
    # Only our own daemons, never an editor or `tail` that happens to have a path in there.
    case "$(basename "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" | sed 's/ (deleted)$//')" in
      etcd | kube-apiserver | kube-controller-manager | kube-scheduler | zeroscale-node-agent) echo "$pid" ;;
    esac
  done
}

pod_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^$ZS_NETNS_PREFIX" || true; }

# stop <pids...>: SIGTERM, up to 1 s to exit, then SIGKILL. (The cluster's state is thrown away, so
# there is nothing a longer graceful shutdown would save.)
stop() {
  local pids=("$@") pid i
  [[ ${#pids[@]} -gt 0 ]] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < 10; i++)); do
    local alive=0
    for pid in "${pids[@]}"; do pid_alive "$pid" && alive=1; done
    [[ $alive == 0 ]] && return 0
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

# 1. The node agent first, so it cannot start pods again while we clean up.
agent_pids=()
for pid in $(cluster_pids); do
  [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == *zeroscale-node-agent* ]] && agent_pids+=("$pid")
done
stop "${agent_pids[@]}"
for pid in $(cluster_pids); do
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)
  [[ $cmd == *"$ZS_STATE/"* ]] || log "stopping a local cluster of another checkout: $cmd"
done

# 2. Pod processes: everything inside our pod network namespaces.
for ns in $(pod_netns); do
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  # shellcheck disable=SC2086
  [[ -n $pids ]] && kill -KILL $pids 2>/dev/null || true
done

# 3. The control plane (and anything the first pass missed); its state is deleted below anyway.
for pid in $(cluster_pids); do kill -KILL "$pid" 2>/dev/null || true; done
for ((i = 0; i < 50; i++)); do
  [[ -z "$(cluster_pids)" ]] && break
  sleep 0.1
done

# 4. Network: namespaces (their veth ends go with them), stray host veths, the bridge.
for ns in $(pod_netns); do
  for ((i = 0; i < 20; i++)); do
    [[ -z "$(ip netns pids "$ns" 2>/dev/null)" ]] && break
    sleep 0.1
  done
  ip netns delete "$ns" 2>/dev/null || true
done
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^zsv' || true); do
  ip link delete "$link" 2>/dev/null || true
done
ip link show "$ZS_BRIDGE" >/dev/null 2>&1 && ip link delete "$ZS_BRIDGE"

# 5. Mounts under the state directory (none are expected; pods' mounts live in their own namespaces).
{ grep -F " $ZS_STATE/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" || true; done

# 6. State, but not the logs nor the PKI (up.sh reuses it while it is valid).
rm -rf "$ZS_STATE/etcd" "$ZS_RUN" "$ZS_STATE/pods" "$ZS_KUBECONFIG" "$ZS_STATE/env"

left=$(cluster_pids | wc -l)
[[ $left == 0 ]] || die "$left cluster processes survived SIGKILL"
say "cluster down in $((($(date +%s%N) - start) / 1000000)) ms"
