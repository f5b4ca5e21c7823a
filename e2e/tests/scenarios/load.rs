//! Load for the scenarios: steady traffic that counts every failure, and bursts of concurrent requests.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use http::Method;
use tokio::task::JoinHandle;
use zeroscale_e2e::http_request;

use crate::support::echo_pod;

/// Time limit of one request of steady traffic.
const STEADY_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What a stretch of traffic saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests answered 200.
    pub ok: u64,
    /// Every other outcome: `<elapsed since start> <status or error>: <body>`.
    pub failures: Vec<String>,
    /// The echo pods that answered.
    pub pods: BTreeSet<String>,
    /// The slowest answer.
    pub max_latency: Duration,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failures.extend(other.failures);
        self.pods.extend(other.pods);
        self.max_latency = self.max_latency.max(other.max_latency);
    }
}

/// Workers that each send one request after another (a fresh connection each) until stopped.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    workers: Vec<JoinHandle<Tally>>,
}

impl Traffic {
    /// Starts `workers` clients sending `GET <url>` with `Host: host`, pausing `pause` between requests.
    pub fn start(url: &str, host: &str, workers: usize, pause: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let workers = (0..workers)
            .map(|_| {
                let (stop, sent) = (stop.clone(), sent.clone());
                let (url, host) = (url.to_string(), host.to_string());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    while !stop.load(Ordering::SeqCst) {
                        let begun = Instant::now();
                        let result =
                            http_request(Method::GET, &url, &[("host", &host)], "", STEADY_REQUEST_TIMEOUT)
                                .await;
                        sent.fetch_add(1, Ordering::SeqCst);
                        tally.max_latency = tally.max_latency.max(begun.elapsed());
                        let at = started.elapsed().as_millis();
                        match result {
                            Ok(r) if r.status == 200 => {
                                tally.ok += 1;
                                tally.pods.insert(echo_pod(&r.text()));
                            }
                            Ok(r) => {
                                tally
                                    .failures
                                    .push(format!("{at} ms: {} {}", r.status, r.text().trim()))
                            }
                            Err(e) => tally.failures.push(format!("{at} ms: {e}")),
                        }
                        tokio::time::sleep(pause).await;
                    }
                    tally
                })
            })
            .collect();
        Self { stop, sent, workers }
    }

    /// Requests completed so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Stops the workers (each finishes its request in flight) and adds up what they saw.
    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        let mut total = Tally::default();
        for worker in self.workers {
            match worker.await {
                Ok(tally) => total.add(tally),
                Err(e) => total.failures.push(format!("worker panicked: {e}")),
            }
        }
        total
    }
}

/// Sends `n` `GET <url>` at once (each on its own connection) and tallies the answers.
pub async fn burst(url: &str, host: &str, n: usize, timeout: Duration) -> Tally {
    let requests = (0..n).map(|_| async move {
        let begun = Instant::now();
        let result = http_request(Method::GET, url, &[("host", host)], "", timeout).await;
        (begun.elapsed(), result)
    });
    let mut tally = Tally::default();
    for (elapsed, result) in join_all(requests).await {
        tally.max_latency = tally.max_latency.max(elapsed);
        match result {
            Ok(r) if r.status == 200 => {
                tally.ok += 1;
                tally.pods.insert(echo_pod(&r.text()));
            }
            Ok(r) => tally.failures.push(format!("{} {}", r.status, r.text().trim())),
            Err(e) => tally.failures.push(e.to_string()),
        }
    }
    tally
}

/// The first few failures, for an assertion message.
pub fn first_failures(tally: &Tally) -> String {
    tally
        .failures
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n  ")
}
