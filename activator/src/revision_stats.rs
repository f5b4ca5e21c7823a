//! Cumulative per-revision counts for the operator's automated canary: a [`RecordSink`] that counts
//! every finished request of a known revision (requests, failures, a latency histogram) and the admin
//! route that serves them as JSON at [`STATS_PATH`] (`GET /revisions/stats` on the admin port).
//!
//! The counters only grow while this activator runs; the operator reads every activator, keeps the
//! previous reading and subtracts (see [`zeroscale_common::revision_stats`] and docs/canary.md).
//! `instance` changes with each start, so a reader notices a restart even when the new counts have
//! already passed the old ones.
//!
//! What counts as a failure: a 5xx the pod answered, a 5xx the activator answered for the revision
//! (its pod failed, lost, timed out before a response head, startup failure), or a deadline that passed
//! mid-response. A client that went away is counted as a request, not a failure. The latency is from
//! arrival at the activator to the response head, so it includes queueing and a cold start.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{Json, Router, extract::State, routing::get};
use zeroscale_common::revision_stats::{Counts, LATENCY_BOUNDS_MS, RevisionCounts, STATS_PATH, StatsReport};
use zeroscale_crds::revision::split_revision_name;

use crate::function::record::{RecordSink, RequestOutcome, RequestRecord};

/// Per routing-table entry (keyed by its `<namespace>/<name>`, so the warm path looks up without
/// allocating), per revision: the counts, with the function and revision they belong to.
type ByEntry = HashMap<String, HashMap<String, RevisionCounts>>;

/// The cumulative counts of every revision this activator has served.
#[derive(Debug)]
pub struct RevisionStats {
    activator: String,
    instance: String,
    counts: Mutex<ByEntry>,
}

impl RevisionStats {
    /// Empty counts for the activator named `activator` (its pod name), with a fresh instance id.
    pub fn new(activator: impl Into<String>) -> Self {
        Self {
            activator: activator.into(),
            instance: uuid::Uuid::new_v4().to_string(),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// The report served at [`STATS_PATH`], revisions sorted by namespace, function and name.
    pub fn report(&self) -> StatsReport {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut revisions: Vec<RevisionCounts> = counts.values().flat_map(|r| r.values().cloned()).collect();
        drop(counts);
        revisions.sort_by(|a, b| {
            (&a.namespace, &a.function, &a.revision).cmp(&(&b.namespace, &b.function, &b.revision))
        });
        StatsReport {
            activator: self.activator.clone(),
            instance: self.instance.clone(),
            latency_bounds_ms: LATENCY_BOUNDS_MS.to_vec(),
            revisions,
        }
    }
}

/// Whether a finished request counts as failed for the canary.
fn failed(record: &RequestRecord<'_>) -> bool {
    record.status >= 500 || record.outcome == RequestOutcome::Timeout
}

impl RecordSink for RevisionStats {
    fn record(&self, record: &RequestRecord<'_>) {
        let Some(entry) = record.function else {
            return;
        };
        // The routing table keeps one entry per revision, named after it; a record may also name
        // its revision itself. Only requests of a known revision count: a canary compares revisions.
        let key = entry.key();
        let (function, revision) = match record.revision {
            Some(revision) => (key.name.as_str(), revision),
            None => match split_revision_name(&key.name) {
                (function, Some(revision)) => (function, revision),
                (_, None) => return,
            },
        };
        let latency = record
            .first_byte
            .map(|head| head.saturating_duration_since(record.arrived))
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let status = if failed(record) {
            record.status.max(500)
        } else {
            record.status
        };
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        // Look up before allocating keys: the warm path allocates nothing.
        let revisions = match counts.get_mut(entry.display()) {
            Some(revisions) => revisions,
            None => counts.entry(entry.display().to_string()).or_default(),
        };
        if let Some(c) = revisions.get_mut(revision) {
            c.counts.record(status, latency);
            return;
        }
        let mut c = RevisionCounts {
            namespace: key.namespace.clone(),
            function: function.to_string(),
            revision: revision.to_string(),
            counts: Counts::default(),
        };
        c.counts.record(status, latency);
        revisions.insert(revision.to_string(), c);
    }
}

/// The admin route serving `stats` as JSON at [`STATS_PATH`].
pub fn router(stats: Arc<RevisionStats>) -> Router {
    Router::new().route(STATS_PATH, get(serve)).with_state(stats)
}

async fn serve(State(stats): State<Arc<RevisionStats>>) -> Json<StatsReport> {
    Json(stats.report())
}

#[cfg(test)]
#[path = "revision_stats_tests.rs"]
mod tests;
