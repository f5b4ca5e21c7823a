//! The CloudEvent ids this pod received (`ECHO_RECORD_IDS=1`), for end-to-end tests that count
//! deliveries: every request carrying a `ce-id` header (binary mode) is recorded, and `GET /ids`
//! answers JSON `{"pod", "requests", "ids"}`: how many such requests arrived (redeliveries
//! included) and the distinct ids, sorted. Off by default: the set grows with every new id.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::Mutex;

/// The ids received so far; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct IdLog {
    inner: Arc<Mutex<Seen>>,
}

#[derive(Debug, Default)]
struct Seen {
    requests: u64,
    ids: BTreeSet<String>,
}

impl IdLog {
    /// Records one request with CloudEvent id `id`.
    pub async fn record(&self, id: &str) {
        let mut seen = self.inner.lock().await;
        seen.requests += 1;
        if !seen.ids.contains(id) {
            seen.ids.insert(id.to_string());
        }
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
        for id in ["b", "a", "b"] {
            log.record(id).await;
        }
        let doc = log.document(Some("p")).await;
        assert_eq!(doc["pod"], "p");
        assert_eq!(doc["requests"], 3);
        assert_eq!(doc["ids"], serde_json::json!(["a", "b"]));
    }
}
