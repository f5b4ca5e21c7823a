#!/usr/bin/env bash
# Pushes the peer's images to the local registry: each one is a binary from build.sh on one layer (the
# users, groups, CA certificates and /tmp every image needs, and the binary at /<binary>, where the
# upstream Dockerfiles put it: KEDA's manifests run `command: /keda`), run as nonroot (65532) like the
# upstream distroless images. No container daemon: the layer is a
# deterministic tar (sorted, mtime 0, owner 0:0) and `crane append` writes the image onto an empty
# base. Tagged with the pinned version; an image whose tag already holds the same layer is not pushed
# again, so a second run is a few registry look-ups.
# Usage: images.sh <bin dir>   Prints `<name>=<ref>@<digest>` lines for install.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/peers/versions.env
source "$here/versions.env"
# shellcheck source=e2e/cluster/lib.sh
source "$here/../../e2e/cluster/lib.sh" # ZS_BIN, log, die
bin=${1:?usage: images.sh <bin dir>}
registry=${ZEROSCALE_REGISTRY:-localhost:5000}
crane=${CRANE:-$ZS_BIN/crane}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# quiet <command>: runs it, showing its output only when it fails.
quiet() {
  local out
  out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; die "peers: $* failed"; }
}

# image <binary> <version>: pushes $registry/peers/<binary>:<version>; prints `<binary>=<ref>@<digest>`.
image() {
  local name=$1 root="$work/$1" ref="$registry/peers/$1:$2" layer diff
  mkdir -p "$root/etc/ssl/certs" "$root/tmp" "$root"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$root/etc/group"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  cp "$bin/$name" "$root/$name"
  chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/ssl/certs/ca-certificates.crt"
  chmod 0755 "$root/$name"
  chmod 1777 "$root/tmp"
  chmod 0755 "$root" "$root/etc" "$root/etc/ssl" "$root/etc/ssl/certs"
  layer="$work/$name.tar"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -C "$root" -cf "$layer" .
  diff="sha256:$(sha256sum "$layer" | cut -d' ' -f1)"
  # The image already there with this exact layer: nothing to push.
  if [[ $("$crane" config "$ref" 2>/dev/null | jq -r '.rootfs.diff_ids[0]' 2>/dev/null) != "$diff" ]]; then
    quiet "$crane" append --oci-empty-base -f "$layer" -t "$ref"
    quiet "$crane" mutate "$ref" --entrypoint "/$name" --user 65532:65532 --set-platform linux/amd64 -t "$ref"
    log "peers: pushed $ref"
  fi
  echo "$name=$registry/peers/$name@$("$crane" digest "$ref")"
}

image keda "$KEDA_VERSION"
image keda-adapter "$KEDA_VERSION"
for b in http-add-on-operator interceptor scaler; do image "$b" "$HTTP_ADDON_VERSION"; done
