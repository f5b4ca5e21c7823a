#!/usr/bin/env bash
# Images made from one static binary (sourced by up.sh and smoke.sh after lib.sh): the node's pause and
# coredns images, and smoke.sh's busybox. Built with crane, without a container daemon: one layer with
# the binary, an OCI image index around the linux/amd64 manifest, org.opencontainers.image.* labels.

CRANE="${CRANE:-$ZS_BIN/crane}"

# push_binary_image <repository> <tag> <layer dir> <entrypoint...>: pushes
# $ZEROSCALE_REGISTRY/<repository>:<tag> with <layer dir>'s contents as its only layer, unless the
# registry already holds an image built from the same contents (a marker beside the registry's storage,
# which is kept across runs, holds their hash).
push_binary_image() {
  local repo=$1 tag=$2 dir=$3
  shift 3
  local ref="$ZEROSCALE_REGISTRY/$repo:$tag"
  local marks="$ZEROSCALE_CACHE/registry/.zeroscale-pushed"
  local mark="$marks/${repo//\//_}_$tag"
  local hash
  hash=$( (tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$dir" -cf - . | sha256sum; echo "$*") |
    sha256sum | cut -d' ' -f1)
  if [[ "$(cat "$mark" 2>/dev/null)" == "$hash" ]] && "$CRANE" digest "$ref" >/dev/null 2>&1; then
    return 0
  fi
  local tmp
  tmp=$(mktemp -d)
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$dir" -cf "$tmp/layer.tar" .
  local entry="" arg
  for arg in "$@"; do entry+="${entry:+,}$arg"; done
  local revision
  revision=$(git -C "$ZS_ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  # append (a fresh OCI image with the layer) → mutate (entrypoint, labels) → index around it.
  local built manifest
  if ! built=$("$CRANE" append --oci-empty-base --platform linux/amd64 -f "$tmp/layer.tar" -t "$ref" 2>/dev/null) ||
    ! manifest=$("$CRANE" mutate "$built" --set-platform linux/amd64 --entrypoint "$entry" \
      --label "org.opencontainers.image.title=$repo" \
      --label "org.opencontainers.image.version=$tag" \
      --label "org.opencontainers.image.revision=$revision" \
      --label "org.opencontainers.image.description=Zeroscale local cluster: $repo" \
      --label "org.opencontainers.image.vendor=Zeroscale" \
      --repo "$ZEROSCALE_REGISTRY/$repo" 2>/dev/null) ||
    ! "$CRANE" index append -m "$manifest" -t "$ref" >/dev/null 2>&1; then
    rm -rf "$tmp"
    die "could not push $ref (is the registry on $ZS_REGISTRY up? see $ZS_LOGS/registry.log)"
  fi
  rm -rf "$tmp"
  mkdir -p "$marks"
  echo "$hash" >"$mark"
  log "pushed $ref"
}

# push_node_images: pause (containerd's sandbox image) and coredns.
push_node_images() {
  local tmp
  tmp=$(mktemp -d)
  mkdir -p "$tmp/pause" "$tmp/coredns"
  cp "$ZS_BIN/pause" "$tmp/pause/pause"
  cp "$ZS_BIN/coredns" "$tmp/coredns/coredns"
  push_binary_image zeroscale/pause "${ZS_PAUSE_IMAGE##*:}" "$tmp/pause" /pause
  push_binary_image zeroscale/coredns "$(coredns_version)" "$tmp/coredns" /coredns
  rm -rf "$tmp"
}

# coredns_version: the pinned CoreDNS release without its "v" (the image tag).
coredns_version() {
  awk '$1 == "require" && $2 == "github.com/coredns/coredns" {print $3} $1 == "github.com/coredns/coredns" {print $2}' \
    "$ZS_CLUSTER_DIR/coredns/go.mod" | head -1 | sed 's/^v//'
}
