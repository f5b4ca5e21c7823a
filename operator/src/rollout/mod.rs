//! The built-in automated canary (`spec.rollout`): a pure state machine ([`machine`]) that decides how
//! the latest revision's share of the traffic is divided between the canary and the stable revision
//! ([`split`] applies it to `status.traffic`), fed with the activators' per-revision counts
//! ([`scrape`] reads every activator's `GET /revisions/stats`; [`window`] keeps each step's baseline
//! and subtracts). See docs/canary.md.

pub mod machine;
pub mod scrape;
pub mod shell;
pub mod split;
pub mod window;

#[cfg(test)]
mod machine_tests;

pub use machine::{Breach, Decision, Input, Split, Transition, Window, breach, decide};

use jiff::Timestamp;
use zeroscale_crds::function::{RolloutPhase, RolloutStatus};

/// What the reconciler measured for the canary before planning: its window and the time.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The canary's counts over the current step (empty when no canary is being measured).
    pub window: Window,
    /// Now.
    pub now: Timestamp,
}

/// The revisions a rollout keeps from garbage collection: the canary and its rollback target while
/// the rollout runs or after it rolled back.
pub fn protected(status: Option<&RolloutStatus>) -> Vec<String> {
    match status {
        Some(s) if s.phase != RolloutPhase::Promoted => std::iter::once(s.revision.clone())
            .chain(s.stable.clone())
            .collect(),
        _ => Vec::new(),
    }
}

/// The canary being measured, when one is: its revision and when its step began.
pub fn measuring(status: Option<&RolloutStatus>) -> Option<(&str, &str)> {
    status
        .filter(|s| s.phase == RolloutPhase::Progressing)
        .map(|s| (s.revision.as_str(), s.step_started_at.as_str()))
}
