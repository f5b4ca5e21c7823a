//! The automated canary's IO at reconcile time: measuring the canary's window before the plan, and
//! telling people after the status is written (a Kubernetes Event per step, and on a rollback the
//! `dev.zeroscale.function.rolledback` CloudEvent to the namespace's broker through the operator's
//! platform events; the `Ready=False/RolledBack` Event comes from the `Ready` transition).

use std::time::Duration;

use jiff::Timestamp;
use kube::Client;
use zeroscale_common::signals::{FunctionKey, ROLLED_BACK_TYPE};
use zeroscale_crds::function::{REASON_ROLLED_BACK, ResolvedRollout, RolloutStatus};

use super::machine::{Transition, Window};
use super::scrape::Scraper;
use super::window::{Baselines, StepKey, readings};
use super::{Observation, measuring};
use crate::events::Note;
use crate::platform::{FunctionCondition, Notice};

/// Shortest and longest wait before looking at a running canary again.
const POLL_BOUNDS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(5));

/// What the reconciler keeps for canaries between reconciles: the HTTP client that reads the
/// activators and the baselines of the steps being measured.
#[derive(Debug, Default)]
pub struct Canaries {
    scraper: Scraper,
    baselines: Baselines,
}

impl Canaries {
    /// The canary's window for `function` (`namespace`/`name`, with the previous `status.rollout`)
    /// at `now`, reading the activators behind `activator_service` when a canary is being measured.
    /// When they cannot be read the window is empty and unmeasured, so the step is held.
    pub async fn observe(
        &self,
        client: &Client,
        activator_service: &str,
        (namespace, name): (&str, &str),
        status: Option<&RolloutStatus>,
        now: Timestamp,
    ) -> Observation {
        let function = format!("{namespace}/{name}");
        let Some((revision, started)) = measuring(status) else {
            self.baselines.forget(&function);
            return Observation {
                window: Window::default(),
                now,
            };
        };
        let window = match self.scraper.reports(client, activator_service).await {
            Ok(reports) => {
                let step = StepKey {
                    function,
                    revision: revision.to_string(),
                    step_started_at: started.to_string(),
                };
                self.baselines
                    .window(&step, readings(&reports, namespace, name, revision), now)
            }
            Err(e) => {
                tracing::warn!(%function, error = %crate::error::chain(&e), "cannot read the activators' counts; holding the canary's step");
                Window::default()
            }
        };
        Observation { window, now }
    }
}

/// How soon to look at a running canary again: a tenth of the interval, within 1–5 s.
pub fn poll_after(rollout: &ResolvedRollout) -> Duration {
    (rollout.interval / 10).clamp(POLL_BOUNDS.0, POLL_BOUNDS.1)
}

/// The Kubernetes Event for a step of the rollout; `None` for a rollback (the `Ready=False/RolledBack`
/// transition publishes that one, with the same message).
pub fn note(transition: &Transition, status: &RolloutStatus) -> Option<Note> {
    let reason = match transition {
        Transition::Started | Transition::Advanced(_) => "RolloutStep",
        Transition::Promoted => "RolloutPromoted",
        Transition::RolledBack(_) => return None,
    };
    Some(Note {
        warning: false,
        reason: reason.into(),
        note: status.message.clone().unwrap_or_default(),
        action: "Rollout",
    })
}

/// The `dev.zeroscale.function.rolledback` CloudEvent for a rollback.
pub fn rolled_back(namespace: &str, name: &str, status: &RolloutStatus) -> Notice {
    Notice {
        ty: ROLLED_BACK_TYPE,
        data: FunctionCondition {
            function: FunctionKey::new(namespace, name),
            reason: REASON_ROLLED_BACK.into(),
            message: status.message.clone().unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::Breach;

    #[test]
    fn a_canary_is_polled_a_tenth_of_its_interval_within_bounds() {
        let with = |interval: u64| ResolvedRollout {
            steps: vec![100],
            interval: Duration::from_secs(interval),
            max_error_rate: 0.05,
            max_p99_latency: None,
            min_requests: 0,
        };
        assert_eq!(poll_after(&with(10)), Duration::from_secs(1));
        assert_eq!(poll_after(&with(30)), Duration::from_secs(3));
        assert_eq!(poll_after(&with(3600)), Duration::from_secs(5));
    }

    #[test]
    fn steps_get_normal_events_and_a_rollback_its_cloudevent() {
        let status = RolloutStatus {
            revision: "echo-bbbbbbbbbb".into(),
            message: Some(
                "rolled back echo-bbbbbbbbbb to echo-aaaaaaaaaa at step 1 (10%): error rate 20.0%".into(),
            ),
            ..RolloutStatus::default()
        };
        let step = note(&Transition::Advanced(1), &status).unwrap();
        assert_eq!((step.warning, step.reason.as_str()), (false, "RolloutStep"));
        assert_eq!(
            note(&Transition::Promoted, &status).unwrap().reason,
            "RolloutPromoted"
        );
        let breach = Breach::P99Latency {
            p99_ms: 1000,
            limit_ms: 200,
        };
        assert_eq!(note(&Transition::RolledBack(breach), &status), None);
        let notice = rolled_back("default", "echo", &status);
        assert_eq!(notice.ty, "dev.zeroscale.function.rolledback");
        assert_eq!(notice.data.function.subject(), "default/echo");
        assert_eq!(notice.data.reason, "RolledBack");
        assert!(notice.data.message.contains("error rate 20.0%"));
    }
}
