//! Retries, dead letters and duplicates on the installed store (issue #15's second and third
//! acceptance items), run in each store's namespace before the flood: a subscriber answering 500
//! (`ECHO_STATUS`) behind a Trigger with `retries: 2` and a linear back-off gets exactly 3 attempts,
//! spaced by at least the back-off, then the event is in the dead-letter sink with the error
//! extensions; one event (same `source` and `id`) posted 3 times is delivered once. The Functions
//! record each request's arrival time and `ce-zeroscale*` headers (`GET /ids/log`), read on their
//! pods' IPs. With the memory store the duplicate window is per replica, so its 3 posts go to one
//! activator pod; with JetStream they go through the broker Service to any replica.

use std::time::{Duration, Instant};

use serde_json::Value;
use zeroscale_e2e::{
    ECHO_IMAGE, http_get,
    images::{image_digest, repository},
    record_figure, try_kubectl,
};

use super::producer::Producer;

/// The subscriber that always answers 500, the dead-letter sink, and the subscriber of duplicates.
const FAILING: &str = "failing";
const SINK: &str = "dlq";
const ONCE: &str = "once";
/// Event types the two Triggers route.
const FAIL_TYPE: &str = "e2e.fail";
const ONCE_TYPE: &str = "e2e.once";
/// The failing Trigger's retries and linear back-off step (waits of 1.5 s, then 3 s).
const RETRIES: usize = 2;
const BACKOFF_MS: u64 = 1_500;
/// Slack over the back-off for an attempt's own time and scheduling on a busy machine.
const SLACK_MS: u64 = 5_000;
/// How long to look for a late extra attempt or a second copy after the expected ones arrived.
const QUIET: Duration = Duration::from_secs(4);

/// The echo image by digest: these Functions need its `ECHO_STATUS` and `GET /ids/log`, and a node
/// that ran an older build under the same tag keeps it (`IfNotPresent`).
pub async fn echo_by_digest() -> String {
    format!("{}@{}", repository(ECHO_IMAGE), image_digest(ECHO_IMAGE).await)
}

/// The three Functions (one warm pod each, so the spacing is not a cold start's) running `image`,
/// and the two Triggers, to be applied with the other manifests.
pub fn manifests(image: &str) -> String {
    let record = r#"{name: ECHO_RECORD_IDS, value: "1"}"#;
    let warm = "scale: {initial: 1, min: 1, max: 1}";
    format!(
        "apiVersion: zeroscale.dev/v1alpha1\nkind: Function\nmetadata: {{name: {FAILING}}}\n\
         spec: {{image: {image}, env: [{record}, {{name: ECHO_STATUS, value: \"500\"}}], {warm}}}\n\
         ---\napiVersion: zeroscale.dev/v1alpha1\nkind: Function\nmetadata: {{name: {SINK}}}\n\
         spec: {{image: {image}, env: [{record}], {warm}}}\n\
         ---\napiVersion: zeroscale.dev/v1alpha1\nkind: Function\nmetadata: {{name: {ONCE}}}\n\
         spec: {{image: {image}, env: [{record}], {warm}}}\n\
         ---\napiVersion: zeroscale.dev/v1alpha1\nkind: Trigger\nmetadata: {{name: to-failing}}\n\
         spec: {{source: {{broker: {{}}}}, filters: [{{exact: {{type: {FAIL_TYPE}}}}}], subscriber: {{function: {FAILING}}},\n\
         \x20 delivery: {{retries: {RETRIES}, backoffPolicy: linear, backoffDelay: {BACKOFF_MS}ms, timeout: 10s, deadLetterSink: {{function: {SINK}}}}}}}\n\
         ---\napiVersion: zeroscale.dev/v1alpha1\nkind: Trigger\nmetadata: {{name: to-once}}\n\
         spec: {{source: {{broker: {{}}}}, filters: [{{exact: {{type: {ONCE_TYPE}}}}}], subscriber: {{function: {ONCE}}}}}\n"
    )
}

/// The IPs of one Function's running pods.
async fn pod_ips(namespace: &str, function: &str) -> Vec<String> {
    let selector = format!("zeroscale.dev/function={function}");
    let ips = try_kubectl(
        &[
            "get",
            "pods",
            "-n",
            namespace,
            "-l",
            &selector,
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={.items[*].status.podIP}",
        ],
        None,
    )
    .await
    .unwrap_or_default();
    ips.split_whitespace().map(str::to_string).collect()
}

/// The requests one Function's pods logged, in arrival order (by time); `None` while no pod answers.
async fn try_log(namespace: &str, function: &str) -> Option<Vec<Value>> {
    let mut entries = Vec::new();
    let mut answered = false;
    for ip in pod_ips(namespace, function).await {
        // An echo build without `/ids/log` answers with its JSON echo, which has no `log`.
        if let Ok(response) = http_get(&format!("http://{ip}:8080/ids/log")).await
            && let Some(log) = response.json()["log"].as_array()
        {
            answered = true;
            entries.extend(log.iter().cloned());
        }
    }
    entries.sort_by_key(|e| e["at_ms"].as_u64().unwrap_or(0));
    answered.then_some(entries)
}

/// Like [`try_log`], empty while no pod answers.
async fn log(namespace: &str, function: &str) -> Vec<Value> {
    try_log(namespace, function).await.unwrap_or_default()
}

fn of<'a>(entries: &'a [Value], id: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["id"] == id).collect()
}

/// Posts `id` of `ty` until answered 202 (the Trigger may still be reaching a replica's routes).
async fn post_accepted(producer: &Producer, id: &str, ty: &str) {
    let started = Instant::now();
    loop {
        let answer = producer.post(id, ty).await;
        if answer == Ok(202) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{id} not accepted within 60 s: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The broker URL of one ready activator pod (not one being replaced by the install's rollout),
/// which the memory store's duplicates all reach.
async fn one_activator_broker(port: u16) -> String {
    let pods = zeroscale_e2e::installed::ready_component_pods("activator").await;
    let pod = pods.first().expect("a ready activator pod");
    let ip = try_kubectl(
        &[
            "get",
            "pod",
            "-n",
            zeroscale_e2e::installed::SYSTEM_NAMESPACE,
            pod,
            "-o",
            "jsonpath={.status.podIP}",
        ],
        None,
    )
    .await
    .unwrap_or_default();
    assert!(!ip.trim().is_empty(), "no IP for activator pod {pod}");
    format!("http://{}:{port}", ip.trim())
}

/// What the test saw and what the components say, for a failure message.
async fn diagnose(namespace: &str) -> String {
    let mut report = String::new();
    for function in [FAILING, SINK, ONCE] {
        let ids: Vec<_> = log(namespace, function)
            .await
            .iter()
            .map(|e| format!("{}@{}", e["id"], e["at_ms"]))
            .collect();
        report += &format!("\n{function} received: {ids:?}");
    }
    let triggers = try_kubectl(
        &[
            "get",
            "triggers",
            "-n",
            namespace,
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}: {.status.conditions}{\"\\n\"}{end}",
        ],
        None,
    )
    .await
    .unwrap_or_else(|e| e.to_string());
    report += &format!("\ntriggers:\n{triggers}");
    let logs = zeroscale_e2e::installed::component_logs("activator", 30).await;
    report + "\nactivator logs:\n" + &logs
}

/// Runs the checks in `namespace` (where [`manifests`] were applied) against `store`.
pub async fn check(store: &str, producer: &Producer, namespace: &str) {
    let started = Instant::now();
    // The warm pods answer /ids/log once running.
    for function in [FAILING, SINK, ONCE] {
        let waiting = Instant::now();
        while try_log(namespace, function).await.is_none() {
            assert!(
                waiting.elapsed() < Duration::from_secs(120),
                "Function {function} not serving GET /ids/log within 120 s (an echo image without it?)"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    post_accepted(producer, "fail-1", FAIL_TYPE).await;
    let duplicates = if store == "memory" {
        Producer {
            broker: one_activator_broker(8082).await,
            ..producer.clone()
        }
    } else {
        producer.clone()
    };
    for copy in 1..=3 {
        assert_eq!(
            duplicates.post("dup-1", ONCE_TYPE).await,
            Ok(202),
            "copy {copy} of dup-1 is answered 202 (stored once)"
        );
    }
    post_accepted(&duplicates, "dup-marker", ONCE_TYPE).await;
    let waiting = Instant::now();
    loop {
        let dead = log(namespace, SINK).await;
        let once = log(namespace, ONCE).await;
        if !of(&dead, "fail-1").is_empty() && !of(&once, "dup-marker").is_empty() {
            break;
        }
        if waiting.elapsed() > Duration::from_secs(90) {
            panic!(
                "fail-1 not dead-lettered or dup-marker not delivered within 90 s:{}",
                diagnose(namespace).await
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(QUIET).await;

    let failing = log(namespace, FAILING).await;
    let attempts: Vec<u64> = of(&failing, "fail-1")
        .iter()
        .filter_map(|e| e["at_ms"].as_u64())
        .collect();
    assert_eq!(
        attempts.len(),
        RETRIES + 1,
        "a subscriber answering 500 gets retries + 1 attempts: {failing:?}"
    );
    let gaps: Vec<u64> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    for (retry, gap) in gaps.iter().enumerate() {
        let backoff = BACKOFF_MS * (retry as u64 + 1);
        assert!(
            *gap + 50 >= backoff && *gap <= backoff + SLACK_MS,
            "retry {} came {gap} ms after the attempt before it; the back-off is {backoff} ms",
            retry + 1
        );
    }
    let dead = log(namespace, SINK).await;
    let letters = of(&dead, "fail-1");
    assert_eq!(letters.len(), 1, "one dead letter: {dead:?}");
    let extensions = &letters[0]["extensions"];
    assert_eq!(extensions["ce-zeroscaleerrorcode"], "500", "{extensions}");
    assert!(
        extensions["ce-zeroscaleerrordest"]
            .as_str()
            .is_some_and(|d| d.contains(FAILING)),
        "{extensions}"
    );
    assert!(extensions["ce-zeroscaleerrordata"].is_string(), "{extensions}");
    assert!(
        dead.last()
            .and_then(|e| e["at_ms"].as_u64())
            .is_some_and(|at| at >= attempts[RETRIES]),
        "dead-lettered after the last attempt"
    );
    let once = log(namespace, ONCE).await;
    assert_eq!(
        of(&once, "dup-1").len(),
        1,
        "the same source and id posted 3 times is delivered once: {once:?}"
    );
    record_figure(&format!(
        "event stores: {store}: a subscriber answering 500 with retries {RETRIES} got {} attempts, \
         retries after {gaps:?} ms (back-off {BACKOFF_MS} ms linear), then the dead-letter sink \
         (code {}); 3 copies of one event delivered {} time(s); checks took {:.1?}",
        attempts.len(),
        extensions["ce-zeroscaleerrorcode"],
        of(&once, "dup-1").len(),
        started.elapsed()
    ));
}
