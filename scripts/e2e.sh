#!/usr/bin/env bash
# End-to-end tests: bring the local cluster up (idempotent), run the zeroscale-e2e suite one test at a
# time (the machine has 2 cores), then always tear the cluster down, check that nothing of it is left,
# and prove up → down → up works. Exits with the tests' status (or the first failure after them).
set -uo pipefail
cd "$(dirname "$0")/.."
cluster=e2e/cluster

status=0
teardown() {
  make -s cluster-down || status=${status:-1}
}
trap 'teardown' EXIT INT TERM

make -s cluster-up || exit 1
cargo test -p zeroscale-e2e -- --test-threads=1 "$@"
status=$?
if [[ -s .zeroscale/logs/timings.log ]]; then
  echo "timings recorded by the tests:"
  sed 's/^/  /' .zeroscale/logs/timings.log
fi

# Nothing of the cluster may survive `make cluster-down`; then it must come up again and go down clean.
for round in 1 2; do
  make -s cluster-down || status=1
  bash "$cluster/check-clean.sh" || status=1
  [[ $round == 2 ]] && break
  start=$(date +%s%N)
  if make -s cluster-up; then
    echo "TIMING cached bring-up (up after down): $((($(date +%s%N) - start) / 1000000)) ms"
  else
    status=1
  fi
done
trap - EXIT INT TERM
exit "$status"
