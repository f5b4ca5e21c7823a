#!/usr/bin/env bash
# End-to-end tests: bring the local cluster up (idempotent), run the zeroscale-e2e suite one test at a
# time (the machine has 2 cores), then always tear the cluster down, check that nothing of it is left,
# and prove up → down → up works. Exits with the tests' status (or 1 if the cluster steps fail).
# Extra arguments go to the test binaries (e.g. a test name filter).
set -uo pipefail
cd "$(dirname "$0")/.."

# Whatever happens (failure, Ctrl-C), the cluster goes down; down is idempotent and cheap when down.
trap 'make -s cluster-down >/dev/null 2>&1 || true' EXIT
trap 'echo "e2e: interrupted"; exit 130' INT TERM

make -s cluster-up || exit 1
rm -f .zeroscale/logs/timings.log
cargo test -p zeroscale-e2e -- --test-threads=1 "$@"
status=$?
if [[ -s .zeroscale/logs/timings.log ]]; then
  echo "timings recorded by the tests:"
  sed 's/^/  /' .zeroscale/logs/timings.log
fi

# Nothing of the cluster may survive `make cluster-down`; then it must come up again and go down clean.
make -s cluster-down && bash e2e/cluster/check-clean.sh || status=1
start=$(date +%s%N)
if make -s cluster-up; then
  echo "TIMING cached bring-up after down (incl. cargo's up-to-date check): $((($(date +%s%N) - start) / 1000000)) ms"
else
  status=1
fi
make -s cluster-down && bash e2e/cluster/check-clean.sh || status=1
exit "$status"
