//! Keeping a `predictive` function's learned idle times across autoscaler restarts: restored from
//! `status.prediction` when its scaler is created, written back by server-side apply (field manager
//! `zeroscale-autoscaler`) when it changed, at most every [`WRITE_EVERY`] per function.
//!
//! Each revision (`<function>-<hash>`) has a scaler, and so a predictor, of its own; the Function has
//! one `status.prediction`. Every revision starts from it; only one revision, the [`keeper`], writes it
//! back, so two revisions serving at once never overwrite each other's learning.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use tokio::sync::mpsc;
use zeroscale_common::signals::FunctionKey;
use zeroscale_crds::{Function, function::Prediction};

use crate::kpa::{FunctionScaler, Predictor};

/// Field manager of `status.prediction` (the operator never applies it).
pub const FIELD_MANAGER: &str = "zeroscale-autoscaler";

/// Least time between two writes of one function's prediction.
pub const WRITE_EVERY: Duration = Duration::from_secs(30);

/// The version noted for a write that failed: never a predictor's, so the next [`Predictions::due`]
/// after [`WRITE_EVERY`] writes again.
const FAILED: u64 = u64::MAX;

/// What was restored and written, per function.
#[derive(Debug)]
pub struct Predictions {
    /// Functions whose predictor has been restored from their status.
    restored: HashMap<FunctionKey, ()>,
    /// Last written version and when.
    written: HashMap<FunctionKey, (u64, Instant)>,
    /// Where write tasks report the functions whose write failed, and where the decision loop
    /// reads them back without waiting ([`Predictions::note_failures`]).
    failures: (
        mpsc::UnboundedSender<FunctionKey>,
        mpsc::UnboundedReceiver<FunctionKey>,
    ),
}

impl Default for Predictions {
    fn default() -> Self {
        Self {
            restored: HashMap::new(),
            written: HashMap::new(),
            failures: mpsc::unbounded_channel(),
        }
    }
}

/// The scaler that keeps `function`'s `status.prediction`: the Function itself while its status lists
/// no revision (a Function from before revisions), else the revision with the largest share of the
/// traffic (the newest on a tie: the one the traffic moves to), else, when no revision has a share,
/// the latest ready one.
pub fn keeper(function: &Function) -> Option<&str> {
    let name = function.metadata.name.as_deref()?;
    let Some(status) = function.status.as_ref().filter(|s| !s.revisions.is_empty()) else {
        return Some(name);
    };
    // `revisions` lists the newest first; `max_by_key` keeps the last of equal shares.
    let busiest = status
        .revisions
        .iter()
        .rev()
        .max_by_key(|r| r.percent)
        .filter(|r| r.percent > 0);
    busiest
        .map(|r| r.name.as_str())
        .or(status.latest_ready_revision_name.as_deref())
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
            tracing::info!(function = %key, "prediction starts with no history");
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

    /// Where a write task reports that its write failed.
    pub fn failure_sender(&self) -> mpsc::UnboundedSender<FunctionKey> {
        self.failures.0.clone()
    }

    /// Takes the failures the write tasks reported: each of those functions is written again
    /// [`WRITE_EVERY`] after its failed attempt, even if nothing new was learned since (a lost write
    /// would otherwise wait for the next idle time, a whole gap later).
    pub fn note_failures(&mut self) {
        while let Ok(key) = self.failures.1.try_recv() {
            if let Some(written) = self.written.get_mut(&key) {
                written.0 = FAILED;
            }
        }
    }

    /// Forgets functions `keep` rejects.
    pub fn retain(&mut self, keep: impl Fn(&FunctionKey) -> bool) {
        self.restored.retain(|k, ()| keep(k));
        self.written.retain(|k, _| keep(k));
    }
}

/// Applies `state`, learned by the scaler `key` (the Function's [`keeper`]), as `status.prediction` of
/// the Function `function` in `key`'s namespace, in a task of its own; a failure is logged and sent
/// to `failed` ([`Predictions::failure_sender`]), so the write is tried again.
pub fn spawn_write(
    client: Client,
    key: FunctionKey,
    function: String,
    state: Prediction,
    failed: mpsc::UnboundedSender<FunctionKey>,
) {
    tokio::spawn(async move {
        let api: Api<Function> = Api::namespaced(client, &key.namespace);
        let idle_times: u64 = state.bins.iter().map(|b| u64::from(b.count)).sum();
        let body = serde_json::json!({
            "apiVersion": "zeroscale.dev/v1alpha1",
            "kind": "Function",
            "status": { "prediction": state },
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api.patch_status(&function, &params, &Patch::Apply(&body)).await {
            // Once per idle time of a predictive function at most: worth a line at info.
            Ok(_) => tracing::info!(%function, scaler = %key, idle_times, "status.prediction written"),
            Err(e) => {
                tracing::warn!(%function, scaler = %key, error = %e, "cannot write status.prediction");
                let _ = failed.send(key);
            }
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

    fn function(status: serde_json::Value) -> Function {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Function",
            "metadata": { "name": "hello", "namespace": "ns" },
            "spec": { "image": "echo" },
            "status": status,
        }))
        .expect("function")
    }

    #[test]
    fn a_function_without_revisions_keeps_its_own_prediction() {
        assert_eq!(keeper(&function(serde_json::json!({}))), Some("hello"));
        let mut f = function(serde_json::json!({}));
        f.status = None;
        assert_eq!(keeper(&f), Some("hello"));
    }

    #[test]
    fn the_revision_with_the_most_traffic_keeps_the_prediction() {
        let f = function(serde_json::json!({
            "latestReadyRevisionName": "hello-bbbbbbbbbb",
            "revisions": [{ "name": "hello-bbbbbbbbbb", "percent": 10 },
                          { "name": "hello-aaaaaaaaaa", "percent": 90 }]
        }));
        assert_eq!(keeper(&f), Some("hello-aaaaaaaaaa"), "a canary at 10 % does not");
        let f = function(serde_json::json!({
            "revisions": [{ "name": "hello-bbbbbbbbbb", "percent": 50 },
                          { "name": "hello-aaaaaaaaaa", "percent": 50 }]
        }));
        assert_eq!(keeper(&f), Some("hello-bbbbbbbbbb"), "the newest on a tie");
        let f = function(serde_json::json!({
            "latestReadyRevisionName": "hello-aaaaaaaaaa",
            "revisions": [{ "name": "hello-bbbbbbbbbb", "tag": "next" }, { "name": "hello-aaaaaaaaaa" }]
        }));
        assert_eq!(
            keeper(&f),
            Some("hello-aaaaaaaaaa"),
            "no shares: the latest ready"
        );
        let f = function(serde_json::json!({ "revisions": [{ "name": "hello-bbbbbbbbbb" }] }));
        assert_eq!(keeper(&f), None, "nothing ready and no traffic: nobody writes");
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

    /// Moves `key`'s last write [`WRITE_EVERY`] into the past.
    fn age(p: &mut Predictions, key: &FunctionKey) {
        let written = p.written.get_mut(key).expect("written");
        written.1 = Instant::now().checked_sub(WRITE_EVERY).expect("a past instant");
    }

    #[test]
    fn a_failed_write_is_due_again_after_the_interval_with_nothing_new_learned() {
        let key = FunctionKey::new("ns", "f");
        let mut p = Predictions::default();
        p.mark(&key, 3);
        age(&mut p, &key);
        assert!(!p.due(&key, 3), "written, and nothing new");
        p.mark(&key, 3);
        p.failure_sender().send(key.clone()).expect("open");
        p.note_failures();
        assert!(!p.due(&key, 3), "not before the interval");
        age(&mut p, &key);
        assert!(p.due(&key, 3), "the failed write is tried again");
        // A failure reported for a function never written changes nothing.
        let other = FunctionKey::new("ns", "g");
        p.failure_sender().send(other.clone()).expect("open");
        p.note_failures();
        assert!(!p.due(&other, 0));
    }
}
