#!/usr/bin/env bash
# Checks that the running local cluster is a working node (CI runs it after `make cluster-up`):
#   - a Pod from an image in the local registry becomes Ready and answers on its pod IP from the host;
#   - a ClusterIP Service answers from the host and from another pod (kube-proxy, iptables), and so
#     does the kubernetes Service (the API server);
#   - kubernetes.default.svc.cluster.local and <svc>.<ns>.svc.cluster.local resolve in a pod (CoreDNS);
#   - a pod with a 32Mi memory limit that allocates more is OOMKilled;
#   - kubectl logs and kubectl exec work; crictl ps lists the containers;
#   - containerd runs the runc it was configured with (the pinned build unless ZS_RUNC names another),
#     and a pod that asks for seccomp `RuntimeDefault` (as every function pod does) runs under a filter.
# Exits non-zero naming every check that failed. Pushes localhost:5000/zeroscale/busybox:0.1.0 from
# Debian's busybox-static unless the registry already has it (scripts/images.sh pushes the real one).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=e2e/cluster/lib.sh
source "$here/lib.sh"
# shellcheck source=e2e/cluster/node-images.sh
source "$here/node-images.sh"

bash "$here/status.sh" --check || die "the local cluster is not up (make cluster-up)"
kubectl() { "$ZS_BIN/kubectl" --kubeconfig "$ZS_KUBECONFIG" "$@"; }
ns=zs-smoke
image="$ZEROSCALE_REGISTRY/zeroscale/busybox:0.1.0"
failed=()
fail() {
  failed+=("$1")
  log "FAIL: $1"
}
pass() { log "ok: $1"; }
t0=$(date +%s%N)

if ! "$CRANE" digest "$image" >/dev/null 2>&1; then
  command -v busybox >/dev/null || die "busybox is missing; run scripts/install-deps.sh"
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/etc"
  cp "$(command -v busybox)" "$root/bin/busybox"
  for applet in $(busybox --list); do [[ $applet == busybox ]] || ln -s busybox "$root/bin/$applet"; done
  echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
  push_binary_image zeroscale/busybox 0.1.0 "$root" /bin/sh
  rm -rf "$root"
fi

kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=60s >/dev/null
t0=$(date +%s%N)
cleanup() { kubectl delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT
kubectl create namespace "$ns" >/dev/null
kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
        - name: web
          image: $image
          command: [sh, -c, 'mkdir -p /tmp/www && echo hello-zeroscale >/tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www']
          ports: [{containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /, port: 8080}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 0
  securityContext: {seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: client
      image: $image
      command: [sh, -c, 'echo smoke-client-started; exec sleep 3600']
---
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
    - name: hog
      image: $image
      # Holds 128 MiB in the shell's memory.
      command: [sh, -c, 'x=\$(head -c 134217728 /dev/zero | tr "\\\\000" x); echo \${#x}']
      resources:
        limits: {memory: 32Mi}
EOF

if kubectl -n "$ns" wait --for=condition=Available deploy/web --timeout=90s >/dev/null &&
  kubectl -n "$ns" wait --for=condition=Ready pod/client --timeout=60s >/dev/null; then
  pass "pods from $image Ready in $((($(date +%s%N) - t0) / 1000000)) ms"
else
  fail "pods from $image did not become Ready: $(kubectl -n "$ns" get pods -o wide 2>&1 | tr '\n' ';')"
fi

pod_ip=$(kubectl -n "$ns" get pod -l app=web -o jsonpath='{.items[0].status.podIP}' 2>/dev/null || true)
svc_ip=$(kubectl -n "$ns" get svc web -o jsonpath='{.spec.clusterIP}')
body=$(curl -sf --max-time 5 "http://$pod_ip:8080/" 2>&1 || true)
if [[ $body == hello-zeroscale ]]; then
  pass "pod IP $pod_ip answers from the host"
else
  fail "pod IP $pod_ip:8080 from the host answered '$body'"
fi

# kube-proxy programs the Service a moment after its endpoints appear.
body=""
for ((i = 0; i < 50; i++)); do
  body=$(curl -sf --max-time 2 "http://$svc_ip/" 2>&1 || true)
  [[ $body == hello-zeroscale ]] && break
  sleep 0.1
done
if [[ $body == hello-zeroscale ]]; then
  pass "ClusterIP $svc_ip answers from the host"
else
  fail "ClusterIP $svc_ip:80 from the host answered '$body'"
fi

body=$(kubectl -n "$ns" exec client -- timeout 10 wget -qO- "http://$svc_ip/" 2>&1 || true)
if [[ $body == hello-zeroscale ]]; then
  pass "ClusterIP answers from another pod (kubectl exec works)"
else
  fail "ClusterIP $svc_ip:80 from pod client answered '$body'"
fi

# The API server through the kubernetes Service (10.96.0.1:443 → the node address), from both sides.
api_ip="${ZS_SERVICE_CIDR%.*.*/*}.0.1"
out=$(curl -sf --max-time 5 --cacert "$ZS_PKI/ca.crt" --cert "$ZS_PKI/admin.crt" --key "$ZS_PKI/admin.key" \
  "https://$api_ip/readyz" 2>&1 || true)
if [[ $out == ok ]]; then
  pass "the kubernetes Service $api_ip:443 answers from the host"
else
  fail "https://$api_ip/readyz from the host answered '$out'"
fi
if kubectl -n "$ns" exec client -- nc -w 5 "$api_ip" 443 </dev/null >/dev/null 2>&1; then
  pass "the kubernetes Service $api_ip:443 accepts connections from a pod"
else
  fail "no TCP connection from pod client to the kubernetes Service $api_ip:443"
fi

out=$(kubectl -n "$ns" exec client -- nslookup kubernetes.default.svc.cluster.local 2>&1 || true)
if grep -q "Address.*${ZS_SERVICE_CIDR%.*.*/*}\.0\.1\b" <<<"$out"; then
  pass "kubernetes.default.svc.cluster.local resolves in a pod"
else
  fail "kubernetes.default.svc.cluster.local did not resolve in a pod: $(tr '\n' ' ' <<<"$out")"
fi
# CoreDNS learns the Service from its watch a moment after it is created, and keeps an answer for
# its 5 s cache: a smoke test run again at once can first get the last run's Service address.
out=""
for ((i = 0; i < 20; i++)); do
  out=$(kubectl -n "$ns" exec client -- nslookup "web.$ns.svc.cluster.local" 2>&1 || true)
  grep -qF "$svc_ip" <<<"$out" && break
  sleep 0.5
done
if grep -qF "$svc_ip" <<<"$out"; then
  pass "web.$ns.svc.cluster.local resolves to $svc_ip"
else
  fail "web.$ns.svc.cluster.local did not resolve to $svc_ip: $(tr '\n' ' ' <<<"$out")"
fi
body=$(kubectl -n "$ns" exec client -- timeout 10 wget -qO- "http://web.$ns.svc.cluster.local/" 2>&1 || true)
if [[ $body == hello-zeroscale ]]; then
  pass "the Service answers by name from a pod"
else
  fail "http://web.$ns.svc.cluster.local/ from pod client answered '$body'"
fi

logs=$(kubectl -n "$ns" logs client 2>&1 || true)
if [[ $logs == *smoke-client-started* ]]; then pass "kubectl logs"; else fail "kubectl logs client printed '$logs'"; fi

reason=""
for ((i = 0; i < 600; i++)); do
  reason=$(kubectl -n "$ns" get pod hog -o jsonpath='{.status.containerStatuses[0].state.terminated.reason}' 2>/dev/null || true)
  [[ -n $reason ]] && break
  sleep 0.1
done
if [[ $reason == OOMKilled ]]; then
  pass "a 32Mi pod allocating 128 MiB is OOMKilled"
else
  fail "the 32Mi memory hog ended with '${reason:-nothing within 60 s}', not OOMKilled"
fi

ps=$(zs_crictl ps --namespace "$ns" 2>&1 || true)
if grep -qw web <<<"$ps" && grep -qw client <<<"$ps"; then
  pass "crictl ps lists the containers"
else
  fail "crictl ps does not list web and client: $(tr '\n' ';' <<<"$ps")"
fi

runc_bin=$(zs_crictl info 2>/dev/null | jq -r '.config.containerd.runtimes.runc.options.BinaryName // ""')
# runc (Go, unbuffered) writes its version one line per write: piped into `head -1`, a later line can
# meet a closed pipe, and pipefail then fails the check (CI at stop 45). So read it whole.
if [[ $runc_bin != "$ZS_RUNC" ]]; then
  fail "containerd's runc is '${runc_bin:-none}', not $ZS_RUNC"
elif version=$("$runc_bin" --version 2>&1); then
  pass "containerd runs $runc_bin (${version%%$'\n'*})"
else
  fail "containerd runs $runc_bin, but '$runc_bin --version' failed: $(tr '\n' ' ' <<<"$version")"
fi
seccomp=$(kubectl -n "$ns" exec client -- grep '^Seccomp:' /proc/1/status 2>&1 || true)
if [[ $(awk '{print $2}' <<<"$seccomp") == 2 ]]; then
  pass "a RuntimeDefault pod runs under a seccomp filter"
else
  fail "the RuntimeDefault pod's /proc/1/status says '${seccomp:-nothing}', not Seccomp: 2 (filter)"
fi

if [[ ${#failed[@]} -gt 0 ]]; then
  log "smoke: ${#failed[@]} check(s) failed:"
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
log "smoke: every check passed in $((($(date +%s%N) - t0) / 1000000)) ms"
