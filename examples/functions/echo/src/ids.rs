//! The CloudEvent ids this pod received (`ECHO_RECORD_IDS=1`), for end-to-end tests that count
//! deliveries: every request carrying a `ce-id` header (binary mode) is recorded, and `GET /ids`
//! answers JSON `{"pod", "requests", "ids"}`: how many such requests arrived (redeliveries
//! included) and the distinct ids, sorted. Off by default: the set grows with every new id.
//!
//! `GET /ids/log` answers `{"pod", "log"}`: the first [`MAX_LOG`] such requests in arrival order,
//! each `{"id", "at_ms"` (Unix time in milliseconds, the node's clock)`, "extensions"}` (the
//! `ce-zeroscale*` headers, such as the dead-letter error extensions), so a test can check how
//! attempts were spaced and what a dead-letter sink received.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::HeaderMap;
use tokio::sync::Mutex;

/// Requests kept in the arrival log; later ones are counted in `/ids` only.
pub const MAX_LOG: usize = 1_000;

/// The ids received so far; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct IdLog {
    inner: Arc<Mutex<Seen>>,
}

#[derive(Debug, Default)]
struct Seen {
    requests: u64,
    ids: BTreeSet<String>,
    log: Vec<serde_json::Value>,
}

impl IdLog {
    /// Records one request with CloudEvent id `id` and `headers`.
    pub async fn record(&self, id: &str, headers: &HeaderMap) {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let extensions: BTreeMap<&str, String> = headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("ce-zeroscale"))
            .map(|(name, value)| {
                (
                    name.as_str(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut seen = self.inner.lock().await;
        if seen.log.len() < MAX_LOG {
            let entry = serde_json::json!({"id": id, "at_ms": at_ms, "extensions": extensions});
            seen.log.push(entry);
        }
        seen.requests += 1;
        if !seen.ids.contains(id) {
            seen.ids.insert(id.to_string());
        }
    }

    /// The `/ids/log` document.
    pub async fn log_document(&self) -> serde_json::Value {
        let seen = self.inner.lock().await;
        serde_json::json!({ "log": seen.log })
    }

    /// The `/ids` document: `pod`, `requests` (with a `ce-id`, repeats included) and the distinct
    /// `ids`.
    pub async fn document(&self, pod: Option<&str>) -> serde_json::Value {
        let seen = self.inner.lock().await;
        serde_json::json!({
            "pod": pod,
            "requests": seen.requests,
            "ids": seen.ids.iter().collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_requests_and_distinct_ids() {
        let log = IdLog::default();
        let mut headers = HeaderMap::new();
        headers.insert("ce-zeroscaleerrorcode", "500".parse().expect("header value"));
        headers.insert("ce-type", "t".parse().expect("header value"));
        for id in ["b", "a", "b"] {
            log.record(id, &headers).await;
        }
        let arrivals = log.log_document().await;
        let entries = arrivals["log"].as_array().expect("a log");
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1]["id"], "a");
        assert!(entries[1]["at_ms"].as_u64().is_some_and(|ms| ms > 0));
        assert_eq!(
            entries[0]["extensions"],
            serde_json::json!({"ce-zeroscaleerrorcode": "500"}),
            "only the zeroscale extensions are kept"
        );
        let doc = log.document(Some("p")).await;
        assert_eq!(doc["pod"], "p");
        assert_eq!(doc["requests"], 3);
        assert_eq!(doc["ids"], serde_json::json!(["a", "b"]));
    }
}
