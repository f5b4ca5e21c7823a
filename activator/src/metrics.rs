//! Prometheus metrics of the activator (SPEC §8), with per-function handles cached so the warm path
//! does not build label sets or take the family lock on every request.

use std::sync::Arc;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use zeroscale_common::signals::FunctionKey;

use zeroscale_common::metrics::{FloatGauge, unix_now};
use zeroscale_crds::revision::split_revision_name;

/// `reason` of `zeroscale_activator_upstream_retries_total`: nothing of the request reached the pod
/// (connection refused, timed out or reset, or a kept-alive connection closed before it was written).
pub const RETRY_NOT_SENT: &str = "not-sent";
/// `reason` of the retry counter: the chosen pod left rotation (terminating, removed, failed) before
/// the request went out.
pub const RETRY_POD_GONE: &str = "pod-gone";
/// `reason` of the retry counter: the connection broke after the request went out and before the
/// response head; the request was idempotent with a kept body, so it was sent again.
pub const RETRY_REPLAYED: &str = "replayed";
/// `reason` of `zeroscale_activator_upstream_lost_total`: the pod went away before the response head
/// and the request could not be sent again; the client got 502.
pub const LOST_BEFORE_RESPONSE: &str = "before-response";
/// `reason` of the loss counter: the pod's response body broke after its head was sent on; the client
/// saw a cut response.
pub const LOST_MID_RESPONSE: &str = "mid-response";
/// `reason` of the loss counter: the connection to the activator owning the function (see
/// [`crate::peers`]) broke after the request went out to it, before its response head, and the
/// request was not safe to send again (one that is is handled locally instead); 502.
pub const LOST_PEER_HOP: &str = "peer-hop";

/// Labels of every per-function series: the Function and the revision that served, like metering's
/// (`crate::metering`). A routing entry per revision is keyed by the revision's name
/// (`<function>-<hash>`); it is split here so that `function` is always the Function's name and
/// sums `by (namespace, function)` add up every revision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionLabels {
    /// Namespace of the Function.
    pub namespace: String,
    /// Name of the Function.
    pub function: String,
    /// Name of the revision (empty for a Function without revisions).
    pub revision: String,
}

impl From<&FunctionKey> for FunctionLabels {
    fn from(key: &FunctionKey) -> Self {
        let (function, revision) = split_revision_name(&key.name);
        Self {
            namespace: key.namespace.clone(),
            function: function.to_string(),
            revision: revision.unwrap_or_default().to_string(),
        }
    }
}

/// Labels of the per-function request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// Namespace of the function.
    pub namespace: String,
    /// Name of the Function.
    pub function: String,
    /// Name of the revision (empty for a Function without revisions).
    pub revision: String,
    /// HTTP status code of the response.
    pub code: u16,
}

/// Labels of the rejection counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabels {
    /// Namespace of the function.
    pub namespace: String,
    /// Name of the Function.
    pub function: String,
    /// Name of the revision (empty for a Function without revisions).
    pub revision: String,
    /// Why the buffered request was rejected (see [`crate::error::ProxyError::rejection_reason`]).
    pub reason: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Cold-episode counter that also stamps when the latest episode started (its first request
/// admitted) and when it first knew a pod's address.
#[derive(Clone, Debug)]
pub struct ColdStarts {
    count: Counter,
    last_started: FloatGauge,
    last_address: FloatGauge,
}

impl ColdStarts {
    /// Counts one cold episode starting now; returns the previous count.
    pub fn inc(&self) -> u64 {
        self.last_started.set(unix_now());
        self.count.inc()
    }

    /// The latest cold episode knows a pod's address from now.
    pub fn address_known(&self) {
        self.last_address.set(unix_now());
    }

    /// Cold episodes so far.
    pub fn get(&self) -> u64 {
        self.count.get()
    }
}

/// Cold-start duration histogram that also stamps when the latest cold request was forwarded.
#[derive(Clone, Debug)]
pub struct ColdStartDuration {
    histogram: Histogram,
    last_forwarded: FloatGauge,
}

impl ColdStartDuration {
    /// Records a cold request handed to a pod now, `seconds` after it arrived.
    pub fn observe(&self, seconds: f64) {
        self.last_forwarded.set(unix_now());
        self.histogram.observe(seconds);
    }
}

/// Labels of the upstream retry and loss counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// Namespace of the function.
    pub namespace: String,
    /// Name of the Function.
    pub function: String,
    /// Name of the revision (empty for a Function without revisions).
    pub revision: String,
    /// What happened (see [`crate::proxy`]'s retry and loss reasons).
    pub reason: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~100 s: covers warm proxying and cold starts alike.
    Histogram::new(exponential_buckets(0.0001, 2.5, 16))
}

/// Every metric family of the activator.
#[derive(Clone, Debug)]
pub struct Metrics {
    requests: Family<CodeLabels, Counter>,
    duration: HistogramFamily<FunctionLabels>,
    in_flight: Family<FunctionLabels, Gauge>,
    queue_depth: Family<FunctionLabels, Gauge>,
    queue_wait: HistogramFamily<FunctionLabels>,
    cold_starts: Family<FunctionLabels, Counter>,
    cold_start_duration: HistogramFamily<FunctionLabels>,
    cold_start_started_at: Family<FunctionLabels, FloatGauge>,
    cold_start_address_at: Family<FunctionLabels, FloatGauge>,
    cold_start_forwarded_at: Family<FunctionLabels, FloatGauge>,
    rejections: Family<RejectionLabels, Counter>,
    retries: Family<UpstreamLabels, Counter>,
    lost: Family<UpstreamLabels, Counter>,
    buffered_bytes: Gauge,
}

impl Metrics {
    /// Creates the families and registers them in `registry` under `zeroscale_activator_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            in_flight: Family::default(),
            queue_depth: Family::default(),
            queue_wait: Family::new_with_constructor(latency_histogram),
            cold_starts: Family::default(),
            cold_start_duration: Family::new_with_constructor(latency_histogram),
            cold_start_started_at: Family::default(),
            cold_start_address_at: Family::default(),
            cold_start_forwarded_at: Family::default(),
            rejections: Family::default(),
            retries: Family::default(),
            lost: Family::default(),
            buffered_bytes: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("zeroscale_activator");
        r.register(
            "requests",
            "Requests answered, by status code",
            metrics.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from arrival to the end of the response, queue time included",
            metrics.duration.clone(),
        );
        r.register(
            "requests_in_flight",
            "Requests forwarded to a pod and not finished",
            metrics.in_flight.clone(),
        );
        r.register(
            "queue_depth",
            "Requests waiting for a pod or for pod capacity",
            metrics.queue_depth.clone(),
        );
        r.register(
            "queue_wait_seconds",
            "Time requests spent in the queue",
            metrics.queue_wait.clone(),
        );
        r.register(
            "cold_starts",
            "Cold episodes: a request found the function with no ready pod",
            metrics.cold_starts.clone(),
        );
        r.register(
            "cold_start_duration_seconds",
            "Arrival of the request that started a cold episode to its forwarding to a pod",
            metrics.cold_start_duration.clone(),
        );
        r.register(
            "cold_start_started_timestamp_seconds",
            "Wall-clock time the latest cold episode started (its first request admitted)",
            metrics.cold_start_started_at.clone(),
        );
        r.register(
            "cold_start_address_timestamp_seconds",
            "Wall-clock time the latest cold episode first knew the address of a pod it could wait for",
            metrics.cold_start_address_at.clone(),
        );
        r.register(
            "cold_start_forwarded_timestamp_seconds",
            "Wall-clock time the latest request of a cold episode was handed to a pod",
            metrics.cold_start_forwarded_at.clone(),
        );
        r.register(
            "rejections",
            "Buffered requests answered with an error, by reason",
            metrics.rejections.clone(),
        );
        r.register(
            "upstream_retries",
            "Requests sent again (to another pod, or after waiting) because their pod went away, by reason",
            metrics.retries.clone(),
        );
        r.register(
            "upstream_lost",
            "Requests whose pod went away when they could not be sent again (answered 502 or cut), by reason",
            metrics.lost.clone(),
        );
        r.register(
            "buffered_bytes",
            "Bytes accounted to parked requests over all functions",
            metrics.buffered_bytes.clone(),
        );
        metrics
    }

    /// Handles for one function, resolved once.
    pub fn for_function(self: &Arc<Self>, key: &FunctionKey) -> FunctionMetrics {
        let labels = FunctionLabels::from(key);
        FunctionMetrics {
            duration: self.duration.get_or_create(&labels).clone(),
            in_flight: self.in_flight.get_or_create(&labels).clone(),
            queue_depth: self.queue_depth.get_or_create(&labels).clone(),
            queue_wait: self.queue_wait.get_or_create(&labels).clone(),
            cold_starts: ColdStarts {
                count: self.cold_starts.get_or_create(&labels).clone(),
                last_started: self.cold_start_started_at.get_or_create(&labels).clone(),
                last_address: self.cold_start_address_at.get_or_create(&labels).clone(),
            },
            cold_start_duration: ColdStartDuration {
                histogram: self.cold_start_duration.get_or_create(&labels).clone(),
                last_forwarded: self.cold_start_forwarded_at.get_or_create(&labels).clone(),
            },
            codes: Vec::new(),
            labels,
            families: Arc::clone(self),
        }
    }

    /// Counts a response to a request that never reached a known function (unknown host and such).
    pub fn count_unrouted(&self, code: u16) {
        let labels = CodeLabels {
            namespace: String::new(),
            function: String::new(),
            revision: String::new(),
            code,
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// The gauge of bytes accounted to parked requests.
    pub fn buffered_bytes(&self) -> &Gauge {
        &self.buffered_bytes
    }
}

/// Cached metric handles of one function.
pub struct FunctionMetrics {
    labels: FunctionLabels,
    families: Arc<Metrics>,
    /// Request duration histogram.
    pub duration: Histogram,
    /// Requests in flight to pods.
    pub in_flight: Gauge,
    /// Requests in the queue.
    pub queue_depth: Gauge,
    /// Queue wait histogram.
    pub queue_wait: Histogram,
    /// Cold episodes.
    pub cold_starts: ColdStarts,
    /// Cold-start duration histogram.
    pub cold_start_duration: ColdStartDuration,
    // Per-code counters, found by a short scan: a function answers with few distinct codes.
    codes: Vec<(u16, Counter)>,
}

impl FunctionMetrics {
    /// Counts one response with `code`.
    pub fn count_response(&mut self, code: u16) {
        if let Some((_, c)) = self.codes.iter().find(|(k, _)| *k == code) {
            c.inc();
            return;
        }
        let labels = CodeLabels {
            namespace: self.labels.namespace.clone(),
            function: self.labels.function.clone(),
            revision: self.labels.revision.clone(),
            code,
        };
        let counter = self.families.requests.get_or_create(&labels).clone();
        counter.inc();
        self.codes.push((code, counter));
    }

    /// Counts one rejected buffered request.
    pub fn count_rejection(&self, reason: &'static str) {
        let labels = RejectionLabels {
            namespace: self.labels.namespace.clone(),
            function: self.labels.function.clone(),
            revision: self.labels.revision.clone(),
            reason,
        };
        self.families.rejections.get_or_create(&labels).inc();
    }

    fn upstream_labels(&self, reason: &'static str) -> UpstreamLabels {
        UpstreamLabels {
            namespace: self.labels.namespace.clone(),
            function: self.labels.function.clone(),
            revision: self.labels.revision.clone(),
            reason,
        }
    }

    /// Counts one request sent again because its pod went away.
    pub fn count_retry(&self, reason: &'static str) {
        self.families
            .retries
            .get_or_create(&self.upstream_labels(reason))
            .inc();
    }

    /// Counts one request lost because its pod went away.
    pub fn count_lost(&self, reason: &'static str) {
        self.families
            .lost
            .get_or_create(&self.upstream_labels(reason))
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn sample(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn cold_episode_stamps_wall_clock_start_address_and_forward() {
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        let key = FunctionKey::new("ns", "f");
        let f = metrics.for_function(&key);
        let before = unix_now();
        assert_eq!(f.cold_starts.inc(), 0);
        f.cold_starts.address_known();
        f.cold_start_duration.observe(0.25);
        let after = unix_now();
        let mut text = String::new();
        encode(&mut text, &registry).expect("encode");
        let started = sample(&text, "zeroscale_activator_cold_start_started_timestamp_seconds{")
            .expect("started stamp");
        let forwarded = sample(
            &text,
            "zeroscale_activator_cold_start_forwarded_timestamp_seconds{",
        )
        .expect("forwarded stamp");
        let address = sample(&text, "zeroscale_activator_cold_start_address_timestamp_seconds{")
            .expect("address stamp");
        assert!(before <= started && started <= address && address <= forwarded && forwarded <= after);
        assert_eq!(f.cold_starts.get(), 1);
        assert_eq!(
            sample(&text, "zeroscale_activator_cold_start_duration_seconds_sum{"),
            Some(0.25)
        );
    }

    #[test]
    fn a_revision_entry_is_labelled_with_its_function_and_revision() {
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        let mut revision = metrics.for_function(&FunctionKey::new("ns", "shop-0123456789"));
        revision.count_response(200);
        revision.count_rejection("startup-failed");
        revision.count_retry(RETRY_NOT_SENT);
        revision.queue_depth.set(2);
        let mut plain = metrics.for_function(&FunctionKey::new("ns", "hello"));
        plain.count_response(200);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encode");
        let shop = r#"namespace="ns",function="shop",revision="shop-0123456789""#;
        for series in [
            format!("zeroscale_activator_requests_total{{{shop},code=\"200\"}} 1"),
            format!("zeroscale_activator_rejections_total{{{shop},reason=\"startup-failed\"}} 1"),
            format!("zeroscale_activator_upstream_retries_total{{{shop},reason=\"not-sent\"}} 1"),
            format!("zeroscale_activator_queue_depth{{{shop}}} 2"),
            format!("zeroscale_activator_requests_in_flight{{{shop}}} 0"),
            r#"zeroscale_activator_requests_total{namespace="ns",function="hello",revision="",code="200"} 1"#
                .to_string(),
        ] {
            assert!(text.lines().any(|l| l == series), "no {series} in\n{text}");
        }
    }
}
