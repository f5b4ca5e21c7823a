#!/usr/bin/env bash
# Builds Zeroscale's OCI images without a container daemon and pushes them with `crane` (`make images`).
#
#   bash scripts/images.sh                 # build and push every image
#   bash scripts/images.sh echo busybox    # only these
#   bash scripts/images.sh --no-push       # build the OCI layouts only ($CARGO_TARGET_DIR/images/<name>):
#                                          # touches no cluster, so run it before taking the cluster lock
#   bash scripts/images.sh --describe      # print each image's entrypoint, user and ports (images/check.sh)
#
# Each image is assembled here: layers are deterministic tar files (sorted, mtime 0, owner 0:0, numeric),
# gzip'd without a timestamp; the config, manifest and a one-platform OCI image index (linux/amd64) are
# written as JSON with jq into an OCI image layout, which `crane push` sends to
# $ZEROSCALE_REGISTRY/zeroscale/<name> under the workspace version and the commit. See docs/images.md.
#
# Environment: ZEROSCALE_REGISTRY (default localhost:5000), CRANE (default $ZS_BIN/crane), KUBECTL (the
# binary of the kubectl image, default $ZS_BIN/kubectl), CARGO_TARGET_DIR
# (default target/), ZEROSCALE_CACHE (base images and layer blobs, default ~/.cache/zeroscale),
# ZEROSCALE_IMAGES_SKIP_CARGO=1 to use the built binaries as they are (release, data-plane and
# control-plane profiles), ZEROSCALE_IMAGES_KEEP_DEBUG=1 to
# keep their line tables.
set -euo pipefail
shopt -s inherit_errexit # a failure inside $(...) stops the script too
umask 022                # the staged trees' directories are what the images get
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=e2e/cluster/lib.sh
source "$root/e2e/cluster/lib.sh" # ZS_BIN, ZEROSCALE_CACHE, log, die

REGISTRY="${ZEROSCALE_REGISTRY:-localhost:5000}"
CRANE="${CRANE:-$ZS_BIN/crane}"
KUBECTL="${KUBECTL:-$ZS_BIN/kubectl}"
NATS_SERVER="${NATS_SERVER:-$ZS_BIN/nats-server}"
target="${CARGO_TARGET_DIR:-$root/target}"
[[ $target == /* ]] || target="$root/$target"
work="$target/images"        # per-image OCI layouts and staging trees (rebuilt freely)
cache="$ZEROSCALE_CACHE/images" # Debian base layers and every blob, kept across checkouts
blobs="$cache/blobs/sha256"
# Bump to rebuild the Debian bases when their recipe below changes.
BASE_RECIPE=2
ALL=(operator activator autoscaler echo echo-grpc echo-python echo-node busybox kubectl nats)
NONROOT="65532:65532"
ENV_PATH="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ENV_CERTS="SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"

# What each image runs: entrypoint (JSON), cmd (JSON), user, exposed TCP ports, env, and the Dockerfile
# (path#stage) that must say the same (checked by images/check.sh), "-" for none.
declare -A ENTRY CMD USERS PORTS ENVS DOCKERFILE DESC
for c in operator activator autoscaler echo echo-grpc; do
  ENTRY[$c]="[\"/usr/local/bin/zeroscale-$c\"]"
  CMD[$c]="null"
  USERS[$c]=$NONROOT
  ENVS[$c]="$ENV_PATH $ENV_CERTS"
  DOCKERFILE[$c]="images/Dockerfile#$c"
done
PORTS[operator]="9090"
PORTS[activator]="8080 8081 8082 9090"
PORTS[autoscaler]="8080 9090"
PORTS[echo]="8080" # examples/functions/echo/src/config.rs: $PORT, default 8080
PORTS[echo-grpc]="8080" # examples/functions/grpc/src/config.rs: $PORT, default 8080 (h2c)
DESC[operator]="Zeroscale operator: reconciles Functions and Triggers"
DESC[activator]="Zeroscale activator: buffers and balances requests to functions"
DESC[autoscaler]="Zeroscale autoscaler: scales functions from request metrics"
DESC[echo]="Zeroscale example function (Rust): echoes requests"
DESC[echo-grpc]="Zeroscale example function (Rust, tonic): gRPC echo over h2c, unary and streaming"
ENTRY[echo-python]='["/usr/bin/python3","/app/main.py"]'
ENTRY[echo-node]='["/usr/bin/node","/app/server.js"]'
for f in echo-python echo-node; do
  CMD[$f]="null"
  USERS[$f]=$NONROOT
  PORTS[$f]="8080"
done
ENVS[echo-python]="$ENV_PATH $ENV_CERTS PORT=8080 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1"
ENVS[echo-node]="$ENV_PATH $ENV_CERTS PORT=8080 NODE_ENV=production"
DOCKERFILE[echo-python]="examples/functions/python/Dockerfile"
DOCKERFILE[echo-node]="examples/functions/node/Dockerfile"
DESC[echo-python]="Zeroscale example function (Python standard library): echoes requests"
DESC[echo-node]="Zeroscale example function (Node.js http module): echoes requests"
ENTRY[busybox]="null" CMD[busybox]='["sh"]' USERS[busybox]="0:0" PORTS[busybox]="" ENVS[busybox]="$ENV_PATH"
DOCKERFILE[busybox]="-" DESC[busybox]="Test utility: Debian's busybox-static with /bin/sh"
ENTRY[kubectl]='["/usr/local/bin/kubectl"]' CMD[kubectl]="null" USERS[kubectl]=$NONROOT PORTS[kubectl]=""
ENVS[kubectl]="$ENV_PATH $ENV_CERTS" DOCKERFILE[kubectl]="-" DESC[kubectl]="Test utility: the pinned kubectl"
# The JetStream event store (docs/eventing.md): the pinned nats-server, static; 4222 clients, 6222 routes
# (cluster), 8222 monitoring. The chart passes `--config`.
ENTRY[nats]='["/usr/local/bin/nats-server"]' CMD[nats]="null" USERS[nats]=$NONROOT PORTS[nats]="4222 6222 8222"
ENVS[nats]="$ENV_PATH $ENV_CERTS" DOCKERFILE[nats]="-" DESC[nats]="NATS server with JetStream: the eventing store"
# Debian packages of the bases (mmdebstrap --variant=extract resolves their dependencies).
declare -A BASE_PACKAGES=([echo-python]="python3-minimal,libpython3.11-stdlib" [echo-node]="nodejs")

describe() {
  local i
  for i in "${ALL[@]}"; do
    printf '%s\tentrypoint=%s\tcmd=%s\tuser=%s\tports=%s\tdockerfile=%s\n' "$i" "${ENTRY[$i]}" \
      "${CMD[$i]}" "${USERS[$i]}" "${PORTS[$i]}" "${DOCKERFILE[$i]}"
  done
}

# ---- layers ------------------------------------------------------------------------------------------

# add_blob <file> <media type>: moves the file into the blob store; prints its descriptor as JSON.
add_blob() {
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  if [[ -f $blobs/$digest ]]; then rm -f "$1"; else mv -f "$1" "$blobs/$digest"; fi
  jq -cn --arg m "$2" --arg d "sha256:$digest" --argjson s "$size" '{mediaType: $m, digest: $d, size: $s}'
}

# layer <dir>: a deterministic gzip'd tar of the tree; prints `<diff id> <descriptor JSON>`. A tar whose
# content (diff id) was compressed before is not compressed again.
layer() {
  local tarball="$work/.layer.tar" diff
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
    --no-acls --no-xattrs --no-selinux -C "$1" -cf "$tarball" .
  diff=$(sha256sum "$tarball" | cut -d' ' -f1)
  if [[ -f $cache/layers/$diff ]] && [[ -f $blobs/$(jq -r '.digest[7:]' "$cache/layers/$diff") ]]; then
    rm -f "$tarball"
  else
    gzip -f -n -6 "$tarball"
    add_blob "$tarball.gz" application/vnd.oci.image.layer.v1.tar+gzip >"$cache/layers/$diff"
  fi
  echo "sha256:$diff $(cat "$cache/layers/$diff")"
}

# etc_files <rootfs>: the users, groups, CA certificates and /tmp every image has.
etc_files() {
  mkdir -p "$1/etc/ssl/certs" "$1/tmp"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' >"$1/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$1/etc/group"
  cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/ca-certificates.crt"
  chmod 0644 "$1/etc/passwd" "$1/etc/group" "$1/etc/ssl/certs/ca-certificates.crt"
  chmod 1777 "$1/tmp"
}

# runtime_tree <rootfs> <binary>: etc_files plus exactly the shared libraries the binary links (ldd),
# the dynamic loader included, at the paths ldd names.
runtime_tree() {
  local lib
  etc_files "$1"
  if ldd "$2" >/dev/null 2>&1; then
    while read -r lib; do
      mkdir -p "$1$(dirname "$lib")"
      cp -L "$lib" "$1$lib"
      chmod 0755 "$1$lib"
    done < <(ldd "$2" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
  fi
}

# bin_tree <rootfs> <binary> <name>: the binary at /usr/local/bin/<name>. The release profile keeps line
# tables (debug = "line-tables-only"), about 80% of a component's 110 MB: they are stripped from the
# image's copy (the symbol table stays, so a backtrace still names functions) unless
# ZEROSCALE_IMAGES_KEEP_DEBUG=1.
bin_tree() {
  mkdir -p "$1/usr/local/bin"
  if [[ ${ZEROSCALE_IMAGES_KEEP_DEBUG:-} != 1 ]] && command -v objcopy >/dev/null; then
    objcopy --strip-debug "$2" "$1/usr/local/bin/$3"
  else
    cp "$2" "$1/usr/local/bin/$3"
  fi
  chmod 0755 "$1/usr/local/bin/$3"
}

# debian_base <image>: the cached layer of a Debian root filesystem with the image's packages, built by
# mmdebstrap from the host's apt sources when its key (packages, sources, recipe) is new.
debian_base() {
  local pkgs="${BASE_PACKAGES[$1]}" sources=/etc/apt/sources.list.d/debian.sources key dir
  [[ -f $sources ]] || die "no $sources: the Debian bases are built from the host's apt mirror"
  key=$( (echo "$pkgs $BASE_RECIPE"; cat "$sources") | sha256sum | cut -c1-16)
  if [[ -f $cache/base-$key.layer ]]; then
    cat "$cache/base-$key.layer"
    return
  fi
  command -v mmdebstrap >/dev/null || die "mmdebstrap not found (apt-get install -y mmdebstrap)"
  log "building the Debian base of $1 ($pkgs) with mmdebstrap"
  dir="$work/.base-$1"
  rm -rf "$dir"
  # extract: unpack the packages and their dependencies, run no maintainer script (so no shell, no
  # dpkg database needed); no recommends; no docs, man pages or translations.
  nice mmdebstrap --quiet --variant=extract --aptopt='APT::Install-Recommends "false"' \
    --include="$pkgs" --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' bookworm "$dir" "$sources" >&2
  rm -rf "${dir:?}"/dev/* "$dir"/var/cache/apt "$dir"/var/lib/apt "$dir"/var/log/* "$dir"/etc/apt
  mkdir -p "$dir/proc" "$dir/sys" "$dir/dev"
  etc_files "$dir"
  if [[ -x $dir/usr/bin/python3 ]]; then
    # Byte-compile the standard library once (unchecked-hash: valid whatever the files' mtimes), so a
    # cold start does not compile every import.
    local stdlib
    for stdlib in "$dir"/usr/lib/python3*; do
      chroot "$dir" /usr/bin/python3 -m compileall -q --invalidation-mode unchecked-hash "${stdlib#"$dir"}" >&2 ||
        die "compileall failed in the $1 base"
    done
  fi
  layer "$dir" >"$cache/base-$key.layer.tmp"
  mv "$cache/base-$key.layer.tmp" "$cache/base-$key.layer"
  rm -rf "$dir"
  cat "$cache/base-$key.layer"
}

# ---- images ------------------------------------------------------------------------------------------

# image <name> <layer>...: writes the config, manifest and index of the image into its OCI layout
# $work/<name> (blobs linked to the shared store); prints the index digest.
image() {
  local name=$1 diffs=() descs=() entry created_by=() out="$work/$1" config manifest index p
  shift
  for entry in "$@"; do
    diffs+=("${entry%% *}")
    descs+=("${entry#* }")
    created_by+=("scripts/images.sh")
  done
  local ports_json env_json
  ports_json=$(for p in ${PORTS[$name]}; do echo "$p/tcp"; done | jq -Rn '[inputs] | map({(.): {}}) | add // null')
  # Env entries are space-separated words (none holds a space).
  # shellcheck disable=SC2086
  env_json=$(printf '%s\n' ${ENVS[$name]} | jq -Rn '[inputs]')
  jq -cn --arg created "$CREATED" --argjson entry "${ENTRY[$name]}" --argjson cmd "${CMD[$name]}" \
    --arg user "${USERS[$name]}" --argjson ports "$ports_json" --argjson env "$env_json" \
    --argjson diffs "$(printf '%s\n' "${diffs[@]}" | jq -Rn '[inputs]')" \
    --argjson labels "$(labels "$name")" \
    '{created: $created, architecture: "amd64", os: "linux",
      config: ({User: $user, Env: $env, Entrypoint: $entry, Cmd: $cmd, WorkingDir: "/", Labels: $labels}
               + (if $ports then {ExposedPorts: $ports} else {} end)),
      rootfs: {type: "layers", diff_ids: $diffs},
      history: [$diffs[] | {created: $created, created_by: "scripts/images.sh"}]}' >"$work/.config"
  config=$(add_blob "$work/.config" application/vnd.oci.image.config.v1+json)
  jq -cn --argjson config "$config" --argjson layers "$(printf '%s\n' "${descs[@]}" | jq -s .)" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: $config,
      layers: $layers}' >"$work/.manifest"
  manifest=$(add_blob "$work/.manifest" application/vnd.oci.image.manifest.v1+json)
  jq -cn --argjson m "$manifest" --argjson labels "$(labels "$name")" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [$m + {platform: {architecture: "amd64", os: "linux"}}], annotations: $labels}' >"$work/.index"
  index=$(add_blob "$work/.index" application/vnd.oci.image.index.v1+json)
  rm -rf "$out" && mkdir -p "$out"
  ln -s "$blobs/.." "$out/blobs"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
  jq -cn --argjson i "$index" '{schemaVersion: 2, manifests: [$i]}' >"$out/index.json"
  jq -r .digest <<<"$index"
}

labels() {
  jq -cn --arg t "zeroscale/$1" --arg d "${DESC[$1]}" --arg v "$VERSION" --arg r "$REVISION" \
    --arg c "$CREATED" --arg s "$SOURCE" --arg l "$LICENSE" \
    '{"org.opencontainers.image.title": $t, "org.opencontainers.image.description": $d,
      "org.opencontainers.image.version": $v, "org.opencontainers.image.revision": $r,
      "org.opencontainers.image.source": $s, "org.opencontainers.image.created": $c,
      "org.opencontainers.image.licenses": $l}'
}

# cargo_profile <name>: the Cargo profile a Rust image's binary is built with (Cargo.toml):
# `control-plane` (size before speed) for the operator and the autoscaler, `data-plane` (speed, one
# LTO unit) for the activator, `release` for the examples.
cargo_profile() {
  case $1 in
    operator | autoscaler) echo control-plane ;;
    activator) echo data-plane ;;
    *) echo release ;;
  esac
}

# cargo_bin <name>: where a Rust image's binary is built. The components are linked statically
# (scripts/cargo-static.sh), in the target triple's directory; the examples are ordinary builds.
cargo_bin() {
  case $1 in
    operator | activator | autoscaler) echo "$target/$(bash "$root/scripts/cargo-static.sh" --triple)/$(cargo_profile "$1")/zeroscale-$1" ;;
    *) echo "$target/$(cargo_profile "$1")/zeroscale-$1" ;;
  esac
}

# workspace_field <key>: a value of Cargo.toml's [workspace.package].
workspace_field() {
  awk -v k="$1" '/^\[workspace.package\]/ {w = 1; next} /^\[/ {w = 0}
    w && $1 == k {sub(/^[^=]*= *"/, ""); sub(/".*$/, ""); print; exit}' "$root/Cargo.toml"
}

# build <name>: stages the image's trees, makes their layers and the image; prints the index digest.
build() {
  local name=$1 stage="$work/.stage-$1" bin l1 l2
  rm -rf "$stage" && mkdir -p "$stage/1" "$stage/2"
  case $name in
    operator | activator | autoscaler | echo | echo-grpc)
      bin=$(cargo_bin "$name")
      [[ -x $bin ]] || die "$bin not built (see the cargo invocations at the end of scripts/images.sh)"
      runtime_tree "$stage/1" "$bin"
      bin_tree "$stage/2" "$bin" "zeroscale-$name"
      ;;
    kubectl)
      bin=$KUBECTL
      [[ -x $bin ]] || die "$bin not built (bash e2e/cluster/build.sh)"
      runtime_tree "$stage/1" "$bin"
      bin_tree "$stage/2" "$bin" kubectl
      ;;
    nats)
      bin=$NATS_SERVER
      [[ -x $bin ]] || die "$bin not built (bash e2e/cluster/build.sh nats)"
      runtime_tree "$stage/1" "$bin" # static: users, groups, certificates and /tmp only
      bin_tree "$stage/2" "$bin" nats-server
      ;;
    busybox)
      [[ -x /bin/busybox ]] || die "/bin/busybox not found (apt-get install -y busybox-static)"
      etc_files "$stage/1"
      mkdir -p "$stage/2/bin"
      cp /bin/busybox "$stage/2/bin/busybox"
      chmod 0755 "$stage/2/bin/busybox"
      local applet
      # Every applet as a symlink to /bin/busybox (sh among them), where busybox installs it.
      while read -r applet; do
        [[ $applet == bin/busybox ]] && continue
        mkdir -p "$stage/2/$(dirname "$applet")"
        ln -sfn /bin/busybox "$stage/2/$applet"
      done < <(/bin/busybox --list-full)
      ;;
    echo-python | echo-node)
      local src=python file=main.py
      [[ $name == echo-node ]] && src=node file=server.js
      l1=$(debian_base "$name")
      mkdir -p "$stage/2/app"
      cp "$root/examples/functions/$src/$file" "$stage/2/app/$file"
      chmod -R u=rwX,go=rX "$stage/2/app"
      ;;
    *) die "unknown image $name (known: ${ALL[*]})" ;;
  esac
  [[ -n ${l1:-} ]] || l1=$(layer "$stage/1")
  l2=$(layer "$stage/2")
  rm -rf "$stage"
  image "$name" "$l1" "$l2"
}

# push <name> <index digest>: pushes the layout under the version and the commit unless the registry has
# that index there already (crane uploads only the blobs the registry lacks).
push() {
  local ref="$REGISTRY/zeroscale/$1"
  if [[ $("$CRANE" digest "$ref:$VERSION" 2>/dev/null) == "$2" ]]; then
    log "$ref:$VERSION is up to date ($2)"
  else
    crane push "$work/$1" "$ref:$VERSION"
    log "pushed $ref:$VERSION ($2)"
  fi
  [[ $("$CRANE" digest "$ref:$COMMIT" 2>/dev/null) == "$2" ]] || crane tag "$ref:$VERSION" "$COMMIT"
}

# crane <args>: runs crane quietly, showing its output only when it fails.
crane() {
  local out
  out=$("$CRANE" "$@" 2>&1) || {
    printf '%s\n' "$out" >&2
    die "crane $* failed"
  }
}

# prune: after a build of every image, drops the blobs none of them (nor a cached Debian base) uses, so
# the store does not grow with each commit's binaries.
prune() {
  local keep="$work/.keep" name m d n=0
  {
    for name in "${ALL[@]}"; do
      d=$(jq -r '.manifests[0].digest[7:]' "$work/$name/index.json")
      echo "$d"
      m=$(jq -r '.manifests[0].digest[7:]' "$blobs/$d")
      echo "$m"
      jq -r '.config.digest[7:], .layers[].digest[7:]' "$blobs/$m"
    done
    # A base's cache file holds `<diff id> <descriptor>`.
    cat "$cache"/base-*.layer 2>/dev/null | cut -d' ' -f2- | jq -r '.digest[7:]' || true
  } | sort -u >"$keep"
  for d in "$blobs"/*; do
    [[ -e $d ]] || continue
    grep -qxF "${d##*/}" "$keep" || { rm -f "$d" && n=$((n + 1)); }
  done
  for d in "$cache"/layers/*; do
    [[ -e $d ]] || continue
    [[ -f $blobs/$(jq -r '.digest[7:]' "$d") ]] || rm -f "$d"
  done
  rm -f "$keep"
  ((n == 0)) || log "pruned $n unused blobs from $blobs"
}

# The images' cargo invocations run at once. Most of each is parallel compilation, but the activator's
# and the components' builds end in whole-program links (fat LTO, one codegen unit) that keep one core
# busy for minutes while the other waits; at once, the other builds use that core (docs/testing.md, on
# a cold machine's CI). Each writes its own log, shown whole when it ends, so lines do not interleave.
cargo_names=() cargo_pids=()
# cargo_start <name> <niceness> <command...>: starts one build in the background, its output in
# $work/cargo-<name>.log. The build on the longest path (the activator's) gets the lower niceness, so
# that the others mostly take what it leaves.
cargo_start() {
  local name=$1 niceness=$2
  shift 2
  log "cargo build $name: $*"
  (
    start=$(date +%s)
    rc=0
    CARGO_TARGET_DIR="$target" nice -n "$niceness" "$@" || rc=$?
    echo "images: cargo build $name ended with status $rc in $(($(date +%s) - start)) s"
    exit "$rc"
  ) >"$work/cargo-$name.log" 2>&1 &
  cargo_names+=("$name")
  cargo_pids+=($!)
}
# cargo_wait: waits for every started build in the order they started, printing each one's log on
# stderr; fails naming the builds that failed once all have ended.
cargo_wait() {
  local i failed=()
  for i in "${!cargo_pids[@]}"; do
    wait "${cargo_pids[$i]}" || failed+=("${cargo_names[$i]}")
    cat "$work/cargo-${cargo_names[$i]}.log" >&2
  done
  cargo_names=() cargo_pids=()
  ((${#failed[@]} == 0)) || die "images: cargo build failed: ${failed[*]} (their output is above)"
}

main() {
  local push=1 names=() name digest start
  start=$(date +%s)
  while (($#)); do
    case $1 in
      --describe) describe && return ;;
      --no-push) push=0 ;;
      -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' && return ;;
      -*) die "unknown option $1" ;;
      *) names+=("$1") ;;
    esac
    shift
  done
  ((${#names[@]})) || names=("${ALL[@]}")
  for name in "${names[@]}"; do [[ -n ${ENTRY[$name]:-} ]] || die "unknown image $name (known: ${ALL[*]})"; done
  command -v jq >/dev/null || die "jq not found"
  ((push == 0)) || [[ -x $CRANE ]] || die "crane not found at $CRANE (bash e2e/cluster/build.sh, or set CRANE)"

  VERSION=$(workspace_field version)
  LICENSE=$(workspace_field license)
  SOURCE=$(workspace_field repository)
  [[ -n $VERSION && -n $LICENSE && -n $SOURCE ]] ||
    die "Cargo.toml's [workspace.package] lacks version, license or repository"
  REVISION=$(git -C "$root" rev-parse HEAD)
  COMMIT=$(git -C "$root" rev-parse --short=12 HEAD)
  # The commit's time, so that the same commit always gives the same image digests.
  CREATED=$(date -u -d "@$(git -C "$root" log -1 --format=%ct HEAD)" +%Y-%m-%dT%H:%M:%SZ)
  mkdir -p "$work" "$blobs" "$cache/layers"
  # One build at a time per cache (staging files and the blob store are shared).
  exec 8>"$cache/.lock"
  flock -w 900 8 || die "another scripts/images.sh holds $cache/.lock"

  local crates=() rust=0 n
  for n in "${names[@]}"; do
    case $n in operator | activator | autoscaler | echo | echo-grpc) rust=1 ;; esac
  done
  if ((rust)) && [[ ${ZEROSCALE_IMAGES_SKIP_CARGO:-} != 1 ]]; then
    # Always one and the same cargo invocation, whichever images are asked for: cargo unifies the
    # dependencies' features over the packages of one invocation, so building only some of them (or
    # the cold-start bench driver alone) would compile most dependencies again with other features,
    # and change the binaries. The driver (bench/coldstart) adds no feature to any dependency of the
    # images' crates, so it is built here too: bench/coldstart/bench.sh then finds it built.
    # The activator, and the operator with the autoscaler, are further invocations, each always the
    # same one too, on their own profiles (see cargo_profile); the benches build the activator with
    # the same one (scripts/bench-lib.sh), so they find it built. The three run at once (cargo_start):
    # each profile has its own output directories, so none waits for another's lock.
    crates=(-p zeroscale-echo -p zeroscale-echo-grpc -p zeroscale-bench-coldstart)
    cargo_start data-plane 10 bash "$root/scripts/cargo-static.sh" --profile data-plane -p zeroscale-activator
    cargo_start control-plane 19 bash "$root/scripts/cargo-static.sh" --profile control-plane \
      -p zeroscale-operator -p zeroscale-autoscaler
    cargo_start release 19 "${CARGO:-cargo}" build --locked --release "${crates[@]}"
    cargo_wait
    # Their functions laid out in the order the real node ran them (scripts/static_link.rs): fails
    # when the linker ignored the order, says when an order file has gone stale, and fails then too
    # when ZEROSCALE_LINK_ORDER_MIN_FOUND (a fraction; .ci/run sets 0.9) is more than the share found.
    local rc
    for n in operator activator autoscaler; do
      rc=0
      python3 "$root/scripts/link_order.py" --check "$(cargo_bin "$n")" "$root/images/link-order/$n.txt" \
        ${ZEROSCALE_LINK_ORDER_MIN_FOUND:+"$ZEROSCALE_LINK_ORDER_MIN_FOUND"} >&2 || rc=$?
      case $rc in
        0) ;;
        2) die "images: images/link-order/$n.txt is stale (a dependency, feature or toolchain changed):" \
          "make it again with LINK_ORDER_COMPONENTS=$n bash scripts/link-order.sh (docs/images.md)" ;;
        *) die "images: $n was not linked in the order of images/link-order/$n.txt" ;;
      esac
    done
  fi
  for name in "${names[@]}"; do
    digest=$(build "$name")
    log "built zeroscale/$name $digest ($work/$name)"
    ((push == 0)) || push "$name" "$digest"
  done
  ((${#names[@]} != ${#ALL[@]})) || prune
  log "images done in $(($(date +%s) - start))s"
}

main "$@"
