//! Keeping a `predictive` function's learned idle times across autoscaler restarts: restored from
//! `status.prediction` when its scaler is created, written back by server-side apply (field manager
//! `zeroscale-autoscaler`) when it changed, at most every [`WRITE_EVERY`] per function.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use zeroscale_common::signals::FunctionKey;
use zeroscale_crds::{Function, function::Prediction, revision::split_revision_name};

use crate::kpa::{FunctionScaler, Predictor};

/// Field manager of `status.prediction` (the operator never applies it).
pub const FIELD_MANAGER: &str = "zeroscale-autoscaler";

/// Least time between two writes of one function's prediction.
pub const WRITE_EVERY: Duration = Duration::from_secs(30);

/// What was restored and written, per function.
#[derive(Debug, Default)]
pub struct Predictions {
    /// Functions whose predictor has been restored from their status.
    restored: HashMap<FunctionKey, ()>,
    /// Last written version and when.
    written: HashMap<FunctionKey, (u64, Instant)>,
}

/// The wall-clock time `ago` before now, in RFC 3339.
fn wall_time_ago(ago: Duration) -> Option<String> {
    let ago = jiff::SignedDuration::try_from(ago).ok()?;
    jiff::Timestamp::now()
        .checked_sub(ago)
        .ok()
        .map(|t| t.to_string())
}

/// The decision-clock time of a persisted wall-clock time, when it is representable.
fn clock_time(now: Duration, wall: &str) -> Option<Duration> {
    let then: jiff::Timestamp = wall.parse().ok()?;
    let ago = jiff::Timestamp::now().duration_since(then);
    let ago = Duration::try_from(ago).unwrap_or(Duration::ZERO);
    now.checked_sub(ago)
}

/// The status to persist for `p` at `now`.
pub fn state(p: &Predictor, now: Duration) -> Prediction {
    let mut state = p.to_state();
    state.last_active_time = p
        .last_active()
        .and_then(|at| wall_time_ago(now.saturating_sub(at)));
    state
}

impl Predictions {
    /// Restores the predictor of `scaler` from `function`'s status once, when it first appears.
    pub fn restore(
        &mut self,
        key: &FunctionKey,
        function: &Function,
        scaler: &mut FunctionScaler,
        now: Duration,
    ) {
        let Some(p) = scaler.predictor_mut() else {
            self.restored.remove(key);
            return;
        };
        if self.restored.insert(key.clone(), ()).is_some() {
            return;
        }
        let Some(saved) = function.status.as_ref().and_then(|s| s.prediction.as_ref()) else {
            return;
        };
        let last = saved.last_active_time.as_deref().and_then(|t| clock_time(now, t));
        p.restore(saved, last);
        // What was read back is already persisted.
        self.written.insert(key.clone(), (p.version(), Instant::now()));
        tracing::info!(function = %key, idle_times = saved.bins.iter().map(|b| u64::from(b.count)).sum::<u64>(), "prediction restored");
    }

    /// Whether `key`'s prediction at `version` should be written now.
    pub fn due(&self, key: &FunctionKey, version: u64) -> bool {
        match self.written.get(key) {
            Some(&(written, at)) => written != version && at.elapsed() >= WRITE_EVERY,
            None => version > 0,
        }
    }

    /// Notes that `key`'s prediction at `version` is being written.
    pub fn mark(&mut self, key: &FunctionKey, version: u64) {
        self.written.insert(key.clone(), (version, Instant::now()));
    }

    /// Forgets functions `keep` rejects.
    pub fn retain(&mut self, keep: impl Fn(&FunctionKey) -> bool) {
        self.restored.retain(|k, ()| keep(k));
        self.written.retain(|k, _| keep(k));
    }
}

/// Applies `state` as `status.prediction` of `key`'s Function (the autoscaler scales each revision,
/// `<function>-<hash>`; the status is the Function's, and a new revision starts from what it holds),
/// in a task of its own; a failure is logged and retried with the next change.
pub fn spawn_write(client: Client, key: FunctionKey, state: Prediction) {
    tokio::spawn(async move {
        let function = split_revision_name(&key.name).0;
        let api: Api<Function> = Api::namespaced(client, &key.namespace);
        let body = serde_json::json!({
            "apiVersion": "zeroscale.dev/v1alpha1",
            "kind": "Function",
            "status": { "prediction": state },
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        if let Err(e) = api.patch_status(function, &params, &Patch::Apply(&body)).await {
            tracing::warn!(function = %key, error = %e, "cannot write status.prediction");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_times_round_trip_through_the_decision_clock() {
        let now = Duration::from_secs(86_400 + 10);
        let wall = wall_time_ago(Duration::from_secs(40)).expect("a time");
        let back = clock_time(now, &wall).expect("representable");
        let diff = (now - back).as_secs_f64();
        assert!((39.0..=41.0).contains(&diff), "{diff}");
        assert_eq!(clock_time(now, "not a time"), None);
        assert_eq!(clock_time(Duration::from_secs(5), &wall), None);
    }

    #[test]
    fn a_prediction_is_due_once_it_changed_and_then_not_before_the_interval() {
        let key = FunctionKey::new("ns", "f");
        let mut p = Predictions::default();
        assert!(!p.due(&key, 0));
        assert!(p.due(&key, 1));
        p.mark(&key, 1);
        assert!(!p.due(&key, 1));
        assert!(!p.due(&key, 2));
    }
}
