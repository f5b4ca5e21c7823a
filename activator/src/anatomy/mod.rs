//! Cold-start anatomy (see `docs/metering.md`): for the request that started a cold episode, where
//! its time to first byte went, phase by phase ([`phases::PHASES`]). Sources: the activator's own
//! stamps (arrival, demand sent, forwarded, first byte), the autoscaler's decision and `/scale`
//! patch times (annotations it leaves on the Deployment it scaled from zero), and the served pod's
//! `PodScheduled` and `Ready` conditions and its container's `startedAt` (whole seconds).
//!
//! Made by a [`RecordSink`] off the request path, in a task: one histogram per phase
//! (`zeroscale_activator_cold_start_phase_seconds{phase}`), a `ColdStart` Event on the Function
//! (`kubectl describe fn`), a log line, and, when traces are exported, a `cold start` span on the
//! request's trace with one event per phase ([`span`]).

pub mod phases;
mod sources;
pub mod span;

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use kube::Client;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tokio::time::Instant;
use zeroscale_crds::revision::split_revision_name;

use self::phases::{PHASES, Stamps};
use crate::function::record::{RecordSink, RequestRecord};

/// Labels of the phase histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// Namespace of the function.
    pub namespace: String,
    /// Name of the Function.
    pub function: String,
    /// Name of the revision (empty for a Function without revisions).
    pub revision: String,
    /// One of [`PHASES`].
    pub phase: &'static str,
}

fn phase_histogram() -> Histogram {
    // 100 µs to ~100 s.
    Histogram::new(exponential_buckets(0.0001, 2.5, 16))
}

/// What the anatomy task needs.
struct Shared {
    client: Client,
    pod_name: String,
    phases: Family<PhaseLabels, Histogram, fn() -> Histogram>,
}

/// The record sink dissecting cold starts.
#[derive(Clone)]
pub struct AnatomySink {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AnatomySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnatomySink").finish_non_exhaustive()
    }
}

impl AnatomySink {
    /// A sink reading the cluster through `client`, publishing Events as activator `pod_name`;
    /// registers the phase histograms in `registry`.
    pub fn new(client: Client, pod_name: &str, registry: &mut Registry) -> Self {
        let phases: Family<PhaseLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(phase_histogram);
        registry.register(
            "zeroscale_activator_cold_start_phase_seconds",
            "Phases of cold starts, arrival to first byte: queued, decision, scale-patch, scheduled, \
             container-started, ready, forwarded, first-byte (they add up to the whole)",
            phases.clone(),
        );
        Self {
            shared: Arc::new(Shared {
                client,
                pod_name: pod_name.to_string(),
                phases,
            }),
        }
    }
}

/// Microseconds since the epoch of `at`, an instant of this process, read against the wall clock
/// `now_wall` taken at `now`.
fn wall_micros(at: Instant, now: Instant, now_wall: Timestamp) -> i64 {
    let ago = i64::try_from(now.saturating_duration_since(at).as_micros()).unwrap_or(i64::MAX);
    now_wall.as_microsecond() - ago
}

impl RecordSink for AnatomySink {
    fn record(&self, r: &RequestRecord<'_>) {
        // Only the request that started the episode, once its pod answered.
        let (true, Some(function), Some(first_byte), Some(pod)) = (r.cold, r.function, r.first_byte, r.pod)
        else {
            return;
        };
        let (now, now_wall) = (Instant::now(), Timestamp::now());
        let wall = |at| wall_micros(at, now, now_wall);
        let stamps = Stamps {
            arrived: wall(r.arrived),
            demand_sent: function.demand_sent().map(wall),
            forwarded: r.forwarded.map(wall),
            first_byte: wall(first_byte),
            ..Stamps::default()
        };
        let shared = Arc::clone(&self.shared);
        let function = Arc::clone(function);
        let request_id = r.request_id.to_string();
        let traceparent = r.traceparent.to_string();
        tokio::spawn(async move {
            let key = function.key();
            let stamps = sources::complete(&shared.client, key, pod.ip(), stamps).await;
            let phases = stamps.phases();
            for (phase, micros) in PHASES.iter().zip(phases) {
                let (function, revision) = split_revision_name(&key.name);
                let labels = PhaseLabels {
                    namespace: key.namespace.clone(),
                    function: function.to_string(),
                    revision: revision.unwrap_or_default().to_string(),
                    phase,
                };
                shared
                    .phases
                    .get_or_create(&labels)
                    .observe(Duration::from_micros(micros).as_secs_f64());
            }
            // On the request's trace too, when traces are exported.
            if let Some(tracer) = zeroscale_common::tracing_otlp::tracer() {
                span::export(tracer, &traceparent, &stamps, &phases);
            }
            let note = note(&stamps, &phases);
            tracing::info!(
                function = function.display(),
                request_id,
                anatomy = note,
                "cold start"
            );
            let uid = function.uid();
            sources::publish_event(&shared.client, &shared.pod_name, key, uid, note).await;
        });
    }
}

/// The Event's note: `cold start <total> ms to first byte: queued=<ms> ... first-byte=<ms> (ms)`,
/// each to the microsecond.
pub fn note(stamps: &Stamps, phases: &[u64; 8]) -> String {
    let ms = |us: u64| format!("{:.3}", us as f64 / 1000.0);
    let total = (stamps.first_byte - stamps.arrived).max(0).unsigned_abs();
    let parts: Vec<String> = PHASES
        .iter()
        .zip(phases)
        .map(|(p, us)| format!("{p}={}", ms(*us)))
        .collect();
    format!(
        "cold start {} ms to first byte: {} (ms)",
        ms(total),
        parts.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stamps_map_to_the_wall_clock_and_the_note_adds_up() {
        let arrived = Instant::now();
        tokio::time::advance(Duration::from_millis(1500)).await;
        let now_wall: Timestamp = "2026-12-03T14:00:10Z".parse().expect("time");
        let at = wall_micros(arrived, Instant::now(), now_wall);
        assert_eq!(at, now_wall.as_microsecond() - 1_500_000);
        let stamps = Stamps {
            arrived: 0,
            demand_sent: Some(400),
            forwarded: Some(1_000_000),
            first_byte: 1_001_500,
            ..Stamps::default()
        };
        let text = note(&stamps, &stamps.phases());
        assert_eq!(
            text,
            "cold start 1001.500 ms to first byte: queued=0.400 decision=0.000 scale-patch=0.000 \
             scheduled=0.000 container-started=0.000 ready=0.000 forwarded=999.600 first-byte=1.500 (ms)"
        );
    }
}
