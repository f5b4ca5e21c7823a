//! The producer: posts binary-mode CloudEvents to a namespace's broker with a ServiceAccount token,
//! a bounded number at once, and retries each event (same `source` and `id`) until it is answered
//! 202, as a producer that must not lose its events does. A retried publish whose first attempt was
//! stored after all is a duplicate the store drops (docs/eventing.md, "Event stores").

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use tokio::sync::{Mutex, Semaphore};
use zeroscale_e2e::http_request;

/// The `ce-source` of every event.
pub const SOURCE: &str = "/e2e/event-stores";
/// The `ce-type` the Trigger routes.
pub const TYPE: &str = "e2e.store";
/// Attempts per event before the producer gives up on it.
const ATTEMPTS: u32 = 40;
/// Time limit of one publish.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how the producer posts.
#[derive(Clone, Debug)]
pub struct Producer {
    /// The broker's base URL (`ZEROSCALE_BROKER`).
    pub broker: String,
    /// The namespace whose broker gets the events.
    pub namespace: String,
    /// A token for the audience `zeroscale-broker` of a ServiceAccount allowed to post.
    pub token: String,
}

/// What the producer achieved.
#[derive(Debug, Default)]
pub struct Produced {
    /// Ids answered 202.
    pub accepted: BTreeSet<String>,
    /// Answers other than 202 and failed requests, retried.
    pub refused: u64,
    /// The first few refusals, for the report.
    pub samples: Vec<String>,
    /// Ids given up on after [`ATTEMPTS`].
    pub abandoned: Vec<String>,
    /// How long posting took.
    pub took: Duration,
}

/// The id of event `i`.
pub fn event_id(i: usize) -> String {
    format!("ev-{i:05}")
}

impl Producer {
    /// POSTs one event of type `ty`; the status, or the error as text.
    pub async fn post(&self, id: &str, ty: &str) -> Result<u16, String> {
        let authorization = format!("Bearer {}", self.token);
        let headers = [
            ("ce-specversion", "1.0"),
            ("ce-id", id),
            ("ce-source", SOURCE),
            ("ce-type", ty),
            ("content-type", "application/json"),
            ("authorization", authorization.as_str()),
        ];
        let url = format!("{}/{}", self.broker.trim_end_matches('/'), self.namespace);
        let body = format!(r#"{{"id":"{id}"}}"#);
        match http_request(Method::POST, &url, &headers, body, POST_TIMEOUT).await {
            Ok(response) => Ok(response.status),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Posts events `0..count`, `parallel` at a time, each until it is answered 202.
    pub async fn produce(self, count: usize, parallel: usize) -> Produced {
        let started = Instant::now();
        let produced = Arc::new(Mutex::new(Produced::default()));
        let slots = Arc::new(Semaphore::new(parallel));
        let this = Arc::new(self);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..count {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let (this, produced) = (Arc::clone(&this), Arc::clone(&produced));
            tasks.spawn(async move {
                let id = event_id(i);
                for attempt in 1..=ATTEMPTS {
                    let answer = this.post(&id, TYPE).await;
                    if answer == Ok(202) {
                        produced.lock().await.accepted.insert(id);
                        return drop(slot);
                    }
                    {
                        let mut p = produced.lock().await;
                        p.refused += 1;
                        if p.samples.len() < 5 {
                            p.samples.push(format!("{id} attempt {attempt}: {answer:?}"));
                        }
                    }
                    let backoff = Duration::from_millis(250 * u64::from(attempt)).min(Duration::from_secs(3));
                    tokio::time::sleep(backoff).await;
                }
                produced.lock().await.abandoned.push(id);
                drop(slot);
            });
        }
        while tasks.join_next().await.is_some() {}
        let mut produced = std::mem::take(&mut *produced.lock().await);
        produced.took = started.elapsed();
        produced
    }
}
