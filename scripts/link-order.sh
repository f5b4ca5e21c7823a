#!/usr/bin/env bash
# link-order.sh: regenerates images/link-order/<component>.txt, the order the static link lays out the
# functions each component runs (scripts/static_link.rs, docs/images.md "The link order").
#
# Runs the installed components on the local cluster's real node under callgrind (valgrind's tool,
# which is a static binary, mounted from the host), drives a small cold-start bench through them
# (cold starts, a burst from zero, scale-down, idle), puts the Deployments back, and turns the
# profiles their exits wrote into the order files (scripts/link_order.py), using the unstripped
# binaries the images were made from. Needs the cluster up with Zeroscale installed from `make images`
# of the current sources (`make cluster-up && make images && bash scripts/install.sh`) and valgrind
# (Debian's package). Then puts the activator's request path first (`bench/activator/profile.sh order`).
# The functions' names are stable while Cargo.lock, the toolchain and the profiles stay the same;
# a name the link no longer finds is skipped, so an old order file costs nothing but its benefit.
# Regenerate after a toolchain or dependency update.
#
# LINK_ORDER_COMPONENTS: the components to profile and rewrite (space-separated; default all three).
# A dependency added to one crate renames only that crate's functions, so only its file needs making
# again; the others keep running as installed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source e2e/cluster/lib.sh
source scripts/bench-lib.sh # bench_admin_urls
export KUBECONFIG=$ZS_KUBECONFIG PATH="$ZS_BIN:$PATH"
kubectl() { "$ZS_BIN/kubectl" --kubeconfig "$ZS_KUBECONFIG" "$@"; }
ns=zeroscale-system
read -r -a components <<< "${LINK_ORDER_COMPONENTS:-operator activator autoscaler}"
for c in "${components[@]}"; do
  [[ $c == operator || $c == activator || $c == autoscaler ]] ||
    die "link-order: LINK_ORDER_COMPONENTS names $c (operator, activator or autoscaler)"
done
vg=${VALGRIND_LIBEXEC:-/usr/libexec/valgrind}
[[ -x $vg/callgrind-amd64-linux ]] || die "link-order: no $vg/callgrind-amd64-linux (apt-get install valgrind)"
bash e2e/cluster/status.sh --check || die "link-order: the local cluster is down (make cluster-up)"
target=${CARGO_TARGET_DIR:-$root/target}
[[ $target == /* ]] || target="$root/$target"
static=$target/$(bash scripts/cargo-static.sh --triple)
declare -A binary=(
  [operator]=$static/control-plane/zeroscale-operator
  [activator]=$static/data-plane/zeroscale-activator
  [autoscaler]=$static/control-plane/zeroscale-autoscaler
)
for c in "${components[@]}"; do
  [[ -x ${binary[$c]} ]] || die "link-order: ${binary[$c]} not built (make images)"
done
driver=$target/release/coldstart-bench
[[ -x $driver ]] || die "link-order: $driver not built (make images builds it)"
profiles=$(mktemp -d /tmp/zeroscale-link-order.XXXXXX)
# The components run as user 65532 and write their profiles here.
chmod 1777 "$profiles"

exec 8>"$ZS_STATE/.install.lock"
flock -w 900 8 || die "cannot take $ZS_STATE/.install.lock: another install runs"
restore() {
  local status=$?
  for c in "${components[@]}"; do
    [[ -s $profiles/deploy-$c.json ]] && kubectl replace -f "$profiles/deploy-$c.json" > /dev/null || true
  done
  kubectl label namespace "$ns" --overwrite pod-security.kubernetes.io/enforce=restricted > /dev/null || true
  for c in "${components[@]}"; do
    kubectl -n "$ns" rollout status "deployment/zeroscale-$c" --timeout=180s > /dev/null || true
  done
  exit "$status"
}
trap restore EXIT INT TERM
# The Deployments as installed, put back exactly (a rollback or a chart upgrade could keep the
# profiling fields).
for c in "${components[@]}"; do
  kubectl -n "$ns" get "deployment/zeroscale-$c" -o json | python3 -c 'import json, sys
d = json.load(sys.stdin)
d.pop("status", None)
for k in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
    d["metadata"].pop(k, None)
json.dump(d, sys.stdout)' > "$profiles/deploy-$c.json"
done

# The profile run needs host paths, which the namespace's restricted pod security refuses.
kubectl label namespace "$ns" --overwrite pod-security.kubernetes.io/enforce=privileged > /dev/null
for c in "${components[@]}"; do
  # Under callgrind a component runs tens of times slower and needs several times its memory: no
  # liveness probe, a higher memory limit.
  kubectl -n "$ns" patch "deployment/zeroscale-$c" --type=strategic -p "$(cat <<JSON
{"spec": {"template": {"spec": {
  "volumes": [{"name": "valgrind", "hostPath": {"path": "$vg"}}, {"name": "profiles", "hostPath": {"path": "$profiles"}}],
  "containers": [{
    "name": "$c",
    "command": ["/valgrind/callgrind-amd64-linux", "--dump-instr=yes", "--callgrind-out-file=/profiles/$c.%q{HOSTNAME}", "/usr/local/bin/zeroscale-$c"],
    "env": [{"name": "VALGRIND_LIB", "value": "/valgrind"}, {"name": "TMPDIR", "value": "/profiles"}, {"name": "VALGRIND_LAUNCHER", "value": "/valgrind/callgrind-amd64-linux"}],
    "volumeMounts": [{"name": "valgrind", "mountPath": "/valgrind", "readOnly": true}, {"name": "profiles", "mountPath": "/profiles"}],
    "livenessProbe": null,
    "resources": {"limits": {"memory": "2Gi"}}
  }]
}}}}
JSON
)" > /dev/null 2>&1
done
for c in "${components[@]}"; do
  log "link-order: $c starting under callgrind"
  kubectl -n "$ns" rollout status "deployment/zeroscale-$c" --timeout=600s > /dev/null
done

# The life the order is for: cold starts, a burst from zero, scale-down and idle (the driver deletes
# its namespace at the end), as the cold-start bench drives it.
# shellcheck disable=SC1091
source "$ZS_STATE/activator.env"
ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null || true
"$driver" --activator "$ZEROSCALE_ACTIVATOR" \
  --activator-admin "$(bench_admin_urls activator)" --autoscaler-admin "$(bench_admin_urls autoscaler)" \
  --cold-starts "${LINK_ORDER_COLD_STARTS:-4}" --burst "${LINK_ORDER_BURST:-200}" \
  --image localhost:5000/zeroscale/echo:0.1.0 --out "$profiles/driver" > "$profiles/driver.out" 2>&1 ||
  log "link-order: the driver failed (see $profiles/driver.out); the profiles still cover what ran"
log "link-order: idle for ${LINK_ORDER_IDLE_SECONDS:-60} s"
sleep "${LINK_ORDER_IDLE_SECONDS:-60}"

# Putting the Deployments back ends the profiled pods; callgrind writes each profile as its process
# exits.
trap - EXIT INT TERM
restore_status=0
(restore) || restore_status=$?
# The profiled pods write their profiles as they end, after their successors are ready.
for _ in $(seq 1 180); do
  # Read whole, not piped into grep -q (a closed pipe would fail the pipeline: pipefail).
  commands=$(kubectl get pods -n "$ns" -o jsonpath='{.items[*].spec.containers[0].command}')
  [[ $commands == *callgrind* ]] || break
  sleep 1
done
mkdir -p images/link-order
for c in "${components[@]}"; do
  mapfile -t files < <(ls "$profiles/$c".* 2>/dev/null)
  ((${#files[@]})) || die "link-order: no profile of $c in $profiles"
  python3 scripts/link_order.py "${binary[$c]}" "images/link-order/$c.txt" "${files[@]}"
done
# The activator's request path first: profiled on loopback as the hop bench drives it, where the
# node's profile above mixes it with start-up, the API's JSON and TLS.
if [[ " ${components[*]} " == *" activator "* ]]; then
  bash bench/activator/profile.sh order "${binary[activator]}"
fi
log "link-order: wrote images/link-order/ for ${components[*]} (profiles in $profiles)"
exit "$restore_status"
