#!/usr/bin/env bash
# Installs Zeroscale into the running local cluster from the Helm chart, idempotently, so the three
# components run as containers from their images in the local registry
# (`localhost:5000/zeroscale/<component>:<version>`, pushed by `make images`), under their
# ServiceAccounts, and writes .zeroscale/activator.env:
#   ZEROSCALE_ACTIVATOR=http://<ClusterIP>:80   zeroscale-activator-external (the external data port);
#                                               kube-proxy routes ClusterIPs from the host too
#   ZEROSCALE_BROKER=http://<ClusterIP>:80      zeroscale-broker (the broker ingress)
# Exit status 0 means ready: every Deployment available and the activator answering on its Service.
# When the registry lacks one of the images, it runs scripts/images.sh (`make images`) first.
# Fast (well under a second) when nothing changed since the last install and everything is healthy:
# the chart, the values and the three images' digests are stamped; a pushed image (a new digest under
# the same tag) rolls its Deployment, and values-local.yaml's pullPolicy Always makes the kubelet pull it.
#
# ZEROSCALE_EVENT_STORE=jetstream installs the JetStream event store: the chart's NATS server from the
# registry's `zeroscale/nats` image, with e2e/cluster/values-jetstream.yaml over values-local.yaml (an
# emptyDir store: the local cluster has no storage provisioner); `memory` (the default) is the chart's
# default. Switching stores is a `helm upgrade` of the same release.
#
# ZEROSCALE_VALUES: extra values files (space-separated paths) over those, applied last.
# ZEROSCALE_REGISTRY (default localhost:5000) is where the images are; CRANE (default $ZS_BIN/crane)
# reads their digests. ZEROSCALE_INSTALL_LOCK_HELD=1: the caller already holds the install lock
# (bench/coldstart/bench.sh keeps it for its whole measurement, so no concurrent install rolls the
# components under it).
set -euo pipefail
cd "$(dirname "$0")/.."
source e2e/cluster/lib.sh
[[ -f $ZS_KUBECONFIG ]] || die "no local cluster: run 'make cluster-up' first"
export KUBECONFIG="$ZS_KUBECONFIG" PATH="$ZS_BIN:$PATH"
# One install/uninstall at a time: test binaries call install.sh concurrently, and two helm upgrades of
# one release fail ("another operation is in progress").
if [[ ${ZEROSCALE_INSTALL_LOCK_HELD:-} != 1 ]]; then
  exec 8>"$ZS_STATE/.install.lock"
  flock -w 600 8 || die "another scripts/install.sh or uninstall.sh holds $ZS_STATE/.install.lock"
fi
NS=zeroscale-system
RELEASE=zeroscale
VALUES=e2e/cluster/values-local.yaml
store=${ZEROSCALE_EVENT_STORE:-memory}
images=(operator activator autoscaler)
value_files=(-f "$VALUES")
case $store in
  memory) ;;
  jetstream)
    images+=(nats)
    value_files+=(-f e2e/cluster/values-jetstream.yaml)
    ;;
  *) die "ZEROSCALE_EVENT_STORE must be memory or jetstream, not '$store'" ;;
esac
# ZEROSCALE_VALUES: more values files over those (space-separated paths), e.g. a RUST_LOG at debug for
# the activator's modules while chasing a flake.
for f in ${ZEROSCALE_VALUES:-}; do
  [[ -f $f ]] || die "ZEROSCALE_VALUES names $f, which is not a file"
  value_files+=(-f "$f")
done
STAMP="$ZS_RUN/install.stamp"
registry=${ZEROSCALE_REGISTRY:-localhost:5000}
crane=${CRANE:-$ZS_BIN/crane}
[[ -x $crane ]] || die "$crane is missing: run 'make cluster-up' (e2e/cluster/build.sh builds it)"
version=$(awk '$1 == "appVersion:" {gsub(/"/, "", $2); print $2; exit}' charts/zeroscale/Chart.yaml)
[[ -n $version ]] || die "no appVersion in charts/zeroscale/Chart.yaml"

# Components of the earlier host-process mode must not run beside the pods.
if [[ -d $ZS_RUN/components ]]; then
  source scripts/components.sh
  stop_components
  rmdir "$ZS_RUN/components" 2>/dev/null || true
fi

# The digest of each component's image; a missing image is built and pushed first (once).
digest() { "$crane" digest --insecure "$registry/zeroscale/$1:$version" 2>/dev/null; }
for c in "${images[@]}"; do
  if ! digest "$c" >/dev/null; then
    log "$registry/zeroscale/$c:$version is not in the registry: running scripts/images.sh (make images)"
    ZEROSCALE_REGISTRY=$registry bash scripts/images.sh || die "scripts/images.sh failed"
    break
  fi
done
values=(--set-string "image.registry=$registry" --set-string "image.tag=$version")
for c in operator activator autoscaler; do
  d=$(digest "$c") || die "$registry/zeroscale/$c:$version is not in the registry after scripts/images.sh"
  values+=(--set-string "$c.podAnnotations.zeroscale\\.dev/image-digest=$d")
done
# shellcheck disable=SC2086 # ZEROSCALE_VALUES is a space-separated list of paths
stamp=$( (find charts/zeroscale crds/yaml "$VALUES" e2e/cluster/values-jetstream.yaml ${ZEROSCALE_VALUES:-} -type f -print0 | sort -z | xargs -0 sha256sum; echo "${values[*]} ${value_files[*]}") | sha256sum | cut -d' ' -f1)

healthy() {
  local out
  out=$(kubectl -n "$NS" get deployment zeroscale-operator zeroscale-activator zeroscale-autoscaler \
    -o jsonpath='{range .items[*]}{.status.updatedReplicas}/{.status.availableReplicas}/{.spec.replicas} {end}' 2>/dev/null) || return 1
  [[ $(wc -w <<<"$out") == 3 ]] || return 1
  local d
  for d in $out; do
    IFS=/ read -r updated available wanted <<<"$d"
    [[ $wanted -gt 0 && $updated == "$wanted" && $available == "$wanted" ]] || return 1
  done
  if [[ $store == jetstream ]]; then
    local nats
    nats=$(kubectl -n "$NS" get statefulset zeroscale-nats -o jsonpath='{.status.readyReplicas}/{.spec.replicas}' 2>/dev/null) || return 1
    [[ $nats == "${nats#*/}/${nats#*/}" && ${nats#*/} -gt 0 ]] || return 1
  fi
}

cluster_ip() { kubectl -n "$NS" get service "$1" -o jsonpath='{.spec.clusterIP}'; }

if [[ $(cat "$STAMP" 2>/dev/null) != "$stamp" ]] || ! healthy; then
  helm="$(bash e2e/cluster/helm/build.sh)"
  start=$(date +%s)
  # Helm installs a chart's CRDs only once and never upgrades them: apply the current ones first
  # (docs/install.md, "CRD upgrades").
  kubectl apply --server-side --force-conflicts -f crds/yaml/ >/dev/null
  kubectl wait --for condition=established --timeout=60s crd/functions.zeroscale.dev crd/triggers.zeroscale.dev >/dev/null
  # The namespace enforces the restricted Pod Security Standard, as docs/install.md asks users to.
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $NS
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
    pod-security.kubernetes.io/audit: restricted
YAML
  log "installing the chart (release $RELEASE in $NS, images $registry/zeroscale/*:$version, event store $store)"
  "$helm" upgrade --install "$RELEASE" charts/zeroscale -n "$NS" --skip-crds "${value_files[@]}" \
    "${values[@]}" --wait --timeout 300s >/dev/null ||
    die "helm upgrade failed; see: kubectl -n $NS get pods; kubectl -n $NS logs deploy/zeroscale-activator"
  # helm's --wait returns once each new ReplicaSet's pods are ready; the Deployments' status counts
  # the old ReplicaSet's pods until the controller has scaled it down, a moment later.
  for ((i = 0; ; i++)); do
    healthy && break
    ((i < 120)) || die "Zeroscale is not ready 60 s after helm --wait (kubectl -n $NS get pods)"
    sleep 0.5
  done
  echo "$stamp" >"$STAMP"
  log "installed in $(($(date +%s) - start)) s"
fi

activator_ip=$(cluster_ip zeroscale-activator-external)
broker_ip=$(cluster_ip zeroscale-broker)
[[ -n $activator_ip && -n $broker_ip ]] || die "the activator Services have no ClusterIP"
# kube-proxy routes a ClusterIP once it has synced the Service and its ready endpoints.
for ((i = 0; i < 300; i++)); do
  code=$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://$activator_ip/" || true)
  [[ $code != 000 ]] && break
  sleep 0.1
done
[[ $code != 000 ]] || die "the activator does not answer on http://$activator_ip/ (is kube-proxy running? see .zeroscale/logs/)"
printf 'ZEROSCALE_ACTIVATOR=http://%s:80\nZEROSCALE_BROKER=http://%s:80\n' "$activator_ip" "$broker_ip" >"$ZS_STATE/activator.env"
