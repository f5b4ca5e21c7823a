//! The canary's window (pure apart from one short lock): the operator keeps, per rollout step, the
//! activators' cumulative counts at the first reading of the step (the baseline) and subtracts it
//! from every later reading, activator by activator.
//!
//! - An activator that restarted reports another `instance` (and counters from zero): its counts are
//!   taken whole instead of subtracted ([`Counts::since`] also catches counters that went down).
//! - An activator that appeared after the baseline: its counts are taken whole (it started after it).
//! - An activator that went away: what it counted since the baseline is lost from the window.
//! - An operator restart loses the baselines: the step is measured afresh from its next reading (the
//!   state machine then waits a full interval of measurement, see [`super::machine::Window`]).

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;
use zeroscale_common::revision_stats::{Counts, StatsReport};

use super::machine::Window;

/// Identifies one measured step: `<namespace>/<function>`, the canary and when its step began.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StepKey {
    /// `<namespace>/<function>`.
    pub function: String,
    /// The canary revision.
    pub revision: String,
    /// `status.rollout.stepStartedAt`.
    pub step_started_at: String,
}

/// The canary's cumulative counts as one activator reported them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    /// `instance` of the activator (changes when it restarts).
    pub instance: String,
    /// Its counts for the canary.
    pub counts: Counts,
}

/// The canary's counts in each activator's report (keyed by activator name).
pub fn readings(
    reports: &[StatsReport],
    namespace: &str,
    function: &str,
    revision: &str,
) -> HashMap<String, Reading> {
    reports
        .iter()
        .map(|report| {
            let counts = report
                .revisions
                .iter()
                .find(|r| r.namespace == namespace && r.function == function && r.revision == revision)
                .map(|r| r.counts.clone())
                .unwrap_or_default();
            let reading = Reading {
                instance: report.instance.clone(),
                counts,
            };
            (report.activator.clone(), reading)
        })
        .collect()
}

#[derive(Clone, Debug)]
struct Baseline {
    since: Timestamp,
    activators: HashMap<String, Reading>,
}

/// What was counted in `now` after `baseline`, summed over the activators.
fn window_since(baseline: &HashMap<String, Reading>, now: &HashMap<String, Reading>) -> Counts {
    let mut sum = Counts::default();
    for (activator, reading) in now {
        let delta = match baseline.get(activator) {
            Some(before) if before.instance == reading.instance => reading.counts.since(&before.counts),
            _ => reading.counts.clone(),
        };
        sum.add(&delta);
    }
    sum
}

/// The baselines of every step being measured; one per Function (a newer step replaces the older).
#[derive(Debug, Default)]
pub struct Baselines {
    steps: Mutex<HashMap<String, (StepKey, Baseline)>>,
}

impl Baselines {
    /// The window of `step` given the activators' current `readings` at `now`. The first reading of a
    /// step becomes its baseline (an empty window measured from `now`).
    pub fn window(&self, step: &StepKey, readings: HashMap<String, Reading>, now: Timestamp) -> Window {
        let mut steps = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        match steps.get(&step.function) {
            Some((key, baseline)) if key == step => Window {
                since: Some(baseline.since),
                counts: window_since(&baseline.activators, &readings),
            },
            _ => {
                let baseline = Baseline {
                    since: now,
                    activators: readings,
                };
                steps.insert(step.function.clone(), (step.clone(), baseline));
                Window {
                    since: Some(now),
                    counts: Counts::default(),
                }
            }
        }
    }

    /// Forgets the baseline of `function` (`<namespace>/<function>`): its rollout ended.
    pub fn forget(&self, function: &str) {
        self.steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(function);
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
