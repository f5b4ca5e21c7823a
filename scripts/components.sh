#!/usr/bin/env bash
# The earlier way to run Zeroscale locally: the three components as host processes next to the local
# cluster, with the admin kubeconfig. `make up` now installs the Helm chart (scripts/install.sh); this
# file is kept for debugging a component outside the cluster (source it, then `start_components`) and so
# install.sh/uninstall.sh can stop components started this way. Sourced, not run directly.
#
# Addresses: the activator listens on the bridge address, so both the host and pods reach it; the
# autoscaler's signal endpoint and every admin port stay on loopback.

ZS_COMPONENTS="$ZS_RUN/components"
ZS_ACTIVATOR_EXTERNAL="$ZS_BRIDGE_IP:8080"
ZS_ACTIVATOR_INTERNAL="$ZS_BRIDGE_IP:8081"
ZS_ACTIVATOR_ADMIN="127.0.0.1:9191"
ZS_BROKER_ADDR="$ZS_BRIDGE_IP:8082"
ZS_AUTOSCALER_EVENTS="127.0.0.1:8090"
ZS_AUTOSCALER_ADMIN="127.0.0.1:9192"
ZS_OPERATOR_ADMIN="127.0.0.1:9190"

# start_component NAME ARGS...: runs target/debug/zeroscale-NAME in its own session, logs to .zeroscale/logs.
start_component() {
  local name=$1
  shift
  local exe="${CARGO_TARGET_DIR:-$ZS_ROOT/target}/debug/zeroscale-$name"
  [[ -x $exe ]] || die "$exe is missing: run 'make build'"
  stop_component "$name"
  mkdir -p "$ZS_COMPONENTS" "$ZS_LOGS"
  KUBECONFIG="$ZS_KUBECONFIG" RUST_LOG="${RUST_LOG:-info}" \
    setsid "$exe" "$@" >"$ZS_LOGS/component-$name.log" 2>&1 </dev/null &
  echo $! >"$ZS_COMPONENTS/$name.pid"
  log "started $name (pid $!, log .zeroscale/logs/component-$name.log)"
}

# stop_component NAME: SIGTERM, then SIGKILL after 10 s.
stop_component() {
  local pidfile="$ZS_COMPONENTS/$1.pid" pid
  [[ -f $pidfile ]] || return 0
  pid=$(<"$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# wait_http URL WHAT: waits up to 60 s for URL to answer 200.
wait_http() {
  for _ in $(seq 600); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  die "$2 did not become ready ($1)"
}

start_components() {
  kubectl apply --server-side -f "$ZS_ROOT/crds/yaml/" >/dev/null
  kubectl wait --for condition=established --timeout=60s crd/functions.zeroscale.dev >/dev/null
  kubectl create namespace zeroscale-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  start_component autoscaler --events-addr "$ZS_AUTOSCALER_EVENTS" --admin-addr "$ZS_AUTOSCALER_ADMIN" \
    --activator-ready-url "http://$ZS_ACTIVATOR_ADMIN/ready"
  local broker=()
  # The broker ingress is newer than the activator's other ports; pass it when the binary has it.
  if "${CARGO_TARGET_DIR:-$ZS_ROOT/target}/debug/zeroscale-activator" --help 2>/dev/null | grep -q -- --broker-addr; then
    broker=(--broker-addr "$ZS_BROKER_ADDR")
  fi
  start_component activator --external-addr "$ZS_ACTIVATOR_EXTERNAL" \
    --internal-addr "$ZS_ACTIVATOR_INTERNAL" --admin-addr "$ZS_ACTIVATOR_ADMIN" \
    --autoscaler-url "http://$ZS_AUTOSCALER_EVENTS/" "${broker[@]}"
  start_component operator --admin-addr "$ZS_OPERATOR_ADMIN"
  wait_http "http://$ZS_OPERATOR_ADMIN/ready" operator
  wait_http "http://$ZS_ACTIVATOR_ADMIN/ready" activator
  wait_http "http://$ZS_AUTOSCALER_ADMIN/ready" autoscaler
}

stop_components() {
  local name
  for name in operator activator autoscaler; do stop_component "$name"; done
}

# components_healthy: every component runs from its pid file and answers ready.
components_healthy() {
  local name url
  for name in operator activator autoscaler; do
    [[ -f $ZS_COMPONENTS/$name.pid ]] && pid_alive "$(<"$ZS_COMPONENTS/$name.pid")" || return 1
  done
  for url in "$ZS_OPERATOR_ADMIN" "$ZS_ACTIVATOR_ADMIN" "$ZS_AUTOSCALER_ADMIN"; do
    curl -fsS -o /dev/null --max-time 2 "http://$url/ready" 2>/dev/null || return 1
  done
}

# write_activator_env: the addresses clients use, in .zeroscale/activator.env.
write_activator_env() {
  printf 'ZEROSCALE_ACTIVATOR=http://%s\nZEROSCALE_BROKER=http://%s\n' \
    "$ZS_ACTIVATOR_EXTERNAL" "$ZS_BROKER_ADDR" >"$ZS_STATE/activator.env"
}
