//! The memory store's invocations end to end against a loopback function and destinations, with
//! back-offs on a virtual clock.

use std::{sync::Arc, time::Duration, time::SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method};
use zeroscale_common::signals::FunctionKey;

use super::{
    memory::MemoryInvocations,
    policy::{AsyncFunctions, AsyncPolicy},
    request::Invocation,
    run::InvocationSender,
    store::InvocationStore,
};
use crate::{
    broker::PublishError,
    delivery::{Answer, Clock, EventSender, HttpSender, Outgoing, SendError},
    testing::{Reply, Subscriber, VirtualClock},
};

/// Invokes functions at the loopback subscriber (path `/fn` + the request's path).
pub(super) struct Loopback {
    pub(super) http: HttpSender,
    pub(super) subscriber: Subscriber,
}

impl EventSender for Loopback {
    async fn send(&self, request: Outgoing) -> Result<Answer, SendError> {
        self.http.send(request).await
    }
}

impl InvocationSender for Loopback {
    async fn invoke(&self, invocation: &Invocation) -> Result<Answer, SendError> {
        let request = invocation.http_request(&self.subscriber.addr.to_string(), None)?;
        self.http.exchange(request).await
    }
}

fn invocation(id: &str, key: Option<&str>, accepted: SystemTime) -> Invocation {
    Invocation {
        id: id.into(),
        function: FunctionKey::new("shop", "orders"),
        method: Method::POST,
        path: "/fn?x=1".into(),
        headers: HeaderMap::new(),
        body: Bytes::from_static(b"order 7"),
        accepted,
        idempotency_key: key.map(Into::into),
    }
}

struct Setup {
    pub(super) subscriber: Subscriber,
    clock: VirtualClock,
    store: MemoryInvocations<Loopback, VirtualClock>,
}

async fn setup(policy: impl FnOnce(&Subscriber) -> AsyncPolicy, capacity: usize) -> Setup {
    let subscriber = Subscriber::start().await;
    let functions = AsyncFunctions::default();
    functions.set(FunctionKey::new("shop", "orders"), policy(&subscriber));
    let clock = VirtualClock::at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
    let sender = Loopback {
        http: HttpSender::default(),
        subscriber: subscriber.clone(),
    };
    let store = MemoryInvocations::new(
        Arc::new(sender),
        Arc::new(clock.clone()),
        functions,
        Duration::from_secs(120),
        capacity,
    );
    Setup {
        subscriber,
        clock,
        store,
    }
}

fn with_destinations(subscriber: &Subscriber) -> AsyncPolicy {
    AsyncPolicy {
        on_success: Some(subscriber.target("/ok")),
        on_failure: Some(subscriber.target("/failed")),
        ..AsyncPolicy::default()
    }
}

async fn records(subscriber: &Subscriber, path: &str, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..500 {
        let got = subscriber.received(path);
        if got.len() >= n {
            return got
                .iter()
                .map(|r| serde_json::from_slice(&r.body).expect("json record"))
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "fewer than {n} records at {path}: {:?}",
        subscriber.received(path)
    );
}

#[tokio::test]
async fn an_invocation_runs_with_its_request_and_its_success_reaches_on_success() {
    let s = setup(with_destinations, 10).await;
    s.subscriber.script("/fn", vec![Reply::status(201).body("made")]);
    let accepted = s
        .store
        .append(invocation("a1", None, s.clock.now()))
        .await
        .expect("stored");
    assert_eq!((accepted.id.as_str(), accepted.duplicate), ("a1", false));
    let records = records(&s.subscriber, "/ok", 1).await;
    assert_eq!(records[0]["outcome"], "Success");
    assert_eq!(records[0]["attempts"], 1);
    assert_eq!(records[0]["status"], 201);
    assert_eq!(records[0]["body"], "made");
    let calls = s.subscriber.received("/fn");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body, Bytes::from_static(b"order 7"));
    assert_eq!(calls[0].headers["zeroscale-invocation-id"], "a1");
    let sent = s.subscriber.received("/ok");
    assert_eq!(sent[0].headers["ce-type"], super::SUCCESS_TYPE);
}

#[tokio::test]
async fn an_always_failing_function_gets_retries_plus_one_attempts_spaced_by_the_back_off() {
    let s = setup(with_destinations, 10).await;
    s.subscriber.script("/fn", vec![Reply::status(500).body("down")]);
    s.store
        .append(invocation("a2", None, s.clock.now()))
        .await
        .expect("stored");
    let records = records(&s.subscriber, "/failed", 1).await;
    assert_eq!(records[0]["outcome"], "RetriesExhausted");
    assert_eq!(records[0]["attempts"], 3);
    assert_eq!(records[0]["status"], 500);
    assert_eq!(records[0]["body"], "down");
    assert_eq!(s.subscriber.received("/fn").len(), 3);
    let policy = AsyncPolicy::default();
    assert_eq!(
        s.clock.waits(),
        vec![policy.retry.backoff(1), policy.retry.backoff(2)]
    );
}

#[tokio::test]
async fn an_invocation_older_than_the_max_age_is_not_run_and_ends_event_age_exceeded() {
    let s = setup(
        |sub| AsyncPolicy {
            max_event_age: Duration::from_secs(60),
            ..with_destinations(sub)
        },
        10,
    )
    .await;
    let old = s.clock.now() - Duration::from_secs(61);
    s.store.append(invocation("a3", None, old)).await.expect("stored");
    let records = records(&s.subscriber, "/failed", 1).await;
    assert_eq!(records[0]["outcome"], "EventAgeExceeded");
    assert_eq!(records[0]["attempts"], 0);
    assert!(s.subscriber.received("/fn").is_empty());
}

#[tokio::test]
async fn retries_stop_once_the_back_off_carries_the_invocation_past_its_max_age() {
    let s = setup(
        |sub| AsyncPolicy {
            max_event_age: Duration::from_millis(500),
            ..with_destinations(sub)
        },
        10,
    )
    .await;
    s.subscriber.script("/fn", vec![Reply::status(503)]);
    s.store
        .append(invocation("a4", None, s.clock.now()))
        .await
        .expect("stored");
    let records = records(&s.subscriber, "/failed", 1).await;
    // 400 ms after the first attempt the second still runs; 800 ms more is past the age.
    assert_eq!(records[0]["outcome"], "EventAgeExceeded");
    assert_eq!(records[0]["attempts"], 2);
    assert_eq!(records[0]["status"], 503);
    assert_eq!(s.subscriber.received("/fn").len(), 2);
}

#[tokio::test]
async fn a_repeated_idempotency_key_runs_once_and_answers_the_first_id() {
    let s = setup(with_destinations, 10).await;
    let now = s.clock.now();
    let first = s
        .store
        .append(invocation("b1", Some("k"), now))
        .await
        .expect("stored");
    let again = s
        .store
        .append(invocation("b2", Some("k"), now))
        .await
        .expect("stored");
    assert_eq!((first.duplicate, again.duplicate), (false, true));
    assert_eq!(again.id, "b1");
    let other = s
        .store
        .append(invocation("b3", Some("k2"), now))
        .await
        .expect("stored");
    assert!(!other.duplicate);
    records(&s.subscriber, "/ok", 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.subscriber.received("/fn").len(), 2);
}

#[tokio::test]
async fn a_full_store_refuses_rather_than_dropping() {
    let s = setup(with_destinations, 1).await;
    s.subscriber
        .script("/fn", vec![Reply::status(200).delay(Duration::from_millis(300))]);
    let now = s.clock.now();
    s.store.append(invocation("c1", None, now)).await.expect("stored");
    assert!(matches!(
        s.store.append(invocation("c2", Some("k"), now)).await,
        Err(PublishError::Full)
    ));
    records(&s.subscriber, "/ok", 1).await;
    // The slot is freed once the record was sent.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The refused key was not remembered: a retry is a new invocation.
    let retried = s
        .store
        .append(invocation("c3", Some("k"), now))
        .await
        .expect("room again");
    assert!(!retried.duplicate);
}
