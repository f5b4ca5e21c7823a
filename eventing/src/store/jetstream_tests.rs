//! The JetStream backend against a real nats-server (the pinned build, started by each test): 202
//! only once stored, 503 while NATS is down, one copy per `source` + `id` within the window,
//! `retries + 1` attempts then the dead-letter sink, nothing lost across a server restart. These
//! depend on NATS's own clock (acknowledgements, NAK delays), so they run on real time and assert no
//! durations; they wait for outcomes with a deadline.

use std::{sync::Arc, time::Duration};

use axum::{Router, body::Body, http::Request};
use http::StatusCode;
use tokio::time::Instant;
use tower::ServiceExt;
use zeroscale_crds::trigger::BackoffPolicy;

use super::{
    consumer::Consumers,
    jetstream::{JetStreamConfig, JetStreamStore},
    nats_server::NatsServer,
};
use crate::{
    backlog::{Backlog, metrics::SubscriberLabels, pending::PendingEvents, sampler::Sampler},
    delivery::{DeliveryConfig, HttpSender},
    filter::Filters,
    ingress::{IngressConfig, router},
    metrics::{EventMetrics, TriggerLabels},
    retry::RetryPolicy,
    router::{Route, RoutingTable, SourceKind},
    testing::{Reply, Subscriber},
};

struct Setup {
    nats: NatsServer,
    store: Arc<JetStreamStore>,
    app: Router,
    sub: Subscriber,
    routes: RoutingTable,
}

async fn setup() -> Setup {
    let nats = NatsServer::start().await;
    let routes = RoutingTable::default();
    let config = JetStreamConfig {
        url: nats.url(),
        publish_timeout: Duration::from_secs(1),
        cold_start_budget: Duration::from_secs(1),
        ..JetStreamConfig::default()
    };
    let store = Arc::new(
        JetStreamStore::connect(config, routes.clone(), EventMetrics::default())
            .await
            .expect("connect"),
    );
    let app = router(
        store.clone(),
        IngressConfig::default(),
        EventMetrics::default(),
        None,
    );
    let sub = Subscriber::start().await;
    Setup {
        nats,
        store,
        app,
        sub,
        routes,
    }
}

impl Setup {
    /// A broker Trigger `name` in `shop` delivering to the subscriber's `/<name>`.
    fn trigger(&self, name: &str, retries: u32, dead_letter: bool) {
        self.filtered_trigger(name, retries, dead_letter, Filters::default());
    }

    fn filtered_trigger(&self, name: &str, retries: u32, dead_letter: bool, filters: Filters) {
        self.routes.upsert(Route {
            trigger: TriggerLabels {
                namespace: "shop".into(),
                trigger: name.into(),
            },
            source: SourceKind::Broker,
            filters,
            subscriber: self.sub.target(&format!("/{name}")),
            delivery: DeliveryConfig {
                retry: RetryPolicy {
                    retries,
                    backoff: BackoffPolicy::Linear,
                    delay: Duration::from_millis(20),
                    ..RetryPolicy::default()
                },
                attempt_timeout: Duration::from_secs(5),
                dead_letter: dead_letter.then(|| self.sub.target("/dlq")),
            },
        });
    }

    fn consumers(&self) -> Consumers {
        Consumers::start(
            self.store.clone(),
            Arc::new(HttpSender::default()),
            EventMetrics::default(),
        )
    }

    async fn post(&self, source: &str, id: &str) -> (StatusCode, String) {
        let request = Request::post("/shop")
            .header("ce-specversion", "1.0")
            .header("ce-id", id)
            .header("ce-source", source)
            .header("ce-type", "order.created")
            .header("content-type", "text/plain")
            .body(Body::from(format!("event {id}")))
            .expect("request");
        let response = self.app.clone().oneshot(request).await.expect("answer");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Waits until the consumer of `name` exists, so the stream keeps what is published for it.
    async fn consumer_ready(&self, name: &str) {
        let consumer = format!("shop_{name}");
        eventually(&format!("consumer {consumer}"), || async {
            match self.store.ensure_stream().await {
                Ok(stream) => stream.consumer_info(&consumer).await.is_ok(),
                Err(_) => false,
            }
        })
        .await;
    }

    fn ids(&self, path: &str) -> Vec<String> {
        self.sub
            .received(path)
            .iter()
            .filter_map(|r| {
                r.headers
                    .get("ce-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            })
            .collect()
    }
}

/// Waits for `condition` with a 20 s deadline (NATS's redelivery runs on its own clock).
async fn eventually<F, Fut>(what: &str, condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn accepted_events_are_stored_before_202_and_survive_a_server_kill_before_delivery() {
    let mut s = setup().await;
    s.trigger("orders", 3, false);
    // Create the durable consumer, then stop consuming: what is accepted now waits in the stream.
    let consumers = s.consumers();
    s.consumer_ready("orders").await;
    consumers.shutdown(Duration::from_secs(5)).await;
    for i in 0..5 {
        assert_eq!(s.post("/shop", &format!("e{i}")).await.0, StatusCode::ACCEPTED);
    }
    // SIGKILL right after the last 202: only what JetStream acknowledged (and synced) can survive.
    s.nats.kill().await;
    s.nats.run().await;
    let _consumers = s.consumers();
    eventually("5 events delivered after the restart", || async {
        s.ids("/orders").len() >= 5
    })
    .await;
    let mut ids = s.ids("/orders");
    ids.sort();
    ids.dedup();
    assert_eq!(ids, ["e0", "e1", "e2", "e3", "e4"]);
}

#[tokio::test]
async fn the_ingress_answers_503_naming_the_store_while_nats_is_down() {
    let mut s = setup().await;
    s.trigger("orders", 0, false);
    s.nats.kill().await;
    let (status, body) = s.post("/shop", "down").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("event store jetstream unavailable"), "{body}");
    s.nats.run().await;
    let _consumers = s.consumers();
    s.consumer_ready("orders").await;
    eventually("a 202 once NATS is back", || async {
        s.post("/shop", "up").await.0 == StatusCode::ACCEPTED
    })
    .await;
    eventually("the event after the outage", || async {
        s.ids("/orders").contains(&"up".to_string())
    })
    .await;
    assert!(
        !s.ids("/orders").contains(&"down".to_string()),
        "a refused event was delivered"
    );
}

#[tokio::test]
async fn the_same_source_and_id_three_times_within_the_window_is_delivered_once() {
    let s = setup().await;
    s.trigger("orders", 0, false);
    let _consumers = s.consumers();
    s.consumer_ready("orders").await;
    for _ in 0..3 {
        assert_eq!(s.post("/shop", "same").await.0, StatusCode::ACCEPTED);
    }
    // Another source with the same id is another event; it also marks the end of the deliveries.
    assert_eq!(s.post("/other", "same").await.0, StatusCode::ACCEPTED);
    eventually("both events", || async { s.ids("/orders").len() >= 2 }).await;
    let sources: Vec<_> = s
        .sub
        .received("/orders")
        .iter()
        .filter_map(|r| {
            r.headers
                .get("ce-source")
                .map(|v| v.to_str().unwrap_or_default().to_string())
        })
        .collect();
    assert_eq!(sources.iter().filter(|s| *s == "/shop").count(), 1, "{sources:?}");
    assert_eq!(
        sources.iter().filter(|s| *s == "/other").count(),
        1,
        "{sources:?}"
    );
}

#[tokio::test]
async fn a_failing_subscriber_gets_retries_plus_one_attempts_then_the_dead_letter_sink_has_it() {
    let s = setup().await;
    s.sub.script("/orders", vec![Reply::status(500).body("boom")]);
    s.trigger("orders", 2, true);
    let _consumers = s.consumers();
    s.consumer_ready("orders").await;
    assert_eq!(s.post("/shop", "doomed").await.0, StatusCode::ACCEPTED);
    eventually("the dead letter", || async { !s.sub.received("/dlq").is_empty() }).await;
    assert_eq!(s.ids("/orders"), ["doomed", "doomed", "doomed"]);
    let dead = &s.sub.received("/dlq")[0];
    assert_eq!(dead.headers["ce-id"], "doomed");
    assert_eq!(dead.headers["ce-zeroscaleerrorcode"], "500");
    // Acknowledged after the dead letter: no further attempt comes (the stream drops the message).
    eventually("the stream to drop the acknowledged message", || async {
        match s.store.ensure_stream().await {
            Ok(mut stream) => stream.info().await.is_ok_and(|i| i.state.messages == 0),
            Err(_) => false,
        }
    })
    .await;
    assert_eq!(s.ids("/orders").len(), 3);
    assert_eq!(s.sub.received("/dlq").len(), 1);
}

/// Filters matching events of type `ty` only.
fn of_type(ty: &str) -> Filters {
    let filters: Vec<zeroscale_crds::trigger::TriggerFilter> =
        serde_json::from_value(serde_json::json!([{"exact": {"type": ty}}])).expect("filters");
    Filters::compile(&filters).expect("valid filters")
}

#[tokio::test]
async fn a_reply_is_stored_and_fans_out_to_the_triggers_it_matches() {
    let s = setup().await;
    s.sub.script(
        "/orders",
        vec![
            Reply::status(200)
                .header("ce-specversion", "1.0")
                .header("ce-id", "r1")
                .header("ce-source", "/billing")
                .header("ce-type", "order.billed"),
        ],
    );
    s.filtered_trigger("orders", 0, false, of_type("order.created"));
    s.filtered_trigger("billed", 0, false, of_type("order.billed"));
    let _consumers = s.consumers();
    s.consumer_ready("orders").await;
    s.consumer_ready("billed").await;
    assert_eq!(s.post("/shop", "o1").await.0, StatusCode::ACCEPTED);
    eventually("the reply at the second trigger", || async {
        !s.sub.received("/billed").is_empty()
    })
    .await;
    let reply = &s.sub.received("/billed")[0];
    assert_eq!(reply.headers["ce-id"], "r1");
    assert_eq!(
        reply.headers["ce-zeroscalebrokerttl"], "254",
        "the reply's TTL is its cause's minus one"
    );
    assert_eq!(
        s.ids("/orders"),
        ["o1"],
        "the reply does not match the first trigger"
    );
}

#[tokio::test]
async fn a_removed_trigger_loses_its_consumer_so_the_stream_does_not_keep_its_events() {
    let s = setup().await;
    s.trigger("orders", 0, false);
    let _consumers = s.consumers();
    s.consumer_ready("orders").await;
    s.routes.remove("shop", "orders");
    eventually("the consumer to be deleted", || async {
        match s.store.ensure_stream().await {
            Ok(stream) => stream.consumer_info("shop_orders").await.is_err(),
            Err(_) => false,
        }
    })
    .await;
}

#[tokio::test]
async fn an_activator_started_before_nats_answers_503_until_it_is_up() {
    let mut s = setup().await;
    s.nats.kill().await;
    // A store connecting while nothing listens: it starts anyway and keeps trying.
    let config = JetStreamConfig {
        url: s.nats.url(),
        publish_timeout: Duration::from_secs(1),
        ..JetStreamConfig::default()
    };
    let store = tokio::time::timeout(
        Duration::from_secs(10),
        JetStreamStore::connect(config, s.routes.clone(), EventMetrics::default()),
    )
    .await
    .expect("connect does not wait for the server")
    .expect("a valid URL");
    s.store = Arc::new(store);
    s.app = router(
        s.store.clone(),
        IngressConfig::default(),
        EventMetrics::default(),
        None,
    );
    s.trigger("orders", 0, false);
    let (status, body) = s.post("/shop", "early").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("not connected to NATS"), "{body}");
    s.nats.run().await;
    let _consumers = s.consumers();
    s.consumer_ready("orders").await;
    eventually("a 202 once NATS is up", || async {
        s.post("/shop", "late").await.0 == StatusCode::ACCEPTED
    })
    .await;
    eventually("the event", || async {
        s.ids("/orders").contains(&"late".to_string())
    })
    .await;
}

#[tokio::test]
async fn backlog_metrics_come_from_the_consumer_and_count_redeliveries_and_dead_letters() {
    let s = setup().await;
    s.sub.script("/orders", vec![Reply::status(500).body("boom")]);
    s.trigger("orders", 2, true);
    let trigger = TriggerLabels {
        namespace: "shop".into(),
        trigger: "orders".into(),
    };
    let route = s.routes.get("shop", "orders").expect("route");
    let labels = SubscriberLabels::of(&trigger, &route.subscriber);
    // The consumer exists but nobody pulls: what is accepted waits in the stream.
    let idle = s.consumers();
    s.consumer_ready("orders").await;
    idle.shutdown(Duration::from_secs(5)).await;
    for i in 0..3 {
        assert_eq!(s.post("/shop", &format!("b{i}")).await.0, StatusCode::ACCEPTED);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let metrics = EventMetrics::default();
    let mut sampler = Sampler::new(
        s.routes.clone(),
        Arc::new(PendingEvents::default()),
        Some(s.store.clone()),
        metrics.triggers().clone(),
    );
    sampler.sample().await;
    let backlog = metrics.triggers().backlog(&labels).expect("sampled");
    assert_eq!(backlog.depth, 3, "num_pending of the consumer");
    assert!(
        backlog.oldest_age >= Duration::from_secs(1) && backlog.oldest_age < Duration::from_secs(20),
        "age of the oldest stored message: {backlog:?}"
    );

    // Now deliver: each event gets 3 attempts (2 redeliveries), then the dead-letter sink.
    let _consumers = Consumers::start(s.store.clone(), Arc::new(HttpSender::default()), metrics.clone());
    eventually("3 dead letters", || async { s.sub.received("/dlq").len() >= 3 }).await;
    assert_eq!(s.ids("/orders").len(), 9);
    eventually("the dead-letter counter", || async {
        metrics.triggers().dead_letters(&labels) == 3
    })
    .await;
    assert_eq!(metrics.triggers().redeliveries(&labels), 6);
    eventually("an empty backlog", || async {
        s.store.backlog(&trigger).await == Ok(Backlog::default())
    })
    .await;
}
