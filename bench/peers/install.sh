#!/usr/bin/env bash
# Installs (`install.sh up <images file>`) or removes (`install.sh down`) the peer on the local cluster:
# KEDA and the KEDA HTTP add-on from their own kustomize trees (the `config/` directories of their
# pinned modules, versions.env), in their own namespace `keda`, with our images (images.sh) put in by
# an overlay (overlay.yaml, rendered with `kubectl kustomize`). Left out: KEDA's admission webhooks (a
# guard against bad ScaledObjects, not on the scaling path) — KEDA's own `config/minimal` tree.
# `up` waits until every Deployment in `keda` is available; `down` deletes the scaled objects first
# (their finalizers need the KEDA operator), then everything the rendered manifest holds (the namespace,
# CRDs, cluster roles and bindings), and waits until it is all gone.
# The caller holds the cluster lock.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/peers/versions.env
source "$here/versions.env"
# shellcheck source=e2e/cluster/lib.sh
source "$here/../../e2e/cluster/lib.sh" # ZS_BIN, ZS_KUBECONFIG, log, die
kubectl() { "$ZS_BIN/kubectl" --kubeconfig "$ZS_KUBECONFIG" "$@"; }
export PATH="/usr/local/go/bin:$PATH" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
state="${ZEROSCALE_CACHE:-$HOME/.cache/zeroscale}/peers/manifest"
mkdir -p "$state"

module_dir() {
  (cd /tmp && go mod download -json "$1") | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error", "no Dir")))'
}

# render <images file>: the full manifest into $state/peer.yaml.
render() {
  local work ref
  work=$(mktemp -d)
  cp -r "$(module_dir "github.com/kedacore/keda/v2@$KEDA_VERSION")/config" "$work/keda"
  cp -r "$(module_dir "github.com/kedacore/http-add-on@$HTTP_ADDON_VERSION")/config" "$work/addon"
  chmod -R u+w "$work"
  cp "$here/overlay.yaml" "$work/kustomization.yaml"
  # The images: `<binary>=<repo>@<digest>` lines from images.sh.
  declare -A upstream=([keda]=ghcr.io/kedacore/keda [keda-adapter]=ghcr.io/kedacore/keda-metrics-apiserver
    [http-add-on-operator]=ghcr.io/kedacore/http-add-on-operator
    [interceptor]=ghcr.io/kedacore/http-add-on-interceptor [scaler]=ghcr.io/kedacore/http-add-on-scaler)
  echo "images:" >>"$work/kustomization.yaml"
  while IFS="=" read -r name ref; do
    [[ -n ${upstream[$name]:-} ]] || die "peers: unknown image $name in $1"
    printf -- '- name: %s\n  newName: %s\n  digest: %s\n' "${upstream[$name]}" "${ref%@*}" "${ref#*@}" \
      >>"$work/kustomization.yaml"
  done <"$1"
  kubectl kustomize "$work" >"$state/peer.yaml"
  rm -rf "$work"
  # The CRDs apart: the manifest holds a ScaledObject (the interceptor's), which needs its CRD established.
  python3 - "$state" <<'PY'
import pathlib, sys, yaml
state = pathlib.Path(sys.argv[1])
docs = [d for d in yaml.safe_load_all((state / "peer.yaml").read_text()) if d]
crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
(state / "crds.yaml").write_text(yaml.safe_dump_all(crds))
(state / "rest.yaml").write_text(yaml.safe_dump_all([d for d in docs if d not in crds]))
PY
}

up() {
  render "$1"
  kubectl apply --server-side --force-conflicts --field-manager zeroscale-bench -f "$state/crds.yaml" >/dev/null
  kubectl wait --for condition=established --timeout 60s -f "$state/crds.yaml" >/dev/null
  kubectl apply --server-side --force-conflicts --field-manager zeroscale-bench -f "$state/rest.yaml" >/dev/null
  # The scaling path must run; the metrics apiserver (unused here, see overlay.yaml) is waited for but
  # not required.
  kubectl wait --for condition=Available --timeout 180s -n keda deployment/keda-operator \
    deployment/keda-http-add-on-operator deployment/keda-http-add-on-interceptor \
    deployment/keda-http-add-on-scaler >/dev/null ||
    { kubectl get pods -n keda -o wide >&2; die "peers: the peer's Deployments did not become available"; }
  kubectl wait --for condition=Available --timeout 60s -n keda deployment/keda-metrics-apiserver >/dev/null ||
    log "peers: keda-metrics-apiserver is not available (not on the measured path; see overlay.yaml)"
  log "peers: KEDA $KEDA_VERSION and the HTTP add-on $HTTP_ADDON_VERSION are running in namespace keda"
}

down() {
  [[ -f $state/peer.yaml ]] || { log "peers: nothing installed ($state/peer.yaml missing)"; return 0; }
  if kubectl get crd httpscaledobjects.http.keda.sh >/dev/null 2>&1; then
    kubectl delete httpscaledobjects.http.keda.sh --all -A --wait --timeout 60s >/dev/null || true
  fi
  if kubectl get crd scaledobjects.keda.sh >/dev/null 2>&1; then
    kubectl delete scaledobjects.keda.sh,scaledjobs.keda.sh,triggerauthentications.keda.sh --all -A --wait --timeout 60s >/dev/null || true
  fi
  kubectl delete -f "$state/peer.yaml" --ignore-not-found --wait --timeout 120s >/dev/null || true
  # Whatever KEDA created at run time and its manifests do not name: HPAs of scaled objects go with
  # their owners; the certificate secret and leases go with the namespace.
  local left
  left=$(kubectl get -f "$state/peer.yaml" --ignore-not-found -o name 2>/dev/null || true)
  [[ -z $left ]] || die "peers: still present after uninstall: $left"
  rm -f "$state/peer.yaml"
  log "peers: KEDA and the HTTP add-on removed"
}

case ${1:-} in
  up) up "${2:?usage: install.sh up <images file>}" ;;
  down) down ;;
  render) render "${2:?usage: install.sh render <images file>}" && cat "$state/peer.yaml" ;;
  *) die "usage: install.sh up <images file> | down | render <images file>" ;;
esac
