//! The JetStream store of async invocations against a real nats-server (the pinned build, started
//! by each test): stored before the 202, run by the function's durable consumer, retried by NAK with
//! the back-off, records to the destinations, one run per `Idempotency-Key`, 503 while NATS is down.
//! Real time (NATS keeps the clock); outcomes are awaited with a deadline, durations not asserted.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{HeaderMap, Method};
use zeroscale_common::signals::FunctionKey;

use super::{
    jetstream::JetStreamInvocations,
    jetstream_worker::AsyncWorkers,
    memory_tests::Loopback,
    policy::{AsyncFunctions, AsyncPolicy},
    request::Invocation,
    store::InvocationStore,
};
use crate::{
    broker::PublishError,
    delivery::HttpSender,
    metrics::EventMetrics,
    router::RoutingTable,
    store::{
        jetstream::{JetStreamConfig, JetStreamStore},
        nats_server::NatsServer,
    },
    testing::{Reply, Subscriber},
};

struct Setup {
    nats: NatsServer,
    store: Arc<JetStreamInvocations>,
    subscriber: Subscriber,
    workers: Option<AsyncWorkers>,
}

async fn setup(policy: impl FnOnce(&Subscriber) -> AsyncPolicy) -> Setup {
    let nats = NatsServer::start().await;
    let config = JetStreamConfig {
        url: nats.url(),
        publish_timeout: Duration::from_secs(1),
        cold_start_budget: Duration::from_secs(1),
        ..JetStreamConfig::default()
    };
    let events = Arc::new(
        JetStreamStore::connect(config, RoutingTable::default(), EventMetrics::default())
            .await
            .expect("connect"),
    );
    for _ in 0..200 {
        if events.is_connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(events.is_connected(), "connected to nats-server within 5 s");
    let subscriber = Subscriber::start().await;
    let functions = AsyncFunctions::default();
    functions.set(FunctionKey::new("shop", "orders"), policy(&subscriber));
    let store = Arc::new(JetStreamInvocations::new(events));
    let sender = Arc::new(Loopback {
        http: HttpSender::default(),
        subscriber: subscriber.clone(),
    });
    let workers = AsyncWorkers::start(store.clone(), sender, functions);
    Setup {
        nats,
        store,
        subscriber,
        workers: Some(workers),
    }
}

fn fast(subscriber: &Subscriber) -> AsyncPolicy {
    let mut policy = AsyncPolicy {
        on_success: Some(subscriber.target("/ok")),
        on_failure: Some(subscriber.target("/failed")),
        attempt_timeout: Duration::from_secs(5),
        ..AsyncPolicy::default()
    };
    policy.retry.delay = Duration::from_millis(50);
    policy
}

fn invocation(id: &str, key: Option<&str>, accepted: SystemTime) -> Invocation {
    Invocation {
        id: id.into(),
        function: FunctionKey::new("shop", "orders"),
        method: Method::POST,
        path: "/fn".into(),
        headers: HeaderMap::new(),
        body: Bytes::from_static(b"order 7"),
        accepted,
        idempotency_key: key.map(Into::into),
    }
}

async fn records(subscriber: &Subscriber, path: &str, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..600 {
        let got = subscriber.received(path);
        if got.len() >= n {
            return got
                .iter()
                .map(|r| serde_json::from_slice(&r.body).expect("json record"))
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {n} records at {path} within 15 s");
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(workers) = self.workers.take() {
            drop(tokio::spawn(workers.shutdown(Duration::ZERO)));
        }
    }
}

#[tokio::test]
async fn a_stored_invocation_runs_and_its_success_reaches_on_success() {
    let s = setup(fast).await;
    s.subscriber.script("/fn", vec![Reply::status(200).body("done")]);
    let accepted = s
        .store
        .append(invocation("j1", None, SystemTime::now()))
        .await
        .expect("stored");
    assert_eq!((accepted.id.as_str(), accepted.duplicate), ("j1", false));
    let records = records(&s.subscriber, "/ok", 1).await;
    assert_eq!(records[0]["outcome"], "Success");
    assert_eq!(records[0]["attempts"], 1);
    assert_eq!(records[0]["body"], "done");
    assert_eq!(
        s.subscriber.received("/fn")[0].body,
        Bytes::from_static(b"order 7")
    );
}

#[tokio::test]
async fn an_always_failing_function_is_redelivered_retries_plus_one_times_then_on_failure() {
    let s = setup(fast).await;
    s.subscriber.script("/fn", vec![Reply::status(500).body("down")]);
    s.store
        .append(invocation("j2", None, SystemTime::now()))
        .await
        .expect("stored");
    let records = records(&s.subscriber, "/failed", 1).await;
    assert_eq!(records[0]["outcome"], "RetriesExhausted");
    assert_eq!(records[0]["attempts"], 3);
    assert_eq!(records[0]["status"], 500);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.subscriber.received("/fn").len(), 3);
}

#[tokio::test]
async fn an_invocation_past_its_max_age_ends_event_age_exceeded_without_running() {
    let s = setup(|sub| AsyncPolicy {
        max_event_age: Duration::from_secs(60),
        ..fast(sub)
    })
    .await;
    let old = SystemTime::now() - Duration::from_secs(120);
    s.store.append(invocation("j3", None, old)).await.expect("stored");
    let records = records(&s.subscriber, "/failed", 1).await;
    assert_eq!(records[0]["outcome"], "EventAgeExceeded");
    assert!(s.subscriber.received("/fn").is_empty());
}

#[tokio::test]
async fn a_repeated_idempotency_key_is_stored_and_run_once() {
    let s = setup(fast).await;
    // Slow enough that the first copy is still stored when the second arrives.
    s.subscriber
        .script("/fn", vec![Reply::status(200).delay(Duration::from_millis(500))]);
    let now = SystemTime::now();
    let first = s
        .store
        .append(invocation("k1", Some("order-7"), now))
        .await
        .expect("stored");
    let again = s
        .store
        .append(invocation("k2", Some("order-7"), now))
        .await
        .expect("stored");
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(
        again.id, "k1",
        "a duplicate answers the original's id while it is stored"
    );
    records(&s.subscriber, "/ok", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.subscriber.received("/fn").len(), 1);
    assert_eq!(s.subscriber.received("/ok").len(), 1);
}

#[tokio::test]
async fn nats_down_is_a_store_unavailable_error_naming_jetstream() {
    let mut s = setup(fast).await;
    s.nats.kill().await;
    // Until the client has seen the server go (at most 5 s).
    for _ in 0..200 {
        if !s.store.events().is_connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let error = s
        .store
        .append(invocation("d1", None, SystemTime::now()))
        .await
        .expect_err("not stored");
    assert!(
        matches!(
            error,
            PublishError::StoreUnavailable {
                store: "jetstream",
                ..
            }
        ),
        "{error}"
    );
}
