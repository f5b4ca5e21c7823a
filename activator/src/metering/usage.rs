//! Usage records: what each function used on this activator since the last flush, flushed every
//! `--usage-flush-interval` as one CloudEvent `dev.zeroscale.usage` per function and revision to
//! `--usage-sink`, in order, retried until the sink takes them. Records wait in a bounded outbox
//! (`--usage-buffer-records`); when it is full the oldest is dropped and counted in
//! `zeroscale_usage_records_dropped_total`, never silently. Each record's id is
//! `<activator pod>-<boot id>-<sequence>`, unique across restarts, so a sink can drop duplicates
//! (a record whose answer was lost is sent again).

use std::{collections::VecDeque, sync::Arc};

use jiff::Timestamp;
use prometheus_client::{metrics::counter::Counter, metrics::gauge::Gauge, registry::Registry};
use serde::Serialize;

use super::resources::Resources;

/// The outcome labels, in [`UsageTotals::invocations`] order.
pub const OUTCOMES: [&str; 5] = [
    "ok",
    "function-error",
    "activator-failure",
    "timeout",
    "client-gone",
];

/// Usage of one function revision over a window, in exact integers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageTotals {
    /// Invocations by outcome, in [`OUTCOMES`] order.
    pub invocations: [u64; 5],
    /// Invocations that waited through a cold start.
    pub cold_starts: u64,
    /// Billed milliseconds (each invocation rounded up to 1 ms).
    pub billed_ms: u64,
    /// Billed milliseconds times memory bytes.
    pub memory_byte_ms: u128,
    /// Billed milliseconds times CPU millicores.
    pub cpu_millicore_ms: u128,
    /// Ready pods with a request in flight, in pod-milliseconds.
    pub busy_instance_ms: u64,
    /// Ready pods with no request in flight, in pod-milliseconds.
    pub idle_instance_ms: u64,
}

impl UsageTotals {
    /// Adds one invocation with outcome index `outcome`, billed `billed_ms` on `resources`.
    pub fn add(&mut self, outcome: usize, cold: bool, billed_ms: u64, resources: Resources) {
        if let Some(n) = self.invocations.get_mut(outcome) {
            *n += 1;
        }
        self.cold_starts += u64::from(cold);
        self.billed_ms += billed_ms;
        self.memory_byte_ms += u128::from(billed_ms) * u128::from(resources.memory_bytes);
        self.cpu_millicore_ms += u128::from(billed_ms) * u128::from(resources.cpu_millis);
    }

    /// Whether nothing was used.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Invocations by outcome, as sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invocations {
    /// Outcome `ok`.
    pub ok: u64,
    /// Outcome `function-error`.
    pub function_error: u64,
    /// Outcome `activator-failure`.
    pub activator_failure: u64,
    /// Outcome `timeout`.
    pub timeout: u64,
    /// Outcome `client-gone`.
    pub client_gone: u64,
}

/// The data of one `dev.zeroscale.usage` event (see `docs/metering.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecord {
    /// `<activator pod>-<boot id>-<sequence>`; also the CloudEvent id.
    pub id: String,
    /// The activator pod that served the requests.
    pub activator: String,
    /// Namespace of the function.
    pub namespace: String,
    /// Name of the function.
    pub function: String,
    /// Revision (empty for a Function without revisions).
    pub revision: String,
    /// Start of the window (the previous flush), RFC 3339.
    pub window_start: String,
    /// End of the window (this flush), RFC 3339.
    pub window_end: String,
    /// Invocations by outcome.
    pub invocations: Invocations,
    /// Invocations that waited through a cold start.
    pub cold_starts: u64,
    /// Billed milliseconds.
    pub billed_milliseconds: u64,
    /// Billed milliseconds × memory bytes (divide by 1000 for byte-seconds).
    pub memory_byte_milliseconds: u128,
    /// Billed milliseconds × CPU millicores (divide by 10⁶ for CPU-seconds).
    pub cpu_millicore_milliseconds: u128,
    /// Busy pod-milliseconds.
    pub busy_instance_milliseconds: u64,
    /// Idle pod-milliseconds.
    pub idle_instance_milliseconds: u64,
}

/// Numbers the records of one activator process apart: `<pod>-<boot id>-<sequence>`.
#[derive(Debug)]
pub struct RecordIds {
    prefix: String,
    next: u64,
}

impl RecordIds {
    /// Ids for the activator pod `pod`, with a fresh boot id (a restarted container in the same pod
    /// must not repeat an id).
    pub fn new(pod: &str) -> Self {
        let boot = uuid::Uuid::new_v4().simple().to_string();
        Self {
            prefix: format!("{pod}-{}", &boot[..12]),
            next: 0,
        }
    }

    /// The next id.
    pub fn next_id(&mut self) -> String {
        self.next += 1;
        format!("{}-{}", self.prefix, self.next)
    }
}

/// One function revision's usage over a window, before it is numbered.
#[derive(Clone, Debug)]
pub struct Window {
    /// Namespace of the function.
    pub namespace: String,
    /// Name of the function.
    pub function: String,
    /// Revision, if any.
    pub revision: Option<Arc<str>>,
    /// What was used.
    pub totals: UsageTotals,
}

impl RecordIds {
    /// Numbers `window` (from `start` to `end`) as a record of `activator`.
    pub fn record(
        &mut self,
        activator: &str,
        window: Window,
        start: Timestamp,
        end: Timestamp,
    ) -> UsageRecord {
        let t = window.totals;
        let [ok, function_error, activator_failure, timeout, client_gone] = t.invocations;
        debug_assert_eq!(OUTCOMES.len(), 5);
        UsageRecord {
            id: self.next_id(),
            activator: activator.to_string(),
            namespace: window.namespace,
            function: window.function,
            revision: window.revision.as_deref().unwrap_or_default().to_string(),
            window_start: start.to_string(),
            window_end: end.to_string(),
            invocations: Invocations {
                ok,
                function_error,
                activator_failure,
                timeout,
                client_gone,
            },
            cold_starts: t.cold_starts,
            billed_milliseconds: t.billed_ms,
            memory_byte_milliseconds: t.memory_byte_ms,
            cpu_millicore_milliseconds: t.cpu_millicore_ms,
            busy_instance_milliseconds: t.busy_instance_ms,
            idle_instance_milliseconds: t.idle_instance_ms,
        }
    }
}

/// Counters of the usage outbox (`zeroscale_usage_*`).
#[derive(Clone, Debug, Default)]
pub struct OutboxMetrics {
    /// Records the sink took.
    pub sent: Counter,
    /// Records dropped because the outbox was full.
    pub dropped: Counter,
    /// Failed sends (each retried).
    pub failures: Counter,
    /// Records waiting to be sent.
    pub pending: Gauge,
}

impl OutboxMetrics {
    /// Creates the counters and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("zeroscale_usage");
        r.register("records_sent", "Usage records the sink accepted", m.sent.clone());
        r.register(
            "records_dropped",
            "Usage records dropped because the outbox was full (the sink was down too long)",
            m.dropped.clone(),
        );
        r.register(
            "send_failures",
            "Failed attempts to send a usage record (each is retried)",
            m.failures.clone(),
        );
        r.register(
            "records_pending",
            "Usage records waiting to be sent",
            m.pending.clone(),
        );
        m
    }
}

/// Records waiting for the sink, oldest first, at most `limit`.
#[derive(Debug)]
pub struct Outbox {
    records: VecDeque<UsageRecord>,
    limit: usize,
    metrics: OutboxMetrics,
}

impl Outbox {
    /// An empty outbox holding at most `limit` records (at least 1).
    pub fn new(limit: usize, metrics: OutboxMetrics) -> Self {
        Self {
            records: VecDeque::new(),
            limit: limit.max(1),
            metrics,
        }
    }

    /// Queues `record`; when full, drops the oldest and counts it.
    pub fn push(&mut self, record: UsageRecord) {
        if self.records.len() >= self.limit
            && let Some(dropped) = self.records.pop_front()
        {
            self.metrics.dropped.inc();
            tracing::error!(
                id = dropped.id,
                function = dropped.function,
                "usage outbox full: dropped the oldest usage record"
            );
        }
        self.records.push_back(record);
        self.metrics.pending.set(self.records.len() as i64);
    }

    /// The oldest record, to send next.
    pub fn front(&self) -> Option<&UsageRecord> {
        self.records.front()
    }

    /// The oldest record was taken by the sink.
    pub fn sent(&mut self) {
        if self.records.pop_front().is_some() {
            self.metrics.sent.inc();
        }
        self.metrics.pending.set(self.records.len() as i64);
    }

    /// A send failed (the record stays first).
    pub fn failed(&self) {
        self.metrics.failures.inc();
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(billed: u64) -> Window {
        let mut totals = UsageTotals::default();
        totals.add(
            0,
            false,
            billed,
            Resources {
                memory_bytes: 128 << 20,
                cpu_millis: 500,
            },
        );
        Window {
            namespace: "ns".into(),
            function: "f".into(),
            revision: None,
            totals,
        }
    }

    #[test]
    fn totals_multiply_exactly() {
        let r = Resources {
            memory_bytes: 128 << 20,
            cpu_millis: 250,
        };
        let mut t = UsageTotals::default();
        for _ in 0..500 {
            t.add(0, false, 201, r);
        }
        t.add(3, true, 0, r);
        assert_eq!(t.invocations, [500, 0, 0, 1, 0]);
        assert_eq!(t.billed_ms, 100_500);
        assert_eq!(t.memory_byte_ms, 100_500 * (128u128 << 20));
        assert_eq!(t.cpu_millicore_ms, 100_500 * 250);
        assert_eq!(t.cold_starts, 1);
    }

    #[test]
    fn ids_are_unique_and_name_the_pod() {
        let mut a = RecordIds::new("activator-0");
        let mut b = RecordIds::new("activator-0");
        let (a1, a2, b1) = (a.next_id(), a.next_id(), b.next_id());
        assert!(a1.starts_with("activator-0-") && a1.ends_with("-1") && a2.ends_with("-2"));
        assert_ne!(a1, b1, "a restarted process gets a new boot id");
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_and_counts_it() {
        let metrics = OutboxMetrics::default();
        let mut outbox = Outbox::new(2, metrics.clone());
        let mut ids = RecordIds::new("a");
        let now = Timestamp::now();
        for billed in [1, 2, 3] {
            outbox.push(ids.record("a", window(billed), now, now));
        }
        assert_eq!(outbox.len(), 2);
        assert_eq!(metrics.dropped.get(), 1);
        assert_eq!(outbox.front().map(|r| r.billed_milliseconds), Some(2));
        outbox.sent();
        assert_eq!(metrics.sent.get(), 1);
        assert_eq!(metrics.pending.get(), 1);
    }

    #[test]
    fn records_serialize_in_camel_case() {
        let mut ids = RecordIds::new("a");
        let now = Timestamp::now();
        let json = serde_json::to_value(ids.record("a", window(7), now, now)).expect("json");
        assert_eq!(json["billedMilliseconds"], 7);
        assert_eq!(json["memoryByteMilliseconds"], 7u64 * (128 << 20));
        assert_eq!(json["invocations"]["ok"], 1);
    }
}
