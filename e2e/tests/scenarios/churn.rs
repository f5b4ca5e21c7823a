//! The churn soak (issue 12, point 2), modelled on Knative's `TestDestroyPodInflight`, its scale tests
//! and its chaos duck tests: an open-loop client at a steady rate through the activator while the
//! function scales up and down through the autoscaler, its pods are deleted at random, the activator
//! is rolled and the autoscaler pod is killed. Every response must be 2xx.
//!
//! Bounded: [`TOTAL`] requests at [`RATE`] per second (about 3 minutes), then the client stops by
//! itself; the chaos steps run while it sends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::MissedTickBehavior;
use zeroscale_e2e::installed::{kill_pod, pod_metrics, ready_component_pods, rollout_restart};
use zeroscale_e2e::{counter_value, http_request, kubectl_ok, record_figure, record_timing, try_kubectl};

use crate::load::{Traffic, burst};
use crate::support::{Scenario, echo_spec};

/// Requests per second of the open-loop client.
const RATE: u64 = 120;
/// Requests in all (at [`RATE`], 170 s).
const TOTAL: u64 = 20_400;
/// Time limit of one request (a request may wait for a pod to start).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Most requests in flight at once; a safety bound on sockets if the function stalls (the client
/// then falls behind its schedule, which the test prints).
const MAX_IN_FLIGHT: usize = 2_000;
/// The small body of the POSTs (every other request).
const POST_BODY: &str = r#"{"churn":"a small body that a pod going away must not lose"}"#;

/// What the open-loop client saw.
#[derive(Debug, Default)]
struct Outcome {
    ok: u64,
    failures: Vec<String>,
    max_latency: Duration,
}

/// Sends [`TOTAL`] requests at [`RATE`] per second, alternating `GET /?i=<n>` and a POST with a small
/// body, each on a fresh connection, whatever the answers (open loop).
async fn open_loop(url: String, host: String, done: Arc<AtomicBool>) -> (Outcome, Duration) {
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / RATE as u32);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut requests = Vec::with_capacity(TOTAL as usize);
    for i in 0..TOTAL {
        ticks.tick().await;
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let (url, host, outcome) = (url.clone(), host.clone(), Arc::clone(&outcome));
        requests.push(tokio::spawn(async move {
            let begun = Instant::now();
            let (method, target, body) = if i % 2 == 0 {
                (Method::GET, format!("{url}/?i={i}"), "")
            } else {
                (Method::POST, format!("{url}/submit?i={i}"), POST_BODY)
            };
            let result = http_request(
                method.clone(),
                &target,
                &[("host", &host), ("content-type", "application/json")],
                body,
                REQUEST_TIMEOUT,
            )
            .await;
            drop(slot);
            let at = started.elapsed().as_millis();
            let mut o = outcome.lock().await;
            o.max_latency = o.max_latency.max(begun.elapsed());
            match result {
                Ok(r) if (200..300).contains(&r.status) => o.ok += 1,
                Ok(r) => o.failures.push(format!(
                    "{at} ms: {method} #{i}: {} {}",
                    r.status,
                    r.text().trim()
                )),
                Err(e) => o.failures.push(format!("{at} ms: {method} #{i}: {e}")),
            }
        }));
    }
    let sending = started.elapsed();
    for request in requests {
        if let Err(e) = request.await {
            outcome
                .lock()
                .await
                .failures
                .push(format!("request task failed: {e}"));
        }
    }
    done.store(true, Ordering::SeqCst);
    let outcome = std::mem::take(&mut *outcome.lock().await);
    (outcome, sending)
}

/// The activator's retry and loss counters, summed over every activator pod seen (a pod's last scrape
/// counts once it is gone, so requests retried by a pod in its final seconds may be missing).
#[derive(Default)]
struct Counters {
    by_pod: std::collections::BTreeMap<String, (u64, u64)>,
}

/// The `revision` labels the activator's series of Function `churn` in `namespace` carry in `text`
/// (the empty one always, for a Function without revisions).
fn revisions_in(text: &str, namespace: &str) -> std::collections::BTreeSet<String> {
    let prefix = format!("namespace=\"{namespace}\",function=\"churn\",revision=\"");
    let mut revisions: std::collections::BTreeSet<String> = text
        .lines()
        .filter(|l| l.starts_with("zeroscale_activator_"))
        .filter_map(|l| l.split_once(&prefix))
        .filter_map(|(_, rest)| rest.split_once('"'))
        .map(|(revision, _)| revision.to_string())
        .collect();
    revisions.insert(String::new());
    revisions
}

impl Counters {
    /// Scrapes every ready activator pod through the API server's pod proxy.
    async fn scrape(&mut self, namespace: &str) {
        for pod in ready_component_pods("activator").await {
            let Ok(text) = pod_metrics(&pod).await else {
                continue;
            };
            // Every revision of the Function counts (the series carry `revision`).
            let revisions = revisions_in(&text, namespace);
            let series = |name: &str, revision: &str, reason: &str| {
                format!(
                    "zeroscale_activator_{name}_total{{namespace=\"{namespace}\",function=\"churn\",revision=\"{revision}\",reason=\"{reason}\"}}"
                )
            };
            let sum = |name: &str, reasons: &[&str]| -> u64 {
                revisions
                    .iter()
                    .flat_map(|v| reasons.iter().map(move |r| (v, r)))
                    .map(|(v, r)| counter_value(&text, &series(name, v, r)))
                    .sum()
            };
            let retries = sum("upstream_retries", &["not-sent", "pod-gone", "replayed"]);
            let lost = sum("upstream_lost", &["before-response", "mid-response", "peer-hop"]);
            self.by_pod.insert(pod, (retries, lost));
        }
    }

    fn totals(&self) -> (u64, u64) {
        self.by_pod
            .values()
            .fold((0, 0), |(r, l), (pr, pl)| (r + pr, l + pl))
    }
}

/// Deletes one of the function's pods, chosen at random (a normal delete: SIGTERM, its grace period,
/// the shutdown contract).
async fn delete_random_function_pod(namespace: &str) {
    let out = kubectl_ok(&[
        "get",
        "pods",
        "-n",
        namespace,
        "-l",
        "zeroscale.dev/function=churn",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ])
    .await;
    let pods: Vec<&str> = out.split_whitespace().collect();
    if pods.is_empty() {
        return;
    }
    let pod = pods[(uuid::Uuid::new_v4().as_u128() % pods.len() as u128) as usize];
    println!("churn: deleting function pod {pod}");
    let _ = try_kubectl(&["delete", "pod", "-n", namespace, pod, "--wait=false"], None).await;
}

/// Issue 12's acceptance: ≥ 20,000 requests, GET and POST, through scale-up, scale-down, pod deletion,
/// an activator rollout and an autoscaler kill, and not one non-2xx answer.
#[tokio::test]
async fn churn_soak() {
    let s = Scenario::new("churn").await;
    s.installed
        .require_chart("rolling the activator and killing the autoscaler");
    // Two requests per pod, so bursts of slow requests need several pods and idle stretches let the
    // autoscaler take them away again (a 6 s window).
    let spec = echo_spec(json!({"concurrency": 2, "scale": {"initial": 1, "min": 1, "max": 6}}));
    s.apply("churn", spec).await;
    s.wait_ready("churn").await;
    let host = s.host("churn").await;
    let namespace = s.namespace().to_string();
    let url = s.installed.activator_url.trim_end_matches('/').to_string();

    let done = Arc::new(AtomicBool::new(false));
    let begun = Instant::now();
    let client = tokio::spawn(open_loop(url.clone(), host.clone(), Arc::clone(&done)));
    let mut counters = Counters::default();
    let slow = format!("{url}/?sleep=300");
    let sending_time = Duration::from_secs(TOTAL / RATE);
    let mut steps = 0u64;
    // The chaos: cycles of steps until the client has sent everything.
    while !done.load(Ordering::SeqCst) {
        let step = steps;
        steps += 1;
        counters.scrape(&namespace).await;
        // A rollout takes up to a minute: none that would outlast the client by much.
        let rollout_fits = begun.elapsed() + Duration::from_secs(30) < sending_time;
        match step % 6 {
            0 | 3 => {
                // Demand rises: 10 clients of slow requests for 10 s, the autoscaler adds pods.
                println!("churn: burst (scale up)");
                let load = Traffic::start(&slow, &host, 10, Duration::ZERO);
                tokio::time::sleep(Duration::from_secs(5)).await;
                let extra = burst(&slow, &host, 20, REQUEST_TIMEOUT).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
                let tally = load.stop().await;
                assert!(
                    tally.failures.is_empty() && extra.failures.is_empty(),
                    "burst failures: {:?} {:?}",
                    tally.failures.first(),
                    extra.failures.first()
                );
            }
            1 | 4 => {
                delete_random_function_pod(&namespace).await;
                // Idle apart from the steady client: the autoscaler scales back down.
                println!("churn: idle (scale down)");
                tokio::time::sleep(Duration::from_secs(12)).await;
            }
            2 if rollout_fits => {
                counters.scrape(&namespace).await;
                println!("churn: rolling the activator");
                let rolled = Instant::now();
                rollout_restart("activator", Duration::from_secs(120)).await;
                record_timing("scenarios: churn activator rollout", rolled.elapsed());
            }
            _ => {
                println!("churn: killing the autoscaler and a function pod");
                for pod in ready_component_pods("autoscaler").await {
                    kill_pod(&pod).await;
                }
                delete_random_function_pod(&namespace).await;
                tokio::time::sleep(Duration::from_secs(8)).await;
            }
        }
    }
    let (outcome, sending) = client.await.expect("the client task finished");
    counters.scrape(&namespace).await;
    let (retries, lost) = counters.totals();
    record_timing("scenarios: churn soak", begun.elapsed());
    let answered = outcome.ok + outcome.failures.len() as u64;
    record_figure(&format!(
        "churn soak: {answered} requests ({} 2xx, {} not) in {:.0?} (sending took {sending:.0?}, {} chaos \
         steps, slowest {:.0?}); activator retries {retries}, lost {lost} (summed over the activator pods \
         scraped)",
        outcome.ok,
        outcome.failures.len(),
        begun.elapsed(),
        steps,
        outcome.max_latency,
    ));
    assert_eq!(answered, TOTAL, "every request was sent and answered");
    assert!(
        outcome.failures.is_empty(),
        "{} of {answered} requests were not 2xx:\n  {}",
        outcome.failures.len(),
        outcome
            .failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}
