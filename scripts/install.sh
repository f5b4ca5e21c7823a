#!/usr/bin/env bash
# Installs Zeroscale into the running local cluster from the Helm chart, idempotently, so the three
# components run as pods under their ServiceAccounts, and writes .zeroscale/activator.env:
#   ZEROSCALE_ACTIVATOR=http://<ClusterIP>:80   zeroscale-activator-external (the external data port);
#                                               the node agent proxies ClusterIPs, so the host reaches it
#   ZEROSCALE_BROKER=http://<ClusterIP>:80      zeroscale-broker (the broker ingress)
# Exit status 0 means ready: every Deployment available and the activator answering on its Service.
# Fast (well under a second) when nothing changed since the last install and everything is healthy:
# the chart, the values, the profile and the three binaries are stamped; a rebuilt binary, or a switch
# of profile, rolls its Deployment.
#
# ZEROSCALE_INSTALL_PROFILE=debug (default) runs target/debug/zeroscale-<x> (images `zeroscale/<x>`;
# build them first: `make build`). ZEROSCALE_INSTALL_PROFILE=release builds the three components and
# the echo function with `cargo build --release` and installs with `image.tag=release`, which the node
# agent maps to target/release/zeroscale-<x> (docs/local-cluster.md, image mapping); the coldstart
# benchmark installs that way. ZEROSCALE_INSTALL_LOCK_HELD=1: the caller already holds the install lock
# (bench/coldstart/bench.sh keeps it for its whole measurement, so no concurrent install switches the
# profile under it).
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
STAMP="$ZS_RUN/install.stamp"
profile=${ZEROSCALE_INSTALL_PROFILE:-debug}
target_dir=${CARGO_TARGET_DIR:-$ZS_ROOT/target}
[[ $target_dir == /* ]] || target_dir="$ZS_ROOT/$target_dir"
case $profile in
  debug) target=$target_dir/debug tag=() ;;
  release)
    target=$target_dir/release tag=(--set-string image.tag=release)
    # One package per build, as the other bench sections build theirs (`cargo build --release -p
    # zeroscale-activator`): the same feature set, so neither relinks the other's binary.
    for p in operator activator autoscaler echo; do
      cargo build -q --release -p "zeroscale-$p" || die "cannot build zeroscale-$p (release)"
    done
    ;;
  *) die "ZEROSCALE_INSTALL_PROFILE must be debug or release, not '$profile'" ;;
esac

# Components of the earlier host-process mode must not run beside the pods.
if [[ -d $ZS_RUN/components ]]; then
  source scripts/components.sh
  stop_components
  rmdir "$ZS_RUN/components" 2>/dev/null || true
fi

# The image tag is among the set values, so a profile switch changes the stamp and the pod templates.
annotations=("${tag[@]}")
for c in operator activator autoscaler; do
  [[ -x $target/zeroscale-$c ]] || die "$target/zeroscale-$c is missing: run 'make build'"
  annotations+=(--set-string "$c.podAnnotations.zeroscale\\.dev/binary-mtime=$(stat -c %Y "$target/zeroscale-$c")")
done
stamp=$( (find charts/zeroscale crds/yaml "$VALUES" -type f -print0 | sort -z | xargs -0 sha256sum; echo "${annotations[*]}") | sha256sum | cut -d' ' -f1)

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
  log "installing the chart (release $RELEASE in $NS, $profile builds)"
  "$helm" upgrade --install "$RELEASE" charts/zeroscale -n "$NS" --skip-crds -f "$VALUES" \
    "${annotations[@]}" --wait --timeout 180s >/dev/null ||
    die "helm upgrade failed; see: kubectl -n $NS get pods; kubectl -n $NS logs deploy/zeroscale-activator"
  healthy || die "Zeroscale is not ready after helm --wait (kubectl -n $NS get pods)"
  echo "$stamp" >"$STAMP"
  log "installed in $(($(date +%s) - start)) s"
fi

activator_ip=$(cluster_ip zeroscale-activator-external)
broker_ip=$(cluster_ip zeroscale-broker)
[[ -n $activator_ip && -n $broker_ip ]] || die "the activator Services have no ClusterIP"
# The node agent proxies a ClusterIP once it has seen the Service and its ready endpoints.
for ((i = 0; i < 300; i++)); do
  code=$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://$activator_ip/" || true)
  [[ $code != 000 ]] && break
  sleep 0.1
done
[[ $code != 000 ]] || die "the activator does not answer on http://$activator_ip/ (is the node agent's Service proxy running?)"
printf 'ZEROSCALE_ACTIVATOR=http://%s:80\nZEROSCALE_BROKER=http://%s:80\n' "$activator_ip" "$broker_ip" >"$ZS_STATE/activator.env"
