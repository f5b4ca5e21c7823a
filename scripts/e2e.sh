#!/usr/bin/env bash
# End-to-end tests on the real local node (kubelet, containerd, kube-proxy, CoreDNS), one test at a
# time (the machine has 2 cores):
#   1. bring the local cluster up (idempotent), build and push the images (`make images`), run the
#      node's smoke test (e2e/cluster/smoke.sh), and make sure no Zeroscale is installed;
#   2. run every zeroscale-e2e test binary except the ones that need the install (`scenarios`,
#      `images`): they start the components they need as host processes, scoped to their own
#      namespaces, and must not see an installed Zeroscale; their pods run the registry's images;
#   3. install Zeroscale from the chart (scripts/install.sh, the components' registry images), run the
#      `scenarios` suite (e2e/tests/scenarios.rs, listed in docs/testing.md), `event_stores`, which
#      upgrades the install to the JetStream store and back to memory itself (ZEROSCALE_EVENT_STORE of
#      scripts/install.sh), and `metering`, then start the `predictive` suite (9½ minutes) in the
#      background and run the rest (`images`, `protocols`, revisions, rollout, throttle) beside it;
#      wait for `predictive`, then uninstall;
#   4. run the README's newcomer path (scripts/newcomer.sh: `make up`, the printed curl answers 200 from
#      a cold start, `make down`);
#   5. always tear the cluster down, check that nothing of it is left, and prove up → down → up works.
# Exits 1 if any step failed (a test, a cluster or install step, a check). Extra arguments go to every
# test binary (e.g. a test name filter). Each step prints its duration (`TIMING e2e step ...`). The
# script ends by naming every step that failed, with the scripts' failed checks, the failed tests and
# their panics, so that the last lines of a CI log say what broke (a CI report may show only those).
set -uo pipefail
cd "$(dirname "$0")/.."

# Whatever happens (failure, Ctrl-C), the cluster goes down; down is idempotent and cheap when down.
trap 'make -s cluster-down >/dev/null 2>&1 || true' EXIT
trap 'echo "e2e: interrupted"; exit 130' INT TERM

step_start=$(date +%s)
step() { # name: prints how long the step since the previous call took
  local now
  now=$(date +%s)
  echo "TIMING e2e step $1: $((now - step_start)) s"
  step_start=$now
}
failed_steps=()
failed() { # step: records a failed step for the closing summary
  failed_steps+=("$1")
}
# This run's logs for the closing summary. Not in .zeroscale/logs: a fresh cluster (up → down → up,
# at the end) moves that to logs.prev and starts it empty, and the summary would read nothing.
e2e_logs=.zeroscale/e2e
mkdir -p "$e2e_logs"
# The output of the steps that are scripts (smoke, newcomer, the clean check) is also kept here, for
# the closing summary: their failed checks print `FAIL: ...` or `error: ...` lines.
steps_log=$e2e_logs/steps.log
: >"$steps_log"
logged() { # file command...: runs the command, keeping its output in the file too
  local file=$1
  shift
  "$@" 2>&1 | tee -a "$file"
}
run_script() { logged "$steps_log" "$@"; }
make -s cluster-up || exit 1
step cluster-up
make -s images || exit 1
step images
if [[ -f e2e/cluster/smoke.sh ]]; then
  run_script bash e2e/cluster/smoke.sh || failed smoke
  step smoke
fi
rm -f .zeroscale/logs/timings.log
# Every test binary's output is also kept here, for the closing summary.
tests_log=$e2e_logs/tests.log
: >"$tests_log"
run_tests() { logged "$tests_log" cargo test "$@"; } # cargo test arguments

# Step 2: the binaries that bring their own components. A Zeroscale left installed (by `make up`, say)
# would reconcile and scale their Functions too, so it goes first.
# event_stores switches the install's event store to JetStream and back (it leaves the default,
# memory). predictive (9½ minutes, mostly asleep, a namespace and a Function of its own) runs in the
# background beside every later suite; it starts once the suites that restart a component are done:
# scenarios, whose churn and ha tests kill the autoscaler; event_stores, which kills activator pods
# and rolls them through two upgrades (an activator gone within a second of forwarding a predicted
# request takes that second's stats report with it, and the autoscaler never learns that idle time:
# CI at session 30); and metering, which rolls the activators twice (once to point them at its usage
# sink, once to restore them) and restarts one (a roll at a predicted request kept the function warm
# 14 s longer than the gaps around it: CI at stop 42; the cause, the autoscaler's readiness probe
# held by a draining activator, is mended, see docs/autoscaler.md, but a restart beside a predicted
# request stays outside what the test controls). It is waited for before the uninstall.
installed_suites=(scenarios event_stores metering predictive images protocols revisions rollout throttle)
background_suite=predictive
# Suites this script does not run, each with its reason here and in docs/testing.md (none at present).
not_run=()
bash scripts/uninstall.sh || failed "uninstall before the host-process tests"
targets=(--lib)
for test in e2e/tests/*.rs; do
  name=$(basename "$test" .rs)
  [[ " ${installed_suites[*]} ${not_run[*]} " == *" $name "* ]] || targets+=(--test "$name")
done
run_tests --no-fail-fast -p zeroscale-e2e "${targets[@]}" -- --test-threads=1 "$@" || failed host-process-tests
run_tests -p zeroscale-e2e --doc -- "$@" || failed doc-tests
step host-process-tests

# Step 3: the suites on the installed system.
((${#not_run[@]} == 0)) || echo "e2e: not run: ${not_run[*]} (see docs/testing.md)"
if bash scripts/install.sh; then
  step install
  background_pid=
  background_log=$e2e_logs/$background_suite.log
  for suite in "${installed_suites[@]}"; do
    if [[ $suite == "$background_suite" ]]; then
      # The test binary runs by itself, not under `cargo test`, which would hold the build
      # directory's lock for as long as it runs and so keep the next suites from building.
      background_bin=$(cargo test -p zeroscale-e2e --test "$suite" --no-run --message-format=json |
        jq -r "select(.profile.test and .target.name == \"$suite\") | .executable // empty")
      if [[ -x $background_bin ]]; then
        (cd e2e && ZEROSCALE_E2E_INSTALLED=1 "$background_bin" --test-threads=1 --nocapture "$@") \
          >"$background_log" 2>&1 &
        background_pid=$!
        step "$suite (started in the background)"
      else
        echo "e2e: the $suite suite did not build"
        failed "$suite (did not build)"
      fi
      continue
    fi
    ZEROSCALE_E2E_INSTALLED=1 run_tests -p zeroscale-e2e --test "$suite" -- --test-threads=1 "$@" || failed "$suite"
    step "$suite"
  done
  if [[ -n $background_pid ]]; then
    background_status=0
    wait "$background_pid" || background_status=1
    echo "e2e: the $background_suite suite (in the background):"
    sed 's/^/  /' "$background_log"
    if ((background_status != 0)); then
      failed "$background_suite"
      # What the autoscaler saw decides most of this suite; its pods' restarts and log lines go
      # with the failure, before the uninstall removes them.
      echo "e2e: the $background_suite suite failed; the components' pods and the autoscaler's log:"
      (. .zeroscale/env && kubectl -n zeroscale-system get pods -o wide &&
        kubectl -n zeroscale-system logs deploy/zeroscale-autoscaler --tail=2000 |
        grep -E "$background_suite|leadership|lease|prediction|panic|ERROR|WARN" | tail -n 120) 2>&1 |
        sed 's/^/  /'
    fi
    step "$background_suite (waited for)"
  fi
else
  echo "e2e: scripts/install.sh failed; the installed suites (${installed_suites[*]}) did not run"
  failed install
fi
bash scripts/uninstall.sh || failed uninstall
step uninstall

if [[ -s .zeroscale/logs/timings.log ]]; then
  echo "timings recorded by the tests:"
  sed 's/^/  /' .zeroscale/logs/timings.log
fi

# Step 4: the README's path for a newcomer, as written: `make up`, the curl it prints answers 200 from a
# cold start, `make down` (scripts/newcomer.sh). Nothing of the cluster may survive it; then the cluster
# must come up again and go down clean.
run_script bash scripts/newcomer.sh || failed newcomer
step newcomer
make -s cluster-down && run_script bash e2e/cluster/check-clean.sh || failed cluster-down
step cluster-down
start=$(date +%s%N)
if make -s cluster-up; then
  echo "TIMING cached bring-up after down (incl. cargo's up-to-date check): $((($(date +%s%N) - start) / 1000000)) ms"
else
  failed "up-down-up (up)"
fi
make -s cluster-down && run_script bash e2e/cluster/check-clean.sh || failed "up-down-up (down)"
step up-down-up

if ((${#failed_steps[@]} > 0)); then
  echo "e2e: FAILED steps: ${failed_steps[*]}"
  # The scripts' failed checks, libtest's "test <name> ... FAILED" lines, then each panic with the
  # first lines of its message.
  logs=("$tests_log" "${background_log:-/dev/null}")
  { grep -shE '\] (FAIL|error): ' "$steps_log"; grep -shE '^test .* FAILED$' "${logs[@]}"
    grep -sh -A3 'panicked at' "${logs[@]}"; } | head -n 60 | sed 's/^/  /'
fi
exit $((${#failed_steps[@]} > 0))
