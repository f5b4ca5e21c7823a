#!/usr/bin/env bash
# Builds the peer's binaries from their pinned Go modules (versions.env) and caches them under
# $ZEROSCALE_CACHE/peers/keda-<v>_http-add-on-<v>/bin:
#   keda                   KEDA's operator (github.com/kedacore/keda/v2 cmd/operator)
#   keda-adapter           KEDA's metrics apiserver (cmd/adapter)
#   http-add-on-operator   the add-on's operator (HTTPScaledObject → ScaledObject)
#   interceptor            the add-on's data path (the proxy that holds requests while at zero)
#   scaler                 the add-on's external scaler (KEDA asks it for the pending-request count)
# Each module is built inside its own downloaded tree, as the main module, so its replace directives
# apply exactly as in its release (the module zip carries no vendor/ tree: the dependencies come from
# the module proxy, checked against the module's go.sum). Static (CGO off, -trimpath): the images
# are the binary on a distroless static layer (images.sh). A second run with the same pins is a no-op.
# Prints the bin directory on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/peers/versions.env
source "$here/versions.env"
export PATH="/usr/local/go/bin:$PATH"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0
cache="${ZEROSCALE_CACHE:-$HOME/.cache/zeroscale}/peers/keda-${KEDA_VERSION}_http-add-on-${HTTP_ADDON_VERSION}"
bin="$cache/bin"
log() { echo "peers/build: $*" >&2; }

# module_dir <module>@<version>: downloads the module (once) and prints its read-only source tree.
module_dir() {
  (cd /tmp && go mod download -json "$1") | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error", "no Dir")))'
}

stamp="$(cat "$here/versions.env"; declare -f build_keda build_addon; go version)"
want=(keda keda-adapter http-add-on-operator interceptor scaler)
fresh=1
for b in "${want[@]}"; do [[ -x "$bin/$b" ]] || fresh=0; done
if [[ $fresh == 1 && "$(cat "$bin/.stamp" 2>/dev/null)" == "$stamp" ]]; then echo "$bin"; exit 0; fi

build_keda() {
  local src=$1 out=$2 ld="-s -w -X github.com/kedacore/keda/v2/version.Version=${KEDA_VERSION#v}"
  (cd "$src" && nice go build -mod=readonly -trimpath -ldflags "$ld" -o "$out/keda" ./cmd/operator &&
    nice go build -mod=readonly -trimpath -ldflags "$ld" -o "$out/keda-adapter" ./cmd/adapter)
}
build_addon() {
  local src=$1 out=$2
  (cd "$src" && nice go build -trimpath -ldflags "-s -w" -o "$out/http-add-on-operator" ./operator &&
    nice go build -trimpath -ldflags "-s -w" -o "$out/interceptor" ./interceptor &&
    nice go build -trimpath -ldflags "-s -w" -o "$out/scaler" ./scaler)
}

mkdir -p "$bin"
tmp="$cache/.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"
start=$SECONDS
log "building the KEDA HTTP add-on $HTTP_ADDON_VERSION"
build_addon "$(module_dir "github.com/kedacore/http-add-on@$HTTP_ADDON_VERSION")" "$tmp"
log "building KEDA $KEDA_VERSION (large: ~10 min on 2 cores the first time)"
build_keda "$(module_dir "github.com/kedacore/keda/v2@$KEDA_VERSION")" "$tmp"
for b in "${want[@]}"; do mv -f "$tmp/$b" "$bin/$b"; done
rmdir "$tmp"
echo "$stamp" >"$bin/.stamp"
log "built in $((SECONDS - start)) s into $bin"
echo "$bin"
