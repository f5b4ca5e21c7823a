#!/usr/bin/env bash
# Installs what building and testing need and the machine lacks. Idempotent and fast when all is there
# (no network at all then). Other components may append their own lines below.
set -euo pipefail

# Debian packages: command → package.
declare -A packages=(
  [ip]=iproute2 [openssl]=openssl [curl]=curl [setsid]=util-linux [nsenter]=util-linux
  [mount]=mount [base64]=coreutils [jq]=jq [git]=git [make]=make [gcc]=gcc
  # The local cluster's node (e2e/cluster): iptables for kube-proxy and the isolation rule, conntrack
  # (kube-proxy, tear-down), nft (tear-down removes the tables iptables-nft leaves), tar (node images), a
  # static busybox for the smoke test's image, pkg-config for runc's cgo build (e2e/cluster/build.sh).
  [pkg-config]=pkgconf [iptables]=iptables [ip6tables]=iptables [conntrack]=conntrack [nft]=nftables [tar]=tar
  [busybox]=busybox-static
  # Image builds (scripts/images.sh): Debian base images, stripping line tables; protoc for the gRPC example.
  [mmdebstrap]=mmdebstrap [objcopy]=binutils [protoc]=protobuf-compiler
  # The activator's recorded profile (scripts/cargo-static.sh) is stored compressed.
  [xz]=xz-utils
)
# runc is built from its pinned module with libseccomp (e2e/cluster/build.sh), which needs its headers.
[[ -f /usr/include/seccomp.h ]] || packages[seccomp.h]=libseccomp-dev
# CNI plugins are not commands on PATH: bridge, host-local, loopback and portmap in /usr/lib/cni.
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback && -x /usr/lib/cni/portmap ]] ||
  packages[cni-plugins]=containernetworking-plugins
missing=()
for cmd in "${!packages[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${packages[$cmd]}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "install-deps: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Go builds the pinned control plane (e2e/cluster/build.sh); it is expected at /usr/local/go.
if [[ ! -x /usr/local/go/bin/go ]] && ! command -v go >/dev/null 2>&1; then
  echo "install-deps: Go is missing (expected /usr/local/go/bin/go, Go 1.24 or newer)" >&2
  exit 1
fi
command -v cargo >/dev/null 2>&1 || { echo "install-deps: cargo (Rust) is missing" >&2; exit 1; }
