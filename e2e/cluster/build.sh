#!/usr/bin/env bash
# Builds the pinned control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl)
# into $ZEROSCALE_CACHE/k8s-<version>/bin. Rebuilds only when a pin changes: the stamp file holds a hash of
# the Go modules' go.mod/go.sum, this script and the Go version. GOCACHE/GOMODCACHE stay at their defaults
# in $HOME so every checkout and CI run on the machine shares them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=e2e/cluster/lib.sh
source "$here/lib.sh"

export PATH="/usr/local/go/bin:$PATH"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go); run scripts/install-deps.sh"

stamp_file="$ZS_BIN/.stamp"
stamp="$( (cat "$here/k8s/go.mod" "$here/k8s/go.sum" "$here/etcd/go.mod" "$here/etcd/go.sum" \
  "$here/etcd/main.go" "$here/build.sh"; go version) | sha256sum | cut -d' ' -f1)"
want=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl)

all_there=1
for b in "${want[@]}"; do [[ -x "$ZS_BIN/$b" ]] || all_there=0; done
if [[ $all_there == 1 && -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]]; then
  log "control plane $ZS_K8S_VERSION is up to date in $ZS_BIN"
  exit 0
fi

start=$(date +%s)
log "building control plane $ZS_K8S_VERSION into $ZS_BIN (first build takes a while)"
mkdir -p "$ZS_BIN"
tmp="$ZS_BIN/.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"

minor="${ZS_K8S_VERSION#v1.}"; minor="${minor%%.*}"
ver_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ver_flags+=" -X $pkg.gitVersion=$ZS_K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ver_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

(cd "$here/k8s" && go build -ldflags "-s -w$ver_flags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
(cd "$here/etcd" && go build -ldflags "-s -w" -o "$tmp/etcd" .)

for b in "${want[@]}"; do mv -f "$tmp/$b" "$ZS_BIN/$b"; done
rmdir "$tmp"
echo "$stamp" >"$stamp_file"
log "control plane built in $(($(date +%s) - start))s"
