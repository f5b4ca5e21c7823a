#!/usr/bin/env bash
# Helpers for benchmark sections (sourced). Tools come from package registries only.

# The activator binary a section runs: BENCH_ACTIVATOR_BIN (another build, an A/B against an older
# commit; nothing is built), else the image's build (Cargo's `data-plane` profile, linked statically
# by scripts/cargo-static.sh, as scripts/images.sh builds it), built here if needed; prints its path.
bench_activator_bin() {
  if [[ -n ${BENCH_ACTIVATOR_BIN:-} ]]; then
    echo "$BENCH_ACTIVATOR_BIN"
    return
  fi
  bash scripts/cargo-static.sh -q --profile data-plane -p zeroscale-activator >&2
  echo "${CARGO_TARGET_DIR:-target}/$(bash scripts/cargo-static.sh --triple)/data-plane/zeroscale-activator"
}

# Installs oha (the load generator, from crates.io) into $BENCH_TOOLS once; prints its path.
bench_oha() {
  local bin=$BENCH_TOOLS/bin/oha
  if [[ ! -x $bin ]]; then
    echo "bench: installing oha into $BENCH_TOOLS (once)" >&2
    cargo install oha --locked --version 1.16.0 --root "$BENCH_TOOLS" >&2
  fi
  echo "$bin"
}

# Builds the images of these sources (`make -s images`, a no-op push when nothing changed) and prints
# the path of the cold-start driver, which scripts/images.sh builds in the same cargo invocation as
# the images' crates (a release build: its client overhead is part of every latency it measures).
bench_coldstart_driver() {
  make -s images >&2
  local target=${CARGO_TARGET_DIR:-$PWD/target}
  [[ $target == /* ]] || target="$PWD/$target"
  [[ -x $target/release/coldstart-bench ]] ||
    die "coldstart: $target/release/coldstart-bench not built (scripts/images.sh builds it)"
  echo "$target/release/coldstart-bench"
}

# Installs Debian package $1 (as root, or with sudo), its output on stderr.
bench_apt_install() {
  local sudo=""
  [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$1" >&2
}

# Ensures nginx is installed (Debian package nginx-light); prints its path.
bench_nginx() {
  if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
    bench_apt_install nginx-light
  fi
  command -v nginx 2>/dev/null || echo /usr/sbin/nginx
}

# Ensures llvm-profdata is installed (Debian package llvm-19; it reads the raw profiles of the
# toolchain's LLVM and writes an indexed profile rustc reads); prints its path.
bench_llvm_profdata() {
  local bin=/usr/lib/llvm-19/bin/llvm-profdata
  [[ -x $bin ]] || bench_apt_install llvm-19
  echo "$bin"
}

# Raises the open-files limit for many connections: to 65,536, or as far as the hard limit allows.
bench_raise_nofile() {
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
}

# Resident set size of process $1 in KiB.
bench_rss_kib() {
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# Waits until `curl -fsS $1` succeeds (BENCH_WAIT_SECONDS, default 10 s, at most).
bench_wait_http() {
  for _ in $(seq 1 $((${BENCH_WAIT_SECONDS:-10} * 20))); do
    curl -fsS -o /dev/null "$@" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: $1 did not come up" >&2
  return 1
}

# bench_admin_urls <component>: the admin endpoints (/metrics) of the installed component's running
# pods, by pod IP (the host routes to the pod network), comma-separated. Pods still terminating (preStop
# sleep, drain) are left out. Needs the caller's `kubectl` (pointed at the local cluster) and `die`.
bench_admin_urls() {
  local ips port ip urls=()
  ips=$(kubectl get pods -n zeroscale-system -l "app.kubernetes.io/component=$1" \
    --field-selector status.phase=Running -o json |
    python3 -c 'import json, sys; print(" ".join(p["status"]["podIP"] for p in json.load(sys.stdin)["items"] if not p["metadata"].get("deletionTimestamp") and p["status"].get("podIP")))')
  port=$(kubectl get pods -n zeroscale-system -l "app.kubernetes.io/component=$1" -o \
    jsonpath='{.items[0].spec.containers[0].ports[?(@.name=="admin")].containerPort}')
  [[ -n $ips ]] || die "bench: no running $1 pod in zeroscale-system"
  for ip in $ips; do urls+=("http://$ip:${port:-9090}"); done
  (IFS=,; echo "${urls[*]}")
}
