#!/usr/bin/env bash
# Builds the local cluster's pinned binaries into $ZEROSCALE_CACHE/k8s-<version>/bin ($ZS_BIN):
#   k8s        kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kube-proxy
#              (k8s/go.mod pins k8s.io/kubernetes)
#   etcd       etcd (etcd/go.mod)
#   containerd containerd, containerd-shim-runc-v2, ctr (containerd/go.mod)
#   runc       runc, the OCI runtime the shim starts containers with (runc/go.mod), with libseccomp
#   coredns    coredns, with the plugins the Corefile uses (coredns/go.mod)
#   tools      registry, crictl, crane (tools/go.mod)
#   nats       nats-server, the JetStream event store (nats/go.mod pins github.com/nats-io/nats-server/v2)
#   otelcol    otelcol-zeroscale, an OpenTelemetry Collector (OTLP receiver, file exporter) that the
#              tracing tests and benchmark run (otelcol/main.go, otelcol/go.mod pins the collector)
#   promtool   promtool, the checker of the chart's alert rules and dashboard expressions
#              (promtool/go.mod pins github.com/prometheus/prometheus)
#   pause      pause, the pod sandbox's process (pause/pause.c, gcc -static)
# Each group is rebuilt only when its pin changes: $ZS_BIN/.stamp-<group> holds a hash of the group's
# sources (go.mod, go.sum, *.go or *.c), its recipe below and the compiler version. GOCACHE/GOMODCACHE
# stay at their defaults in $HOME so every checkout and CI run on the machine shares them.
# Usage: build.sh [group...]   (no argument: every group)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=e2e/cluster/lib.sh
source "$here/lib.sh"

export PATH="/usr/local/go/bin:$PATH"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go); run scripts/install-deps.sh"

# mod_version <module dir> <module path>: the version that dir's go.mod requires.
mod_version() { awk -v m="$2" '$1 == m && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$here/$1/go.mod"; }

build_k8s() {
  local minor="${ZS_K8S_VERSION#v1.}" ver_flags="" pkg
  minor="${minor%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ver_flags+=" -X $pkg.gitVersion=$ZS_K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ver_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$here/k8s" && nice go build -ldflags "-s -w$ver_flags" -o "$1/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
}
build_etcd() { (cd "$here/etcd" && nice go build -ldflags "-s -w" -o "$1/etcd" .); }
# CGO off: a static containerd needs no C headers; it leaves out the btrfs snapshotter (cgo only), and
# the tags leave out devmapper and zfs. The node uses overlayfs.
build_containerd() {
  local v
  v=$(mod_version containerd github.com/containerd/containerd/v2)
  (cd "$here/containerd" && CGO_ENABLED=0 nice go build -tags "no_btrfs no_devmapper no_zfs" \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$v" -o "$1/" \
    github.com/containerd/containerd/v2/cmd/containerd \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
    github.com/containerd/containerd/v2/cmd/ctr)
}
# cgo, as runc's own release builds: `runc init` compiles a pod's seccomp profile (the operator asks for
# `RuntimeDefault`) with libseccomp, whose headers are Debian's libseccomp-dev. Pods start sooner with it
# than with Debian 12's runc 1.1.5: see docs/benchmarks.md, "Session 32".
build_runc() {
  local v
  [[ -f /usr/include/seccomp.h ]] || die "libseccomp-dev is missing (seccomp.h); run scripts/install-deps.sh"
  command -v pkg-config >/dev/null || die "pkg-config is missing; run scripts/install-deps.sh"
  v=$(mod_version runc github.com/opencontainers/runc)
  (cd "$here/runc" && CGO_ENABLED=1 nice go build -trimpath -tags "seccomp urfave_cli_no_docs" \
    -ldflags "-s -w -X main.version=${v#v}" -o "$1/runc" github.com/opencontainers/runc)
}
# Static: it runs in a scratch image (localhost:5000/zeroscale/coredns).
build_coredns() { (cd "$here/coredns" && CGO_ENABLED=0 nice go build -ldflags "-s -w" -o "$1/coredns" .); }
build_tools() {
  (cd "$here/tools" && CGO_ENABLED=0 nice go build -ldflags "-s -w" -o "$1/registry" ./registry &&
    CGO_ENABLED=0 nice go build -ldflags "-s -w" -o "$1/" sigs.k8s.io/cri-tools/cmd/crictl \
      github.com/google/go-containerregistry/cmd/crane)
}
# Static: it runs in a distroless image (zeroscale/nats) and as a host process in the eventing tests.
build_nats() {
  (cd "$here/nats" && CGO_ENABLED=0 nice go build -ldflags "-s -w" -o "$1/nats-server" \
    github.com/nats-io/nats-server/v2)
}
# Static: host processes only (tests, benchmarks, `make lint`).
build_otelcol() { (cd "$here/otelcol" && CGO_ENABLED=0 nice go build -ldflags "-s -w" -o "$1/otelcol-zeroscale" .); }
# `remove_all_sd` leaves out Prometheus's service-discovery plugins (the cloud SDKs among them): promtool
# only checks rule files here, and those plugins were most of its build on a cold machine.
build_promtool() {
  (cd "$here/promtool" && CGO_ENABLED=0 nice go build -tags remove_all_sd -ldflags "-s -w" -o "$1/promtool" \
    github.com/prometheus/prometheus/cmd/promtool)
}
build_pause() { nice gcc -static -Os -s -Wall -Werror -o "$1/pause" "$here/pause/pause.c"; }

declare -A outputs=(
  [k8s]="kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy"
  [etcd]="etcd"
  [containerd]="containerd containerd-shim-runc-v2 ctr"
  [runc]="runc"
  [coredns]="coredns"
  [tools]="registry crictl crane"
  [nats]="nats-server"
  [otelcol]="otelcol-zeroscale"
  [promtool]="promtool"
  [pause]="pause"
)
groups=(k8s etcd containerd runc coredns tools nats otelcol promtool pause)
[[ $# -gt 0 ]] && groups=("$@")

stamp_of() {
  local group=$1 src
  if [[ $group == pause ]]; then src="$here/pause"; else src="$here/$group"; fi
  (
    find "$src" -maxdepth 2 -type f \( -name go.mod -o -name go.sum -o -name '*.go' -o -name '*.c' \) \
      -print0 | sort -z | xargs -0 cat
    declare -f "build_$group" mod_version
    if [[ $group == pause ]]; then gcc --version | head -1; else go version; fi
    if [[ $group == runc ]]; then pkg-config --modversion libseccomp 2>/dev/null || true; fi
  ) | sha256sum | cut -d' ' -f1
}

# is_fresh <group> <stamp>: whether the group's binaries are there, built from these sources.
is_fresh() {
  local b
  for b in ${outputs[$1]}; do [[ -x "$ZS_BIN/$b" ]] || return 1; done
  [[ "$(cat "$ZS_BIN/.stamp-$1" 2>/dev/null)" == "$2" ]]
}

mkdir -p "$ZS_BIN"
for group in "${groups[@]}"; do
  [[ -n ${outputs[$group]:-} ]] || die "unknown build group $group (known: ${!outputs[*]})"
  stamp=$(stamp_of "$group")
  is_fresh "$group" "$stamp" && continue
  # One build of a group at a time: .ci/run starts every group in the background while `make lint`
  # and `make unit` build the ones they need. Whoever waited finds the group built.
  exec 7>"$ZS_BIN/.lock-$group"
  if ! flock -n 7; then
    log "waiting for another build of $group"
    flock -w 1800 7 || die "another build of $group held $ZS_BIN/.lock-$group for 30 minutes"
  fi
  if is_fresh "$group" "$stamp"; then
    exec 7>&-
    continue
  fi
  start=$(date +%s)
  log "building $group (${outputs[$group]}) into $ZS_BIN"
  tmp="$ZS_BIN/.tmp-$group"
  rm -rf "$tmp" && mkdir -p "$tmp"
  "build_$group" "$tmp"
  for b in ${outputs[$group]}; do mv -f "$tmp/$b" "$ZS_BIN/$b"; done
  rmdir "$tmp"
  echo "$stamp" >"$ZS_BIN/.stamp-$group"
  exec 7>&-
  log "built $group in $(($(date +%s) - start))s"
done
log "cluster binaries up to date in $ZS_BIN"
