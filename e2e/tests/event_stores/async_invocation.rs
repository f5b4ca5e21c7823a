//! Issue #15's acceptance for asynchronous invocation, on each store: `Prefer: respond-async` to a
//! Function at zero is answered 202 before any of its pods runs, the request runs and its `Success`
//! record reaches `onSuccess`; an always-failing Function ends in `onFailure` with
//! `RetriesExhausted`; one whose invocation outgrows `maxEventAge` between retries ends with
//! `EventAgeExceeded`; a repeated `Idempotency-Key` runs once. Records are counted by their id
//! (`<invocation id>.result`) in echo sinks (`ECHO_RECORD_IDS=1`); the outcome of each failure is
//! read from the activators' "async invocation finished" log line.

use std::time::{Duration, Instant};

use http::Method;
use zeroscale_e2e::{
    ECHO_IMAGE, TestNamespace, apply_yaml, client, http_request,
    installed::{install_with_event_store, try_component_logs},
    kubectl_ok, record_figure, wait_for,
};

use super::sinks::Counted;

/// Longest wait for a record.
const RECORD_TIMEOUT: Duration = Duration::from_secs(120);

fn manifests() -> String {
    let ids = r#"{name: ECHO_RECORD_IDS, value: "1"}"#;
    let function = |name: &str, scale: &str, spec: &str| {
        format!(
            "---\napiVersion: zeroscale.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\n\
             spec: {{image: {ECHO_IMAGE}, env: [{ids}], scale: {scale}{spec}}}\n"
        )
    };
    let warm = "{initial: 1, min: 1, max: 1}";
    [
        function(
            "work",
            "{initial: 0, max: 1, window: 60s}",
            ", async: {retries: 1, backoffDelay: 500ms, onSuccess: {function: ok}, onFailure: {function: failed}}",
        ),
        function(
            "failing",
            warm,
            ", async: {retries: 2, backoffDelay: 200ms, onFailure: {function: failed}}",
        ),
        function(
            "aged",
            warm,
            ", async: {retries: 5, backoffDelay: 3s, maxEventAge: 2s, onFailure: {function: failed}}",
        ),
        function("ok", warm, ""),
        function("failed", warm, ""),
    ]
    .concat()
}

struct Invoker {
    activator: String,
    namespace: String,
}

impl Invoker {
    /// `POST <path>` to `function` with `Prefer: respond-async`; the status and the invocation id.
    async fn invoke(
        &self,
        function: &str,
        path: &str,
        ce_id: &str,
        key: Option<&str>,
    ) -> (u16, String, bool) {
        let host = format!("{function}.{}.svc.cluster.local", self.namespace);
        let mut headers = vec![
            ("host", host.as_str()),
            ("prefer", "respond-async"),
            ("ce-id", ce_id),
        ];
        if let Some(key) = key {
            headers.push(("idempotency-key", key));
        }
        let url = format!("{}{path}", self.activator.trim_end_matches('/'));
        let response = http_request(Method::POST, &url, &headers, "payload", Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("async POST to {function} failed: {e}"));
        let doc: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
        (
            response.status,
            doc["id"].as_str().unwrap_or_default().to_string(),
            doc["duplicate"].as_bool().unwrap_or(false),
        )
    }
}

/// Waits until the Function `sink` received the record of invocation `id`.
async fn wait_record(namespace: &str, sink: &str, id: &str) -> Counted {
    let started = Instant::now();
    let mut counted = Counted::default();
    let record = format!("{id}.result");
    loop {
        counted.poll(namespace, sink).await;
        if counted.ids.contains(&record) {
            return counted;
        }
        assert!(
            started.elapsed() < RECORD_TIMEOUT,
            "no record {record} at {sink} within {RECORD_TIMEOUT:?} (seen {:?})",
            counted.ids
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The outcome the activators logged for invocation `id`.
///
/// A failed `kubectl logs` is tried again at the next poll: the store switch's rollout may still be
/// deleting an old activator pod, and kubectl then lists a pod that is gone when it reads its log.
async fn logged_outcome(id: &str) -> String {
    wait_for(
        Duration::from_secs(30),
        &format!("the log line of {id}"),
        || async {
            let logs = try_component_logs("activator", None)
                .await
                .inspect_err(|e| eprintln!("reading the activators' logs (tried again): {e}"))
                .ok()?;
            logs.lines()
                .filter(|l| l.contains("async invocation finished") && l.contains(id))
                .find_map(outcome_of)
        },
    )
    .await
}

/// The `outcome` field of a log line, in the JSON format (`"outcome":"Success"`) or the text one
/// (`outcome=Success`, possibly with ANSI colours between the name and the value).
fn outcome_of(line: &str) -> Option<String> {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An escape sequence: `ESC [ ... <letter>`.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let rest = plain
        .split_once("\"outcome\":\"")
        .or_else(|| plain.split_once("outcome="))?
        .1;
    let value: String = rest.chars().take_while(char::is_ascii_alphanumeric).collect();
    (!value.is_empty()).then_some(value)
}

/// Every acceptance check of async invocation against `store`.
pub async fn run(store: &str) {
    let begun = Instant::now();
    let installed = install_with_event_store(store)
        .await
        .unwrap_or_else(|e| panic!("install with event store {store}: {e}"));
    let client = client().await;
    let ns = TestNamespace::new(&client, &format!("async-{store}")).await;
    let namespace = ns.name().to_string();
    apply_yaml(&namespace, &manifests()).await;
    let invoker = Invoker {
        activator: installed.activator_url.clone(),
        namespace: namespace.clone(),
    };
    // Every Function is known to the activators once the warm sinks answer through them.
    wait_for(
        Duration::from_secs(120),
        "the sinks ready through the activator",
        || async {
            let host = format!("ok.{namespace}.svc.cluster.local");
            let url = format!("{}/", installed.activator_url.trim_end_matches('/'));
            let r = http_request(Method::GET, &url, &[("host", &host)], "", Duration::from_secs(5)).await;
            r.ok().filter(|r| r.status == 200).map(|_| ())
        },
    )
    .await;
    for warm in ["failing", "aged", "failed"] {
        let host = format!("{warm}.{namespace}.svc.cluster.local");
        let url = format!("{}/", installed.activator_url.trim_end_matches('/'));
        wait_for(Duration::from_secs(120), &format!("{warm} ready"), || async {
            let r = http_request(Method::GET, &url, &[("host", &host)], "", Duration::from_secs(5)).await;
            r.ok().filter(|r| r.status == 200).map(|_| ())
        })
        .await;
    }
    // `work` is routed once an async invocation over the size limit gets 413 rather than 404: the
    // function is resolved first, and nothing is stored or woken.
    wait_for(
        Duration::from_secs(60),
        "the activators routing work (413, not 404)",
        || async {
            let host = format!("work.{namespace}.svc.cluster.local");
            let url = format!("{}/", installed.activator_url.trim_end_matches('/'));
            let headers = [("host", host.as_str()), ("prefer", "respond-async")];
            let big = vec![b'x'; 1024 * 1024 + 1];
            let r = http_request(Method::POST, &url, &headers, big, Duration::from_secs(10)).await;
            r.ok().filter(|r| r.status == 413).map(|_| ())
        },
    )
    .await;
    let mut work = Counted::default();
    work.poll(&namespace, "work").await;
    assert_eq!(work.requests, 0, "work is at zero before the first invocation");

    // 1. At zero: 202 at once, before any pod of `work` runs; then Success at onSuccess.
    let sent = Instant::now();
    let (status, first, _) = invoker.invoke("work", "/?run=1", "first", None).await;
    let answered = sent.elapsed();
    assert_eq!(status, 202, "async invocation of a function at zero");
    let pods = kubectl_ok(&[
        "-n",
        &namespace,
        "get",
        "pods",
        "-l",
        "zeroscale.dev/function=work",
        "--field-selector=status.phase=Running",
        "-o",
        "name",
    ])
    .await;
    assert!(
        pods.trim().is_empty(),
        "202 came before work had a running pod: {pods}"
    );
    // 2. A repeated Idempotency-Key: the same id, stored once.
    let (s1, once, dup1) = invoker.invoke("work", "/", "idem", Some("order-7")).await;
    let (s2, again, dup2) = invoker.invoke("work", "/", "idem", Some("order-7")).await;
    assert_eq!((s1, s2, dup1, dup2), (202, 202, false, true));
    assert_eq!(once, again, "a duplicate answers the first invocation's id");
    // 3. Always failing, 4. older than maxEventAge by its second attempt.
    let (_, failing, _) = invoker.invoke("failing", "/?status=500", "fail", None).await;
    let (_, aged, _) = invoker.invoke("aged", "/?status=500", "aged", None).await;

    wait_record(&namespace, "ok", &first).await;
    let succeeded = sent.elapsed();
    wait_record(&namespace, "ok", &once).await;
    wait_record(&namespace, "failed", &failing).await;
    wait_record(&namespace, "failed", &aged).await;
    assert_eq!(logged_outcome(&first).await, "Success");
    assert_eq!(logged_outcome(&failing).await, "RetriesExhausted");
    assert_eq!(logged_outcome(&aged).await, "EventAgeExceeded");
    // The duplicate did not run: `work` saw exactly the two invocations.
    tokio::time::sleep(Duration::from_secs(3)).await;
    work.poll(&namespace, "work").await;
    assert_eq!(
        work.requests, 2,
        "work ran {} requests (ids {:?})",
        work.requests, work.ids
    );
    let mut failing_calls = Counted::default();
    failing_calls.poll(&namespace, "failing").await;
    assert_eq!(failing_calls.requests, 3, "retries: 2 means 3 attempts");
    record_figure(&format!(
        "async invocation: {store}: 202 for a function at zero in {answered:.2?}, its Success record at onSuccess \
         {succeeded:.1?} after the request; RetriesExhausted after 3 attempts, EventAgeExceeded, \
         a repeated Idempotency-Key run once; run {:.1?}",
        begun.elapsed()
    ));
    drop(ns);
}

#[test]
fn the_outcome_is_read_from_json_and_coloured_text_log_lines() {
    let json =
        r#"{"message":"async invocation finished","id":"a","outcome":"RetriesExhausted","attempts":3}"#;
    assert_eq!(outcome_of(json).as_deref(), Some("RetriesExhausted"));
    let text = "\u{1b}[2m...\u{1b}[0m async invocation finished \u{1b}[3moutcome\u{1b}[0m\u{1b}[2m=\u{1b}[0mEventAgeExceeded \u{1b}[3mattempts";
    assert_eq!(outcome_of(text).as_deref(), Some("EventAgeExceeded"));
    assert_eq!(outcome_of("no such field"), None);
}
