#!/usr/bin/env bash
# Configuration of the node's daemons: containerd, CNI, kubelet, kube-proxy, the registry (sourced by
# up.sh after lib.sh). docs/local-cluster.md explains every setting that differs from the defaults.

# containerd 2.x (config version 4, the current one of 2.4).
write_containerd_config() {
  local dir="$ZS_CONTAINERD"
  mkdir -p "$dir/certs.d/localhost:5000" "$dir/certs.d/127.0.0.1:5000"
  local host
  for host in localhost:5000 127.0.0.1:5000; do
    # The node's own registry speaks plain HTTP on loopback.
    cat >"$dir/certs.d/$host/hosts.toml" <<EOF
server = "http://$host"

[host."http://$host"]
  capabilities = ["pull", "resolve", "push"]
  skip_verify = true
EOF
  done
  cat >"$dir/config.toml" <<EOF
# Written by e2e/cluster/up.sh. See docs/local-cluster.md.
version = 4
root = "$dir/root"
state = "$dir/state"
temp = "$dir/tmp"
oom_score = 0
# Nothing from /etc/containerd; no NRI socket under /var/run/nri; no /opt/containerd.
imports = []
disabled_plugins = [
  "io.containerd.nri.v1.nri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.differ.v1.erofs",
  "io.containerd.mount-handler.v1.erofs",
]

[debug]
  level = "warn"

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = "$ZS_CONTAINERD_SOCK"

  [plugins.'io.containerd.server.v1.ttrpc']
    address = "$ZS_CONTAINERD_SOCK.ttrpc"

  # Shim sockets (the default is /run/containerd/s).
  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = "$ZS_SHIM_SOCKETS"

  # kubectl exec/attach/port-forward: the kubelet proxies to this loopback-only stream server.
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"

  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"

    # The pod sandbox image: a static pause program pushed to the node's registry by up.sh, since the
    # registry that serves the usual one cannot be reached.
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "$ZS_PAUSE_IMAGE"

    # localhost:5000 over plain HTTP (hosts.toml).
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = "$dir/certs.d"

  [plugins.'io.containerd.cri.v1.runtime']
    # Root here lacks CAP_SYS_RESOURCE and cannot set a negative oom_score_adj: without this every
    # sandbox fails with "can't get final child's PID from pipe: EOF".
    restrict_oom_score_adj = true
    # Pod network namespaces under containerd's state directory rather than /run/netns.
    netns_mounts_under_state_dir = true
    enable_selinux = false
    disable_apparmor = true
    # No CDI spec directories (/etc/cdi, /var/run/cdi) are watched.
    cdi_spec_dirs = []

    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["$ZS_CNI_BIN"]
      conf_dir = "$ZS_CNI_DIR/net.d"
      max_conf_num = 1

    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        # runc as lib.sh names it (ZS_RUNC); its state under ours; cgroupfs like the kubelet.
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = "$ZS_RUNC"
          Root = "$dir/runc"
          SystemdCgroup = false
EOF
}

# The pod network: the bridge plugin on our bridge (up.sh creates it with the node address first, so
# the API server can bind there before any pod exists), host-local addresses from the node's pod CIDR
# with their own data directory, portmap for hostPort. No IP masquerade: pods reach the host and each
# other, and nothing beyond the machine.
write_cni_config() {
  mkdir -p "$ZS_CNI_DIR/net.d" "$ZS_CNI_DIR/ipam"
  cat >"$ZS_CNI_DIR/net.d/10-zeroscale.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "zeroscale",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$ZS_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$ZS_NODE_POD_CIDR", "gateway": "$ZS_BRIDGE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$ZS_CNI_DIR/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

write_kubelet_config() {
  mkdir -p "$ZS_KUBELET_DIR" "$ZS_STATE/pod-logs"
  cat >"$ZS_KUBELET_DIR/config.yaml" <<EOF
# Written by e2e/cluster/up.sh. See docs/local-cluster.md.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ZS_BRIDGE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $ZS_PKI/kubelet.crt
tlsPrivateKeyFile: $ZS_PKI/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $ZS_PKI/ca.crt}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$ZS_CONTAINERD_SOCK
imageServiceEndpoint: unix://$ZS_CONTAINERD_SOCK
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
clusterDNS: [$ZS_DNS_IP]
clusterDomain: cluster.local
# Pods get only the cluster's resolver; the host's resolv.conf names nothing a pod can reach.
resolvConf: ""
podLogsDir: $ZS_STATE/pod-logs
serializeImagePulls: false
# No eviction for disk space: a test machine's disk fills and empties with other builds, and a disk
# pressure taint (held for evictionPressureTransitionPeriod) stops all scheduling. "0%" turns a signal off.
evictionHard: {memory.available: "100Mi", nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%", imagefs.inodesFree: "0%"}
evictionPressureTransitionPeriod: 30s
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
shutdownGracePeriod: 0s
rotateCertificates: false
serverTLSBootstrap: false
# Status to the API server promptly: tests wait on it.
nodeStatusReportFrequency: 10s
EOF
}

write_kube_proxy_config() {
  cat >"$ZS_RUN/kube-proxy.yaml" <<EOF
# Written by e2e/cluster/up.sh. See docs/local-cluster.md.
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $ZS_RUN/proxy.kubeconfig}
hostnameOverride: $ZS_NODE_NAME
mode: iptables
clusterCIDR: $ZS_CLUSTER_CIDR
bindAddress: $ZS_BRIDGE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# NodePorts on the node address only, not on every address of the host.
nodePortAddresses: [primary]
iptables:
  # The default 1 s adds up to a second to every scale from zero through a ClusterIP.
  minSyncPeriod: 100ms
  syncPeriod: 30s
  # Otherwise kube-proxy sets net.ipv4.conf.all.route_localnet=1 on the host.
  localhostNodePorts: false
# Zero: leave the host's conntrack sysctls as they are.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
EOF
}

write_registry_config() {
  mkdir -p "$ZEROSCALE_CACHE/registry"
  cat >"$ZS_RUN/registry.yaml" <<EOF
version: 0.1
log:
  level: warn
  accesslog: {disabled: true}
storage:
  filesystem: {rootdirectory: $ZEROSCALE_CACHE/registry}
  delete: {enabled: true}
  redirect: {disable: true}
http:
  addr: $ZS_REGISTRY
EOF
}
