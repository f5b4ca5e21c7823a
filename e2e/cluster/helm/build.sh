#!/usr/bin/env bash
# Builds the pinned helm CLI into $ZEROSCALE_CACHE/helm-<version>/helm and prints that path on stdout.
#
# The version is whatever go.mod next to this script pins (`tool helm.sh/helm/v3/cmd/helm`, so
# `go mod tidy` keeps the requirement); go.sum pins every dependency. Like e2e/cluster/build.sh, the
# build is cached by version: it reruns only when go.mod/go.sum, this script or the Go version change
# (a stamp file holds their hash). Logs go to stderr so callers can write `helm="$(bash .../build.sh)"`.
#
# The ldflags are the ones helm's own Makefile sets: the version `helm version` prints, and the
# Kubernetes version helm assumes when it has no cluster to ask (`helm template`, `helm lint`), taken
# from the client-go it is built with.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

export PATH="/usr/local/go/bin:$PATH"
# Never download another Go toolchain; never stamp VCS info of this repository into the binary.
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
command -v go >/dev/null || { log "error: go not found (expected /usr/local/go/bin/go); run scripts/install-deps.sh"; exit 1; }

version="$(awk '$1 == "helm.sh/helm/v3" && $2 ~ /^v/ {print $2; exit}' "$here/go.mod")"
[[ -n "$version" ]] || { log "error: no helm.sh/helm/v3 requirement in $here/go.mod"; exit 1; }
cache="${ZEROSCALE_CACHE:-$HOME/.cache/zeroscale}"
dir="$cache/helm-$version"
bin="$dir/helm"
stamp_file="$dir/.stamp"
stamp="$( (cat "$here/go.mod" "$here/go.sum" "$here/build.sh"; go version) | sha256sum | cut -d' ' -f1)"

if [[ -x "$bin" && -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]]; then
  echo "$bin"
  exit 0
fi

start=$(date +%s)
log "building helm $version into $dir (first build takes a few minutes)"
mkdir -p "$dir"
# client-go v0.X.Y goes with Kubernetes 1.X (helm's Makefile computes the same).
client_go="$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$here/go.mod")"
k8s_minor="$(cut -d. -f2 <<<"$client_go")"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
# Build beside the final path and rename, so a concurrent caller never runs a half-written binary.
(cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin.tmp.$$" helm.sh/helm/v3/cmd/helm)
mv -f "$bin.tmp.$$" "$bin"
echo "$stamp" >"$stamp_file"
log "helm $version built in $(($(date +%s) - start))s"
echo "$bin"
