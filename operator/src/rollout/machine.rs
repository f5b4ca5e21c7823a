//! The rollout state machine (pure): from the previous `status.rollout`, the latest ready revision,
//! the window's counts for the canary and the time, decide the split of the latest revision's traffic,
//! the next `status.rollout` and what happened.
//!
//! Rules (docs/canary.md):
//! - without `spec.rollout` the latest ready revision takes its share at once;
//! - a new latest ready revision starts at `steps[0]` against the revision that served before (the
//!   stable one); a first revision, or a return to the stable one, takes its share at once;
//! - at every evaluation, once the window holds at least `minRequests`, an error rate above
//!   `maxErrorRate` or a p99 above `maxP99LatencyMs` rolls back at once (so within one interval);
//! - a step that has lasted `interval` (and has been measured that long) moves on when the window is
//!   healthy and holds `minRequests`; with fewer it is held (never promoted on no evidence);
//! - after the last step (100) the canary is promoted and becomes the stable revision.

use std::time::Duration;

use jiff::Timestamp;
use zeroscale_common::revision_stats::Counts;
use zeroscale_crds::function::{ResolvedRollout, RolloutPhase, RolloutStatus};

/// The canary's counts over the current step, and since when they were measured (later than the
/// step's start after an operator restart: counts before it are not known).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Window {
    /// When measuring began.
    pub since: Option<Timestamp>,
    /// What was counted since.
    pub counts: Counts,
}

/// Everything one decision looks at.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// `spec.rollout`, resolved; `None` when absent.
    pub rollout: Option<&'a ResolvedRollout>,
    /// The previous `status.rollout`.
    pub previous: Option<&'a RolloutStatus>,
    /// The revision that had the latest revision's traffic before this decision when no rollout was
    /// recorded (the previous `status.latestReadyRevisionName`).
    pub serving: Option<&'a str>,
    /// The latest ready revision now.
    pub latest_ready: &'a str,
    /// The canary's counts over the current step.
    pub window: &'a Window,
    /// Now.
    pub now: Timestamp,
}

/// How the latest revision's share of the traffic is divided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// The revision that takes `percent` of the share (the latest ready one, or the canary).
    pub revision: String,
    /// Its percent of the share, 0–100.
    pub percent: u8,
    /// The revision that takes the rest, when `percent` < 100.
    pub stable: Option<String>,
}

impl Split {
    fn whole(revision: &str) -> Self {
        Self {
            revision: revision.to_string(),
            percent: 100,
            stable: None,
        }
    }
}

/// Why a canary was rolled back, with the measured figure.
#[derive(Clone, Debug, PartialEq)]
pub enum Breach {
    /// Too many failed requests.
    ErrorRate {
        /// Failed requests in the window.
        errors: u64,
        /// Requests in the window.
        requests: u64,
        /// The limit, as a fraction.
        limit: f64,
    },
    /// Too slow.
    P99Latency {
        /// The measured p99 in milliseconds (bucket upper bound).
        p99_ms: u64,
        /// The limit in milliseconds.
        limit_ms: u64,
    },
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ErrorRate {
                errors,
                requests,
                limit,
            } => {
                #[allow(clippy::cast_precision_loss)]
                let rate = *errors as f64 / (*requests).max(1) as f64;
                write!(
                    f,
                    "error rate {:.1}% ({errors} of {requests} requests failed) above maxErrorRate {}%",
                    rate * 100.0,
                    limit * 100.0
                )
            }
            Self::P99Latency { p99_ms, limit_ms } => {
                write!(f, "p99 latency {p99_ms} ms above maxP99LatencyMs {limit_ms}")
            }
        }
    }
}

/// What a decision did.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// A canary started at its first step.
    Started,
    /// The canary moved to the step with this index.
    Advanced(usize),
    /// The canary passed every step.
    Promoted,
    /// The canary breached a limit; its traffic went back to the stable revision.
    RolledBack(Breach),
}

/// The result of one decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// How the latest revision's share is divided now.
    pub split: Split,
    /// The next `status.rollout` (`None`: no rollout configured).
    pub status: Option<RolloutStatus>,
    /// What changed, if anything.
    pub transition: Option<Transition>,
}

impl Decision {
    fn settled(revision: &str) -> Self {
        Self {
            split: Split::whole(revision),
            status: None,
            transition: None,
        }
    }

    /// Whether a canary is being measured (the reconcile should look again soon).
    pub fn in_progress(&self) -> bool {
        self.status
            .as_ref()
            .is_some_and(|s| s.phase == RolloutPhase::Progressing)
    }
}

fn promoted(revision: &str, now: Timestamp, message: Option<String>) -> RolloutStatus {
    RolloutStatus {
        revision: revision.to_string(),
        stable: None,
        phase: RolloutPhase::Promoted,
        step: 0,
        percent: 100,
        step_started_at: now.to_string(),
        message,
        ..RolloutStatus::default()
    }
}

/// Decides the split and the next rollout state.
pub fn decide(input: Input<'_>) -> Decision {
    let latest = input.latest_ready;
    let Some(rollout) = input.rollout else {
        return Decision::settled(latest);
    };
    let previous = input.previous;
    match previous {
        Some(p) if p.revision == latest => match p.phase {
            RolloutPhase::Promoted => Decision {
                status: Some(p.clone()),
                ..Decision::settled(latest)
            },
            RolloutPhase::RolledBack => match &p.stable {
                Some(stable) => Decision {
                    split: Split::whole(stable),
                    status: Some(p.clone()),
                    transition: None,
                },
                None => Decision {
                    status: Some(p.clone()),
                    ..Decision::settled(latest)
                },
            },
            RolloutPhase::Progressing => evaluate(rollout, p, &input),
        },
        _ => start(rollout, &input),
    }
}

/// A latest ready revision no rollout has seen yet: start a canary against the stable revision, or
/// settle at once when there is none.
fn start(rollout: &ResolvedRollout, input: &Input<'_>) -> Decision {
    let latest = input.latest_ready;
    // The revision that served: the stable one of an unfinished or rolled-back rollout (its canary is
    // superseded), the promoted one, or whatever took the traffic before.
    let stable = match input.previous {
        Some(p) if p.phase == RolloutPhase::Promoted => Some(p.revision.as_str()),
        Some(p) => p.stable.as_deref(),
        None => input.serving,
    };
    let Some(stable) = stable.filter(|s| *s != latest) else {
        let message = Some(format!(
            "{latest} took the traffic at once: no earlier revision served"
        ));
        return Decision {
            status: Some(promoted(latest, input.now, message)),
            ..Decision::settled(latest)
        };
    };
    let first = rollout.steps.first().copied().unwrap_or(100);
    let status = RolloutStatus {
        revision: latest.to_string(),
        stable: Some(stable.to_string()),
        phase: RolloutPhase::Progressing,
        step: 0,
        percent: i32::from(first),
        step_started_at: input.now.to_string(),
        message: Some(format!("step 1 of {}: {first}% to {latest}", rollout.steps.len())),
        ..RolloutStatus::default()
    };
    Decision {
        split: split(latest, first, stable),
        status: Some(status),
        transition: Some(Transition::Started),
    }
}

fn split(canary: &str, percent: u8, stable: &str) -> Split {
    Split {
        revision: canary.to_string(),
        percent,
        stable: (percent < 100).then(|| stable.to_string()),
    }
}

/// The limit the window breaches, if any (only once it holds `minRequests`).
pub fn breach(rollout: &ResolvedRollout, counts: &Counts) -> Option<Breach> {
    if counts.requests == 0 || counts.requests < rollout.min_requests {
        return None;
    }
    let rate = counts.error_rate().unwrap_or(0.0);
    if rate > rollout.max_error_rate {
        return Some(Breach::ErrorRate {
            errors: counts.errors,
            requests: counts.requests,
            limit: rollout.max_error_rate,
        });
    }
    let limit = rollout.max_p99_latency?;
    let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
    let p99_ms = counts.p99_ms()?;
    (p99_ms > limit_ms).then_some(Breach::P99Latency { p99_ms, limit_ms })
}

/// Time from `since` to `now`; zero when `since` is later.
fn between(since: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO)
}

/// Time since an RFC 3339 stamp; zero when it does not parse (the step then starts over).
fn elapsed(since: &str, now: Timestamp) -> Duration {
    since
        .parse::<Timestamp>()
        .map_or(Duration::ZERO, |t| between(t, now))
}

/// A canary at a step: roll back, hold, advance or promote.
fn evaluate(rollout: &ResolvedRollout, p: &RolloutStatus, input: &Input<'_>) -> Decision {
    let canary = p.revision.as_str();
    let Some(stable) = p.stable.as_deref() else {
        return Decision {
            status: Some(promoted(canary, input.now, None)),
            ..Decision::settled(canary)
        };
    };
    let last = rollout.steps.len().saturating_sub(1);
    // The steps may have changed under a running rollout: stay at the same index, within bounds.
    let index = usize::try_from(p.step).unwrap_or(0).min(last);
    let percent = rollout.steps.get(index).copied().unwrap_or(100);
    let counts = &input.window.counts;
    let mut status = RolloutStatus {
        step: i32::try_from(index).unwrap_or(0),
        percent: i32::from(percent),
        requests: i64::try_from(counts.requests).unwrap_or(i64::MAX),
        errors: i64::try_from(counts.errors).unwrap_or(i64::MAX),
        p99_latency_ms: counts.p99_ms().map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
        ..p.clone()
    };
    if let Some(breach) = breach(rollout, counts) {
        status.phase = RolloutPhase::RolledBack;
        status.message = Some(format!(
            "rolled back {canary} to {stable} at step {} ({percent}%): {breach}",
            index + 1
        ));
        return Decision {
            split: Split::whole(stable),
            status: Some(status),
            transition: Some(Transition::RolledBack(breach)),
        };
    }
    let held = elapsed(&p.step_started_at, input.now).min(
        input
            .window
            .since
            .map_or(Duration::ZERO, |s| between(s, input.now)),
    );
    let hold = |mut status: RolloutStatus, message: String| {
        status.message = Some(message);
        Decision {
            split: split(canary, percent, stable),
            status: Some(status),
            transition: None,
        }
    };
    if held < rollout.interval {
        let message = format!(
            "step {} of {}: {percent}% to {canary}",
            index + 1,
            rollout.steps.len()
        );
        return hold(status, message);
    }
    if counts.requests < rollout.min_requests {
        let message = format!(
            "holding step {} ({percent}%): {} of the {} requests needed to judge {canary}",
            index + 1,
            counts.requests,
            rollout.min_requests
        );
        return hold(status, message);
    }
    if index >= last {
        let message = Some(format!(
            "promoted {canary} after {} steps; {stable} no longer takes its traffic",
            rollout.steps.len()
        ));
        return Decision {
            status: Some(promoted(canary, input.now, message)),
            transition: Some(Transition::Promoted),
            ..Decision::settled(canary)
        };
    }
    let next = index + 1;
    let next_percent = rollout.steps.get(next).copied().unwrap_or(100);
    let status = RolloutStatus {
        step: i32::try_from(next).unwrap_or(0),
        percent: i32::from(next_percent),
        step_started_at: input.now.to_string(),
        requests: 0,
        errors: 0,
        p99_latency_ms: None,
        message: Some(format!(
            "step {} of {}: {next_percent}% to {canary}",
            next + 1,
            rollout.steps.len()
        )),
        ..status
    };
    Decision {
        split: split(canary, next_percent, stable),
        status: Some(status),
        transition: Some(Transition::Advanced(next)),
    }
}
