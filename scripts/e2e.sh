#!/usr/bin/env bash
# End-to-end tests, one test at a time (the machine has 2 cores):
#   1. bring the local cluster up (idempotent) and make sure no Zeroscale is installed in it;
#   2. run every zeroscale-e2e test binary except `scenarios`: they start the components they need as
#      host processes, scoped to their own namespaces, and must not see an installed Zeroscale;
#   3. install Zeroscale from the chart (scripts/install.sh), run the `scenarios` suite against it
#      (e2e/tests/scenarios.rs, listed in docs/testing.md), then uninstall it;
#   4. always tear the cluster down, check that nothing of it is left, and prove up → down → up works.
# Exits with the tests' status (or 1 if a cluster or install step fails). Extra arguments go to every
# test binary (e.g. a test name filter).
set -uo pipefail
cd "$(dirname "$0")/.."

# Whatever happens (failure, Ctrl-C), the cluster goes down; down is idempotent and cheap when down.
trap 'make -s cluster-down >/dev/null 2>&1 || true' EXIT
trap 'echo "e2e: interrupted"; exit 130' INT TERM

make -s cluster-up || exit 1
rm -f .zeroscale/logs/timings.log
status=0

# Step 2: the binaries that bring their own components. A Zeroscale left installed (by `make up`, say)
# would reconcile and scale their Functions too, so it goes first.
bash scripts/uninstall.sh || status=1
targets=(--lib)
for test in e2e/tests/*.rs; do
  name=$(basename "$test" .rs)
  [[ $name == scenarios ]] || targets+=(--test "$name")
done
cargo test -p zeroscale-e2e "${targets[@]}" -- --test-threads=1 "$@" || status=1
cargo test -p zeroscale-e2e --doc -- "$@" || status=1

# Step 3: the scenario suite on the installed system.
if bash scripts/install.sh; then
  ZEROSCALE_E2E_INSTALLED=1 cargo test -p zeroscale-e2e --test scenarios -- --test-threads=1 "$@" || status=1
else
  echo "e2e: scripts/install.sh failed; the scenario suite did not run"
  status=1
fi
bash scripts/uninstall.sh || status=1

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
