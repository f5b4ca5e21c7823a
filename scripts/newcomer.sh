#!/usr/bin/env bash
# The README's promise to a newcomer, checked as written (run by scripts/e2e.sh, so by `make test`):
#   1. `make up` succeeds and prints a curl;
#   2. the components and hello run as containers from the local registry (`crictl ps`);
#   3. the printed curl, run as printed, answers 200 from a cold start (hello is at zero before it);
#   4. `make down` succeeds (scripts/e2e.sh then checks that nothing is left).
# Exits non-zero naming the step that failed.
set -euo pipefail
cd "$(dirname "$0")/.."
source e2e/cluster/lib.sh

# "<pod> <container> <image as the pod asked for it>" for every running container.
running_containers() {
  crictl ps -o json | jq -r '.containers[] | "\(.labels["io.kubernetes.pod.name"]) \(.metadata.name) \(
    if (.image.userSpecifiedImage // "") != "" then .image.userSpecifiedImage else .image.image end)"'
}

out=$(mktemp)
trap 'rm -f "$out"' EXIT

make -s up 2>&1 | tee "$out" || die "newcomer: make up failed"

# The curl line exactly as printed (indented in the message), without its leading spaces.
curl_line=$(grep -E '^\s+curl ' "$out" | head -n1 | sed -E 's/^\s+//')
[[ -n $curl_line ]] || die "newcomer: make up printed no curl line"
log "newcomer: running the printed command: $curl_line"

# shellcheck disable=SC1091
source "$ZS_STATE/env"
# hello's pods belong to its revision's Deployment, `hello-<hash>`: the sum over its revisions.
replicas=$(kubectl get deployment -l zeroscale.dev/function=hello -o jsonpath='{.items[*].spec.replicas}' |
  tr ' ' '\n' | awk 'NF { n++; s += $1 } END { print (n ? s : "?") }')
[[ $replicas == 0 ]] || die "newcomer: hello should be at zero before the curl (replicas=$replicas)"

containers=$(running_containers)
for name in operator activator autoscaler; do
  grep -qE "^\\S+ $name localhost:5000/zeroscale/$name[:@]" <<<"$containers" \
    || die "newcomer: crictl ps lists no $name container from localhost:5000: $containers"
done

# The printed line plus options that only report (status code to stdout, body to a file); the
# request itself is what the newcomer types.
body=$(mktemp)
code=$(eval "$curl_line -sS -o '$body' -w '%{http_code}' --max-time 120")
log "newcomer: the curl answered $code: $(head -c 200 "$body")"
rm -f "$body"
[[ $code == 200 ]] || die "newcomer: the printed curl answered $code, not 200"

containers=$(running_containers)
grep -qE "^hello-\\S+ \\S+ localhost:5000/zeroscale/echo[:@]" <<<"$containers" \
  || die "newcomer: after the cold start crictl ps lists no hello container from localhost:5000: $containers"

make -s down || die "newcomer: make down failed"
log "newcomer: make up → printed curl (200, cold) → make down: ok"
