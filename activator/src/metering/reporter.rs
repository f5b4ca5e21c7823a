//! The usage reporter: it numbers each window's usage into records ([`super::usage`]) and sends what
//! waits in the outbox, oldest first, stopping at the first failure (the rest wait for the next
//! round, so records reach the sink in order); on shutdown it retries until a deadline. The task
//! driving it over the routing table is `crate::usage_report`.

use std::{future::Future, time::Duration};

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use jiff::Timestamp;
use tokio::time::Instant;

use super::usage::{Outbox, RecordIds, UsageRecord, Window};

/// CloudEvent type of usage records.
pub const USAGE_TYPE: &str = "dev.zeroscale.usage";

/// Why a usage record was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The sink could not be reached.
    #[error("cannot reach the usage sink: {0}")]
    Http(#[from] hyper_util::client::legacy::Error),
    /// The sink answered with an error status.
    #[error("usage sink answered {0}")]
    Status(http::StatusCode),
    /// The sink did not answer in time.
    #[error("usage sink did not answer in time")]
    Timeout,
    /// The request could not be built.
    #[error("cannot build the usage request: {0}")]
    Request(#[from] http::Error),
    /// The record could not be encoded.
    #[error("cannot encode the usage record: {0}")]
    Json(#[from] serde_json::Error),
}

/// Where usage records go.
pub trait UsageSink: Send + Sync + 'static {
    /// Sends one record; `Ok` once the sink took it.
    fn send(&self, record: &UsageRecord) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// An HTTP sink taking binary-mode CloudEvents (any broker ingress or HTTP receiver).
#[derive(Debug)]
pub struct HttpSink {
    uri: Uri,
    source: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

const SEND_TIMEOUT: Duration = Duration::from_secs(5);

impl HttpSink {
    /// A sink at `uri`, for records of the activator pod `pod`.
    pub fn new(uri: Uri, pod: &str) -> Self {
        Self {
            uri,
            source: format!("/zeroscale/activator/{pod}"),
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }
}

impl UsageSink for HttpSink {
    async fn send(&self, record: &UsageRecord) -> Result<(), SinkError> {
        let body = serde_json::to_vec(record)?;
        let request = Request::post(self.uri.clone())
            .header("ce-specversion", "1.0")
            .header("ce-id", &record.id)
            .header("ce-source", &self.source)
            .header("ce-type", USAGE_TYPE)
            .header("ce-subject", format!("{}/{}", record.namespace, record.function))
            .header("ce-time", &record.window_end)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let response = tokio::time::timeout(SEND_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| SinkError::Timeout)??;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(SinkError::Status(response.status()))
        }
    }
}

/// The reporter's state: what it numbers and what waits.
#[derive(Debug)]
pub struct Reporter<S> {
    sink: S,
    activator: String,
    ids: RecordIds,
    outbox: Outbox,
    window_start: Timestamp,
}

impl<S: UsageSink> Reporter<S> {
    /// A reporter for activator pod `activator` sending to `sink` through `outbox`.
    pub fn new(sink: S, activator: &str, outbox: Outbox) -> Self {
        Self {
            sink,
            activator: activator.to_string(),
            ids: RecordIds::new(activator),
            outbox,
            window_start: Timestamp::now(),
        }
    }

    /// Closes the window now: one record per window with usage, queued in the outbox.
    pub fn collect(&mut self, windows: Vec<Window>) {
        let end = Timestamp::now();
        for window in windows {
            let record = self.ids.record(&self.activator, window, self.window_start, end);
            self.outbox.push(record);
        }
        self.window_start = end;
    }

    /// Sends waiting records oldest first until one fails; returns whether all were sent.
    pub async fn send_pending(&mut self) -> bool {
        while let Some(record) = self.outbox.front() {
            match self.sink.send(record).await {
                Ok(()) => self.outbox.sent(),
                Err(e) => {
                    tracing::warn!(id = record.id, error = %e, pending = self.outbox.len(), "usage record not sent: will retry");
                    self.outbox.failed();
                    return false;
                }
            }
        }
        true
    }

    /// Records waiting.
    pub fn pending(&self) -> usize {
        self.outbox.len()
    }

    /// Retries until everything is sent or `deadline` passes, backing off from 100 ms to 2 s.
    pub async fn drain(&mut self, deadline: Instant) -> bool {
        let mut backoff = Duration::from_millis(100);
        loop {
            if tokio::time::timeout_at(deadline, self.send_pending()).await == Ok(true) {
                return true;
            }
            if Instant::now() + backoff >= deadline {
                return false;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::metering::usage::{OutboxMetrics, UsageTotals};

    /// A sink that refuses its first `failures` sends and keeps what it takes.
    #[derive(Default)]
    struct Flaky {
        failures: Mutex<u32>,
        taken: Mutex<Vec<UsageRecord>>,
    }

    impl UsageSink for Arc<Flaky> {
        async fn send(&self, record: &UsageRecord) -> Result<(), SinkError> {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if *failures > 0 {
                *failures -= 1;
                return Err(SinkError::Timeout);
            }
            self.taken
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(record.clone());
            Ok(())
        }
    }

    fn window(billed: u64) -> Window {
        let totals = UsageTotals {
            billed_ms: billed,
            ..UsageTotals::default()
        };
        Window {
            namespace: "ns".into(),
            function: "f".into(),
            revision: None,
            totals,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failed_records_are_retried_in_order_and_none_is_lost() {
        let sink = Arc::new(Flaky::default());
        *sink.failures.lock().unwrap_or_else(|e| e.into_inner()) = 3;
        let metrics = OutboxMetrics::default();
        let mut reporter = Reporter::new(Arc::clone(&sink), "a", Outbox::new(100, metrics.clone()));
        reporter.collect(vec![window(5), window(7)]);
        assert!(!reporter.send_pending().await, "the first send fails");
        reporter.collect(vec![window(11)]);
        assert!(reporter.drain(Instant::now() + Duration::from_secs(10)).await);
        let taken = sink.taken.lock().unwrap_or_else(|e| e.into_inner());
        let billed: Vec<u64> = taken.iter().map(|r| r.billed_milliseconds).collect();
        assert_eq!(billed, vec![5, 7, 11]);
        let ids: std::collections::HashSet<_> = taken.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), 3);
        assert_eq!((metrics.sent.get(), metrics.failures.get()), (3, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn draining_gives_up_at_its_deadline() {
        let sink = Arc::new(Flaky::default());
        *sink.failures.lock().unwrap_or_else(|e| e.into_inner()) = u32::MAX;
        let mut reporter = Reporter::new(Arc::clone(&sink), "a", Outbox::new(100, OutboxMetrics::default()));
        reporter.collect(vec![window(5)]);
        let started = Instant::now();
        assert!(!reporter.drain(started + Duration::from_secs(3)).await);
        assert!(Instant::now() <= started + Duration::from_secs(3));
        assert_eq!(reporter.pending(), 1, "kept, not dropped");
    }
}
