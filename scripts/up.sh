#!/usr/bin/env bash
# `make up`: brings up the local cluster (a real node: kubelet, containerd, kube-proxy, CoreDNS, and a
# registry on localhost:5000), builds the images and pushes them there (`make images`), installs
# Zeroscale from the Helm chart (the components run as containers from those images, under their
# ServiceAccounts; scripts/install.sh), deploys the hello function, waits until it has scaled to zero,
# and prints a curl that wakes it (a cold start).
set -euo pipefail
cd "$(dirname "$0")/.."
source e2e/cluster/lib.sh

make -s cluster-up
make -s images
# shellcheck disable=SC1091
source "$ZS_STATE/env"
bash scripts/install.sh
# shellcheck disable=SC1091
source "$ZS_STATE/activator.env"

kubectl apply -f examples/functions/hello.yaml >/dev/null
log "waiting for hello to become ready, then to scale to zero (stable window + grace period)"
kubectl wait --for condition=Ready --timeout=180s function/hello >/dev/null
for _ in $(seq 300); do
  # hello's pods belong to its revision's Deployment, `hello-<hash>` (docs/revisions.md): the sum over
  # the Function's revisions (there is one here).
  replicas=$(kubectl get deployment -l zeroscale.dev/function=hello -o jsonpath='{.items[*].spec.replicas}' 2>/dev/null |
    tr ' ' '\n' | awk 'NF { n++; s += $1 } END { print (n ? s : "?") }')
  [[ $replicas == 0 ]] && break
  sleep 1
done
[[ $replicas == 0 ]] || die "hello did not scale to zero (replicas=$replicas); see kubectl -n zeroscale-system logs deploy/zeroscale-autoscaler"

cat <<MSG

Zeroscale is up; hello has scaled to zero. Wake it with a request (a cold start):

  curl -H 'Host: hello.default.example.com' $ZEROSCALE_ACTIVATOR/

Use the cluster with:  source .zeroscale/env && kubectl get fn
Containers on the node: crictl ps   (after source .zeroscale/env)
Component logs:        kubectl -n zeroscale-system logs deploy/zeroscale-activator (operator, autoscaler)
Tear everything down:  make down
MSG
