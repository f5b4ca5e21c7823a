//! Usage metering and cold-start anatomy on the installed system (issue #16, docs/metering.md): one
//! cold request's phases from its `ColdStart` Event, then 500 requests of known duration
//! (`?sleep=400`) to a Function with a 128 MiB memory limit, sent half through each activator replica:
//! the billed milliseconds and memory byte-seconds in the activators' `zeroscale_faas_*` counters and
//! in the usage records a host sink receives match the expected sums within 2 %, and a graceful
//! restart of the activator that served them loses no usage record.
//!
//! The usage sink is an HTTP server of this test on the node's bridge address (pods reach the host
//! there); the test points the installed activators at it (`ZEROSCALE_ACTIVATOR_USAGE_SINK`, flushed
//! every 2 s) and restores them after. Run it after the install, with `ZEROSCALE_E2E_INSTALLED=1` and
//! `--test-threads=1`, like the scenario suite.

#[allow(dead_code)] // shared with scenarios.rs; this suite uses part of it
#[path = "scenarios/support.rs"]
mod support;

use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use zeroscale_e2e::installed::wait_rollout;
use zeroscale_e2e::{http_request, kubectl_ok, record_figure, scrape, try_kubectl, wait_for};

use support::{COLD_REQUEST_TIMEOUT, Scenario, echo_spec};

/// The node's bridge address: the host as pods reach it (e2e/cluster/lib.sh `ZS_BRIDGE_IP`).
const BRIDGE_IP: &str = "10.244.0.1";
/// Requests of known duration.
const REQUESTS: usize = 500;
/// Each one's sleep at the pod.
const SLEEP_MS: u64 = 400;
/// Requests in flight at once.
const PARALLEL: usize = 25;
/// The Function's memory limit.
const MEMORY_BYTES: f64 = 128.0 * 1024.0 * 1024.0;
const ACTIVATOR: &str = "deployment/zeroscale-activator";
const SYSTEM: &str = "zeroscale-system";

/// Usage records received by the sink, by CloudEvent id (a record sent twice counts once).
type Records = Arc<Mutex<BTreeMap<String, Value>>>;

/// Starts the usage sink on the bridge address; returns its URL and what it receives.
async fn start_sink() -> (String, Records) {
    let listener = tokio::net::TcpListener::bind((BRIDGE_IP, 0))
        .await
        .expect("the sink binds the bridge address");
    let addr = listener.local_addr().expect("the sink's address");
    let records: Records = Arc::default();
    let store = Arc::clone(&records);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let store = Arc::clone(&store);
                    async move {
                        let id = req
                            .headers()
                            .get("ce-id")
                            .and_then(|v| v.to_str().ok())
                            .map(String::from);
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let data: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        if let Some(id) = id {
                            store.lock().unwrap_or_else(|e| e.into_inner()).insert(id, data);
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}/"), records)
}

/// Sums of the usage records of `namespace/function`: (records, ok invocations, billed ms, memory
/// byte-ms).
fn record_totals(records: &Records, namespace: &str, function: &str) -> (usize, u64, u64, f64) {
    let records = records.lock().unwrap_or_else(|e| e.into_inner());
    let mine: Vec<&Value> = records
        .values()
        .filter(|r| r["namespace"] == namespace && r["function"] == function)
        .collect();
    let sum = |f: &dyn Fn(&Value) -> u64| mine.iter().map(|r| f(r)).sum::<u64>();
    (
        mine.len(),
        sum(&|r| r["invocations"]["ok"].as_u64().unwrap_or(0)),
        sum(&|r| r["billedMilliseconds"].as_u64().unwrap_or(0)),
        mine.iter()
            .map(|r| r["memoryByteMilliseconds"].as_f64().unwrap_or(0.0))
            .sum(),
    )
}

/// The activator pods: (name, IP).
async fn activator_pods() -> Vec<(String, String)> {
    let out = kubectl_ok(&[
        "get",
        "pods",
        "-n",
        SYSTEM,
        "-l",
        "app.kubernetes.io/component=activator,app.kubernetes.io/part-of=zeroscale",
        "-o",
        "json",
    ])
    .await;
    let doc: Value = serde_json::from_str(&out).unwrap_or_default();
    doc["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| {
            Some((
                p["metadata"]["name"].as_str()?.to_string(),
                p["status"]["podIP"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The sum of `family`'s samples for `namespace/function` in Prometheus text.
fn family_sum(text: &str, family: &str, namespace: &str, function: &str, extra: &str) -> f64 {
    let labels = format!("namespace=\"{namespace}\",function=\"{function}\"");
    text.lines()
        .filter(|l| l.starts_with(family) && l.contains(&labels) && l.contains(extra))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The phases (ms) and total (ms) in the latest `ColdStart` Event's note.
fn parse_note(note: &str) -> Option<(f64, Vec<(String, f64)>)> {
    let rest = note.strip_prefix("cold start ")?;
    let (total, rest) = rest.split_once(" ms to first byte: ")?;
    let phases = rest
        .trim_end_matches(" (ms)")
        .split_whitespace()
        .filter_map(|p| {
            let (name, ms) = p.split_once('=')?;
            Some((name.to_string(), ms.parse().ok()?))
        })
        .collect();
    Some((total.parse().ok()?, phases))
}

async fn cold_start_event(namespace: &str, function: &str) -> String {
    wait_for(
        Duration::from_secs(30),
        "a ColdStart Event on the Function",
        || async {
            let out = try_kubectl(
                &["get", "events.events.k8s.io", "-n", namespace, "-o", "json"],
                None,
            )
            .await
            .ok()?;
            let doc: Value = serde_json::from_str(&out).ok()?;
            doc["items"]
                .as_array()?
                .iter()
                .filter(|e| e["reason"] == "ColdStart" && e["regarding"]["name"] == function)
                .filter_map(|e| e["note"].as_str().map(str::to_string))
                .next_back()
        },
    )
    .await
}

#[tokio::test]
async fn usage_is_billed_exactly_across_replicas_and_restarts_and_cold_starts_are_dissected() {
    let s = Scenario::new("metering").await;
    s.installed
        .require_chart("metering (it reconfigures the activator Deployment)");
    let ns = s.namespace().to_string();
    let (sink, records) = start_sink().await;
    let sink_env = format!("ZEROSCALE_ACTIVATOR_USAGE_SINK={sink}");
    kubectl_ok(&[
        "set",
        "env",
        "-n",
        SYSTEM,
        ACTIVATOR,
        &sink_env,
        "ZEROSCALE_ACTIVATOR_USAGE_FLUSH_INTERVAL=2s",
    ])
    .await;
    wait_rollout("activator", Duration::from_secs(120)).await;

    // A cold request, dissected.
    let name = "meter";
    let spec = echo_spec(json!({
        "scale": {"initial": 0, "min": 0, "window": "30s"},
        "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}},
    }));
    s.apply(name, spec).await;
    s.wait_ready(name).await;
    s.wait_replicas(name, "created at zero", Duration::from_secs(30), |d, _| d == 0)
        .await;
    let host = s.host(name).await;
    let started = Instant::now();
    let (status, _) = s.get_ok(&host, "/", COLD_REQUEST_TIMEOUT).await;
    let client_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, 200);
    let note = cold_start_event(&ns, name).await;
    record_figure(&format!("metering: cold start (client {client_ms:.1} ms) {note}"));
    let (total, phases) = parse_note(&note).unwrap_or_else(|| panic!("unreadable ColdStart note {note:?}"));
    let names: Vec<&str> = phases.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "queued",
            "decision",
            "scale-patch",
            "scheduled",
            "container-started",
            "ready",
            "forwarded",
            "first-byte"
        ],
        "{note}"
    );
    assert!(phases.iter().all(|(_, ms)| *ms >= 0.0), "{note}");
    let sum: f64 = phases.iter().map(|(_, ms)| ms).sum();
    assert!(
        (sum - total).abs() <= 5.0,
        "phases add up to {sum} ms, not {total} ms: {note}"
    );
    assert!(
        total <= client_ms + 5.0,
        "{total} ms to first byte, the client waited {client_ms} ms"
    );
    let described = kubectl_ok(&["describe", "fn", name, "-n", &ns]).await;
    assert!(
        described.contains("ColdStart"),
        "kubectl describe fn shows no ColdStart:\n{described}"
    );

    // 500 requests of known duration, half through each activator replica.
    let pods = activator_pods().await;
    assert!(pods.len() >= 2, "two activator replicas: {pods:?}");
    let urls: Vec<String> = (0..REQUESTS)
        .map(|i| format!("http://{}:8080/?sleep={SLEEP_MS}", pods[i % 2].1))
        .collect();
    let started = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(urls)
        .map(|url| {
            let host = host.clone();
            async move {
                http_request(
                    http::Method::GET,
                    &url,
                    &[("host", &host)],
                    "",
                    Duration::from_secs(30),
                )
                .await
                .map_or(0, |r| r.status)
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    record_figure(&format!(
        "metering: {REQUESTS} requests in {} ms",
        started.elapsed().as_millis()
    ));
    assert!(statuses.iter().all(|s| *s == 200), "every request answered 200");

    // The counters of both replicas: the owner served every request, whichever replica got it.
    let mut billed = 0.0;
    let mut memory = 0.0;
    let mut ok = 0.0;
    let mut owner = None;
    for (pod, ip) in &pods {
        let text = scrape(&format!("{ip}:9090")).await.unwrap_or_default();
        let b = family_sum(
            &text,
            "zeroscale_faas_billed_duration_seconds_total",
            &ns,
            name,
            "",
        );
        if b > 0.0 {
            owner = Some(pod.clone());
        }
        billed += b;
        memory += family_sum(&text, "zeroscale_faas_memory_byte_seconds_total", &ns, name, "");
        ok += family_sum(
            &text,
            "zeroscale_faas_invocations_total",
            &ns,
            name,
            "outcome=\"ok\"",
        );
    }
    let expected = (REQUESTS as u64 * SLEEP_MS) as f64 / 1000.0;
    record_figure(&format!(
        "metering: counters billed {billed:.3} s (expected {expected} s + the cold request), memory {memory:.0} byte-s, {ok} ok"
    ));
    assert_eq!(ok, (REQUESTS + 1) as f64, "every request counted once");
    assert!(
        (billed - expected).abs() / expected <= 0.02,
        "billed {billed} s, expected {expected} s"
    );
    let expected_memory = expected * MEMORY_BYTES;
    assert!(
        (memory - expected_memory).abs() / expected_memory <= 0.02,
        "memory {memory}, expected {expected_memory}"
    );

    // Restart the replica that served them, gracefully, before its next flush: it flushes on the way out.
    let owner = owner.expect("one replica served the function");
    kubectl_ok(&["delete", "pod", "-n", SYSTEM, &owner, "--wait=false"]).await;
    let wanted = (billed * 1000.0).round() as u64;
    let totals = wait_for(
        Duration::from_secs(60),
        "usage records adding up to the counters",
        || async {
            let totals = record_totals(&records, &ns, name);
            (totals.2 >= wanted).then_some(totals)
        },
    )
    .await;
    let (count, records_ok, records_ms, records_memory) = totals;
    record_figure(&format!(
        "metering: {count} usage records: {records_ok} ok, {records_ms} billed ms, {:.0} byte-s",
        records_memory / 1000.0
    ));
    assert_eq!(records_ok, (REQUESTS + 1) as u64);
    assert_eq!(
        records_ms, wanted,
        "the records and the counters agree to the millisecond"
    );
    assert!(((records_memory / 1000.0) - memory).abs() / memory <= 1e-6);

    // Restore the installed activators, and wait for the rollout that starts: `throttle` runs next
    // and floods a function capped across the replicas, whose owner among them must not move mid-flood
    // (the new owner starts with no drain rate, so `Retry-After: 30`, and admits its own requests
    // beside the old owner's in-flight ones, so more than the cap).
    let _ = try_kubectl(
        &[
            "set",
            "env",
            "-n",
            SYSTEM,
            ACTIVATOR,
            "ZEROSCALE_ACTIVATOR_USAGE_SINK-",
            "ZEROSCALE_ACTIVATOR_USAGE_FLUSH_INTERVAL-",
        ],
        None,
    )
    .await;
    wait_rollout("activator", Duration::from_secs(120)).await;
    // The namespace is deleted in the background when `s` drops: its pod's graceful termination
    // (preStop sleep, drain) outlasts a foreground wait.
}
