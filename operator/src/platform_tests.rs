use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use http::HeaderMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use prometheus_client::registry::Registry;
use serde_json::json;
use zeroscale_eventing::delivery::Answer;

use super::*;
use crate::metrics::Metrics;

fn function() -> Function {
    serde_json::from_value(json!({
        "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Function",
        "metadata": {"namespace": "shop", "name": "orders"}, "spec": {"image": "x"},
    }))
    .expect("function")
}

fn ready_cond(status: &str, reason: &str, message: &str) -> Vec<Condition> {
    vec![Condition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: None,
        last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
    }]
}

#[test]
fn ready_and_failure_transitions_become_platform_events() {
    let f = function();
    let starting = ready_cond("False", "Progressing", "");
    assert_eq!(transition(&f, "shop", &[], &starting), None);
    let ready = transition(&f, "shop", &starting, &ready_cond("True", "Ready", "")).expect("ready");
    assert_eq!(ready.ty, "dev.zeroscale.function.ready");
    assert_eq!(ready.data.function, FunctionKey::new("shop", "orders"));
    let crash = ready_cond("False", "CrashLoopBackOff", "pod p: exit code 1");
    let failed = transition(&f, "shop", &ready_cond("True", "Ready", ""), &crash).expect("failed");
    assert_eq!(failed.ty, "dev.zeroscale.function.failed");
    assert_eq!(
        (failed.data.reason.as_str(), failed.data.message.as_str()),
        ("CrashLoopBackOff", "pod p: exit code 1")
    );
    // Same status and reason: nothing new (a changed message is not a transition).
    assert_eq!(
        transition(
            &f,
            "shop",
            &crash,
            &ready_cond("False", "CrashLoopBackOff", "other")
        ),
        None
    );
    // Back to a rollout: not a failure.
    assert_eq!(transition(&f, "shop", &crash, &starting), None);
}

#[test]
fn events_go_to_the_broker_of_the_functions_namespace() {
    assert_eq!(
        sink_url("http://broker.sys.svc", "shop"),
        "http://broker.sys.svc/shop"
    );
    assert_eq!(sink_url("http://broker:8082/", "a"), "http://broker:8082/a");
}

/// A sender that answers from a script and records what it was sent.
#[derive(Clone, Default)]
struct Scripted {
    answers: Arc<Mutex<VecDeque<Option<u16>>>>,
    sent: Arc<Mutex<Vec<Outgoing>>>,
}

impl Scripted {
    fn new(answers: &[Option<u16>]) -> Self {
        Self {
            answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
            sent: Arc::default(),
        }
    }

    fn sent(&self) -> Vec<Outgoing> {
        self.sent.lock().expect("lock").clone()
    }
}

impl EventSender for Scripted {
    async fn send(&self, request: Outgoing) -> Result<Answer, SendError> {
        self.sent.lock().expect("lock").push(request);
        let next = self.answers.lock().expect("lock").pop_front().flatten();
        match next {
            // `None` never answers: the per-attempt timeout has to end the attempt.
            None => std::future::pending().await,
            Some(code) => Ok(Answer {
                status: StatusCode::from_u16(code).expect("status"),
                headers: HeaderMap::new(),
                body: bytes::Bytes::new(),
            }),
        }
    }
}

fn notice() -> Notice {
    Notice {
        ty: READY_TYPE,
        data: FunctionCondition {
            function: FunctionKey::new("shop", "orders"),
            reason: "Ready".into(),
            message: String::new(),
        },
    }
}

fn counter_text(counter: &Family<PlatformLabels, Counter>) -> String {
    let mut registry = Registry::default();
    registry.register("platform_events", "test", counter.clone());
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
    text
}

#[tokio::test(start_paused = true)]
async fn retries_timeouts_and_5xx_then_delivers_in_binary_mode() {
    let sender = Scripted::new(&[None, Some(503), Some(202)]);
    let config = SinkConfig::default();
    let delivered = deliver(&Sink::new("http://broker.sys.svc"), &sender, &config, notice())
        .await
        .expect("delivered on the third try");
    assert_eq!(delivered, Delivered::Sent);
    let sent = sender.sent();
    assert_eq!(sent.len(), 3);
    let first = &sent[0];
    assert_eq!(first.target.to_string(), "http://broker.sys.svc/shop");
    assert_eq!(first.headers["ce-type"], "dev.zeroscale.function.ready");
    assert_eq!(first.headers["ce-source"], "/zeroscale/operator");
    assert_eq!(first.headers["ce-subject"], "shop/orders");
    assert!(
        !first.headers.contains_key("authorization"),
        "no token file, no token"
    );
    let data: FunctionCondition = serde_json::from_slice(&first.body).expect("json data");
    assert_eq!(data, notice().data);
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_the_last_attempt_and_on_final_answers() {
    let sender = Scripted::new(&[Some(500), Some(500), Some(500), Some(202)]);
    let err = deliver(&Sink::new("http://b"), &sender, &SinkConfig::default(), notice())
        .await
        .expect_err("three attempts, all 500");
    assert!(err.contains("500"), "{err}");
    assert_eq!(sender.sent().len(), 3);
    let sender = Scripted::new(&[Some(400), Some(202)]);
    let err = deliver(&Sink::new("http://b"), &sender, &SinkConfig::default(), notice())
        .await
        .expect_err("400 is final");
    assert!(err.contains("400"), "{err}");
    assert_eq!(sender.sent().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_drops_instead_of_blocking_and_counts_it() {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    // The sink never answers: the task holds the first event, the queue holds one more.
    let sender = Scripted::new(&[None; 8]);
    let config = SinkConfig {
        queue: 1,
        ..SinkConfig::default()
    };
    let events = PlatformEvents::start(
        Sink::new("http://b"),
        sender.clone(),
        config,
        metrics.platform_events.clone(),
    );
    events.send(notice());
    tokio::task::yield_now().await;
    events.send(notice());
    events.send(notice());
    events.send(notice());
    let text = counter_text(&metrics.platform_events);
    assert!(
        text.contains("platform_events_total{type=\"dev.zeroscale.function.ready\",outcome=\"dropped\"} 2"),
        "{text}"
    );
    // Every attempt of the first event times out; then the queued one is tried.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let text = counter_text(&metrics.platform_events);
    assert!(
        text.contains("platform_events_total{type=\"dev.zeroscale.function.ready\",outcome=\"failed\"} 2"),
        "{text}"
    );
    assert_eq!(sender.sent().len(), 6);
}

#[tokio::test(start_paused = true)]
async fn a_404_means_no_broker_and_is_neither_retried_nor_a_failure() {
    let sender = Scripted::new(&[Some(404), Some(202)]);
    let delivered = deliver(&Sink::new("http://b"), &sender, &SinkConfig::default(), notice())
        .await
        .expect("404 is an answer, not an error");
    assert_eq!(delivered, Delivered::NoBroker);
    assert_eq!(sender.sent().len(), 1, "not retried");

    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let sender = Scripted::new(&[Some(404), Some(401)]);
    let events = PlatformEvents::start(
        Sink::new("http://b"),
        sender.clone(),
        SinkConfig::default(),
        metrics.platform_events.clone(),
    );
    events.send(notice());
    events.send(notice());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let text = counter_text(&metrics.platform_events);
    assert!(
        text.contains("platform_events_total{type=\"dev.zeroscale.function.ready\",outcome=\"no_broker\"} 1"),
        "{text}"
    );
    // A 401 (no or a refused token) is final: counted as failed after one attempt.
    assert!(
        text.contains("platform_events_total{type=\"dev.zeroscale.function.ready\",outcome=\"failed\"} 1"),
        "{text}"
    );
    assert_eq!(sender.sent().len(), 2);
}
