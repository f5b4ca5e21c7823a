#!/usr/bin/env bash
# Runs every image pushed by scripts/images.sh straight from the registry with runc, no Kubernetes:
#
#   sudo bash images/smoke.sh [image...]     (as root; ZEROSCALE_REGISTRY, CRANE as for scripts/images.sh;
#                                            RUNC, default the local node's)
#
# For each image: `crane export` of its :<version> into an OCI bundle's rootfs, `runc spec` with the image
# config's entrypoint, cmd, env, working directory and user, the root filesystem read-only and the host's
# network namespace. Then:
#   - echo, echo-python, echo-node: start with a free $PORT, curl /healthz and a POST (the echo must name
#     the method, path and body), check the process runs as the image's user, then SIGTERM: it must exit 0;
#   - operator, activator, autoscaler: `--help` must print usage and exit 0;
#   - kubectl: `version --client` must exit 0; nats: `--version` must name the server;
#   - busybox: `sh -c` runs and `id -u` is 0.
# Prints one line per image and fails if any check fails.
set -euo pipefail
shopt -s inherit_errexit
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=e2e/cluster/lib.sh
source "$root/e2e/cluster/lib.sh"
REGISTRY="${ZEROSCALE_REGISTRY:-localhost:5000}"
CRANE="${CRANE:-$ZS_BIN/crane}"
VERSION=$(awk '/^\[workspace.package\]/ {w = 1; next} /^\[/ {w = 0}
  w && $1 == "version" {gsub(/"/, "", $3); print $3; exit}' "$root/Cargo.toml")
ALL=(operator activator autoscaler echo echo-python echo-node busybox kubectl nats)
# What a component image may hold besides its binary: users, groups, CA bundle, shared libraries, loader.
RUNTIME_FILES='etc/passwd|etc/group|etc/ssl/certs/ca-certificates\.crt|lib/x86_64-linux-gnu/lib[a-z_0-9+-]+\.so(\.[0-9]+)*|lib64/ld-linux-x86-64\.so\.2'
[[ $(id -u) == 0 ]] || die "runc needs root"
# The local node's runc, built from its pinned module (e2e/cluster/build.sh).
RUNC="${RUNC:-$ZS_RUNC}"
# The default is built when missing; a runc named by RUNC must exist.
if [[ $RUNC == "$ZS_BIN/runc" && ! -x $RUNC ]]; then
  bash "$root/e2e/cluster/build.sh" runc
fi
[[ -x $RUNC ]] || die "runc not found at $RUNC"
runc() { "$RUNC" "$@"; }
[[ -x $CRANE ]] || die "crane not found at $CRANE"
tmp=$(mktemp -d /tmp/zs-smoke.XXXXXX)
ids=()
cleanup() {
  local id
  for id in "${ids[@]}"; do runc delete --force "$id" >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# bundle <image> [args...]: an OCI bundle for the image in $tmp/<image>; extra args replace its cmd.
bundle() {
  local name=$1 dir="$tmp/$1" ref="$REGISTRY/zeroscale/$name:$VERSION" config
  shift
  # Read first, so a registry that is down is named rather than failing runc later.
  config=$("$CRANE" config "$ref") || die "cannot read $ref (is the registry up? make cluster-up, then bash scripts/images.sh)"
  config=$(jq -c .config <<<"$config")
  mkdir -p "$dir/rootfs"
  "$CRANE" export "$ref" - | tar -x --numeric-owner -C "$dir/rootfs"
  (cd "$dir" && runc spec)
  local user=${USER_OVERRIDE:-$(jq -r '.User // "0:0"' <<<"$config")}
  jq --argjson c "$config" --argjson extra "$(printf '%s\n' "$@" | jq -Rn '[inputs | select(. != "")]')" \
    --argjson uid "${user%%:*}" --argjson gid "${user##*:}" --argjson port "${PORT:-0}" \
    '.process.terminal = false
     | .process.args = (($c.Entrypoint // []) + (if ($extra | length) > 0 then $extra else ($c.Cmd // []) end))
     | .process.env = (($c.Env // []) + (if $port > 0 then ["PORT=\($port)"] else [] end))
     | .process.cwd = ($c.WorkingDir // "/" | if . == "" then "/" else . end)
     | .process.user = {uid: $uid, gid: $gid}
     | .root.readonly = true
     | .linux.namespaces |= map(select(.type != "network"))' \
    "$dir/config.json" >"$dir/config.json.new"
  mv "$dir/config.json.new" "$dir/config.json"
}

# run_once <image> <args...>: runs to completion; prints its output; fails on a non-zero exit.
run_once() {
  local name=$1 id="zs-smoke-$1-$$"
  shift
  bundle "$name" "$@"
  ids+=("$id")
  runc run --bundle "$tmp/$name" "$id" </dev/null 2>&1
}

# only_files <image> <regex>: every regular file and symlink of the image's root filesystem matches the
# (extended, anchored) regex; prints how many there are.
only_files() {
  local extra
  extra=$(find "$tmp/$1/rootfs" \( -type f -o -type l \) -printf '%P\n' | grep -Ev "^($2)\$" || true)
  [[ -z $extra ]] || die "$1: unexpected files in the image: $(tr '\n' ' ' <<<"$extra")"
  find "$tmp/$1/rootfs" \( -type f -o -type l \) | wc -l
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# serve <image>: starts the server, checks it answers as an echo and runs as the image's user, stops it.
serve() {
  local name=$1 id="zs-smoke-$1-$$" port pid out uid want n=""
  port=$(free_port)
  PORT=$port bundle "$name"
  ids+=("$id")
  # In the foreground of a background job, so that `wait` gives the container's exit code.
  runc run --bundle "$tmp/$name" --pid-file "$tmp/$name.pid" "$id" </dev/null >"$tmp/$name.log" 2>&1 &
  local job=$!
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || die "$name: /healthz does not answer ($(cat "$tmp/$name.log"))"
  out=$(curl -fsS -X POST --data 'hello from runc' "http://127.0.0.1:$port/smoke/path")
  jq -e '.method == "POST" and .path == "/smoke/path" and .body == "hello from runc"' <<<"$out" >/dev/null ||
    die "$name: unexpected echo: $out"
  pid=$(cat "$tmp/$name.pid")
  uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
  want=$(jq -r '.process.user.uid' "$tmp/$name/config.json")
  [[ $uid == "$want" ]] || die "$name: runs as uid $uid, want $want"
  runc kill "$id" TERM
  local code=0
  wait "$job" || code=$?
  ((code == 0)) || die "$name: exit code $code after SIGTERM ($(cat "$tmp/$name.log"))"
  [[ $name != echo ]] || n=", $(only_files echo "$RUNTIME_FILES|usr/local/bin/zeroscale-echo") files, no others"
  echo "ok  $name: answered on :$port as uid $uid, exited 0 on SIGTERM${n:-}"
}

main() {
  local names=("$@") name out n
  ((${#names[@]})) || names=("${ALL[@]}")
  for name in "${names[@]}"; do
    case $name in
      echo | echo-python | echo-node) serve "$name" ;;
      operator | activator | autoscaler)
        out=$(run_once "$name" --help) || die "$name --help failed: $out"
        grep -q '^Usage:' <<<"$out" || die "$name --help printed no usage: $out"
        n=$(only_files "$name" "$RUNTIME_FILES|usr/local/bin/zeroscale-$name")
        echo "ok  $name: --help exits 0 ($(grep -m1 '^Usage:' <<<"$out")); $n files, no others"
        ;;
      kubectl)
        out=$(run_once kubectl version --client) || die "kubectl version --client failed: $out"
        n=$(only_files kubectl "$RUNTIME_FILES|usr/local/bin/kubectl")
        echo "ok  kubectl: $(head -1 <<<"$out"); $n files, no others"
        ;;
      nats)
        out=$(run_once nats --version) || die "nats-server --version failed: $out"
        grep -q '^nats-server: v' <<<"$out" || die "nats: unexpected --version output: $out"
        n=$(only_files nats "etc/passwd|etc/group|etc/ssl/certs/ca-certificates\\.crt|usr/local/bin/nats-server")
        echo "ok  nats: $out; $n files, no others"
        ;;
      busybox)
        # shellcheck disable=SC2016 # expanded by the image's shell
        out=$(run_once busybox sh -c 'echo hello from $(id -u)') || die "busybox sh failed: $out"
        [[ $out == "hello from 0" ]] || die "busybox: unexpected output $out"
        echo "ok  busybox: sh -c ran: $out"
        ;;
      *) die "unknown image $name (known: ${ALL[*]})" ;;
    esac
  done
}

main "$@"
