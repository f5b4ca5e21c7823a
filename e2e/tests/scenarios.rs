//! The end-to-end scenario suite (issue #6, point 5) on Zeroscale as users run it: installed by
//! `scripts/install.sh` (the Helm chart in `zeroscale-system`), reached through the activator's
//! external address from `.zeroscale/activator.env` with `Host: <fn>.<ns>.<domain>`.
//!
//! Test names follow Knative Serving's e2e tests where they match (the Knative name is in each doc
//! comment); `docs/testing.md` lists every scenario and what it proves. Each test has its own
//! namespace, so they do not see each other's Functions, but they share the installed components:
//! run them one at a time (`--test-threads=1`), as `scripts/e2e.sh` does. Speed is never asserted
//! here, only generous functional deadlines; timings go to `.zeroscale/logs/timings.log`.

#[path = "scenarios/churn.rs"]
mod churn;
#[path = "scenarios/concurrency.rs"]
mod concurrency;
#[path = "scenarios/guard.rs"]
mod guard;
#[path = "scenarios/ha.rs"]
mod ha;
#[path = "scenarios/lifecycle.rs"]
mod lifecycle;
#[path = "scenarios/load.rs"]
mod load;
#[path = "scenarios/scale.rs"]
mod scale;
#[path = "scenarios/support.rs"]
mod support;
#[path = "scenarios/timeouts.rs"]
mod timeouts;
