use std::time::{Duration, SystemTime};

use cloudevents::{EventBuilder, EventBuilderV10};
use serde_json::json;
use zeroscale_crds::trigger::Trigger;

use super::*;
use crate::{
    delivery::{DeliveryDefaults, HttpSender},
    reply::{TTL_EXTENSION, stamp_ttl},
    testing::{Reply, Subscriber, VirtualClock},
};

fn route(sub: &Subscriber, name: &str, source: serde_json::Value, filters: serde_json::Value) -> Route {
    let trigger: Trigger = serde_json::from_value(json!({
        "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Trigger",
        "metadata": {"namespace": "shop", "name": name},
        "spec": {"source": source, "filters": filters,
                 "subscriber": {"uri": format!("http://{}/{name}", sub.addr)},
                 "delivery": {"retries": 1}},
    }))
    .unwrap();
    let mut defaults = DeliveryDefaults::default();
    defaults.allowed_hosts = defaults.allowed_hosts.with_list("127.0.0.1").unwrap();
    Route::compile(&trigger, &defaults).unwrap()
}

fn event(ty: &str) -> Event {
    let mut e = EventBuilderV10::new()
        .id(uuid::Uuid::new_v4().to_string())
        .ty(ty)
        .source("/test")
        .build()
        .unwrap();
    stamp_ttl(&mut e);
    e
}

struct Setup {
    broker: Broker<HttpSender, VirtualClock>,
    routes: RoutingTable,
    metrics: EventMetrics,
    sub: Subscriber,
}

async fn setup(config: BrokerConfig) -> Setup {
    let metrics = EventMetrics::default();
    let deliverer = Deliverer::with_clock(
        Arc::new(HttpSender::default()),
        VirtualClock::at(SystemTime::UNIX_EPOCH),
        metrics.clone(),
    );
    let routes = RoutingTable::default();
    let broker = Broker::start(routes.clone(), deliverer, config, metrics.clone());
    Setup {
        broker,
        routes,
        metrics,
        sub: Subscriber::start().await,
    }
}

/// Waits for `condition` with a deadline on tokio's clock, rather than sleeping a fixed time. The
/// tests run on paused time: the subscriber's reply delays and this deadline are virtual, and the
/// clock only moves when every task (loopback IO included) waits on a timer.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn fans_out_one_delivery_per_matching_trigger() {
    let s = setup(BrokerConfig::default()).await;
    s.routes
        .upsert(route(&s.sub, "all", json!({"broker": {}}), json!([])));
    s.routes.upsert(route(
        &s.sub,
        "orders",
        json!({"broker": {}}),
        json!([{"prefix": {"type": "order."}}]),
    ));
    s.routes.upsert(route(
        &s.sub,
        "refunds",
        json!({"broker": {}}),
        json!([{"exact": {"type": "refund"}}]),
    ));
    s.broker.publish("shop", event("order.created"), 10).unwrap();
    eventually("two deliveries", || {
        s.sub.received("/all").len() == 1 && s.sub.received("/orders").len() == 1
    })
    .await;
    eventually("all finished", || s.broker.in_flight() == 0).await;
    assert!(s.sub.received("/refunds").is_empty());
    assert_eq!(s.metrics.deliveries("shop", "orders", "delivered"), 1);
}

#[tokio::test(start_paused = true)]
async fn replies_are_republished_with_a_decremented_ttl() {
    let s = setup(BrokerConfig::default()).await;
    s.routes.upsert(route(
        &s.sub,
        "orders",
        json!({"broker": {}}),
        json!([{"exact": {"type": "order"}}]),
    ));
    s.routes.upsert(route(
        &s.sub,
        "audit",
        json!({"broker": {}}),
        json!([{"exact": {"type": "confirmed"}}]),
    ));
    s.sub.script(
        "/orders",
        vec![
            Reply::status(200)
                .header("ce-specversion", "1.0")
                .header("ce-id", "r1")
                .header("ce-source", "/orders")
                .header("ce-type", "confirmed"),
        ],
    );
    s.broker.publish("shop", event("order"), 10).unwrap();
    eventually("the reply reaches audit", || s.sub.received("/audit").len() == 1).await;
    let audit = &s.sub.received("/audit")[0].headers;
    assert_eq!(audit["ce-id"], "r1");
    assert_eq!(audit[format!("ce-{TTL_EXTENSION}").as_str()], "254");
}

#[tokio::test(start_paused = true)]
async fn a_reply_loop_stops_when_the_ttl_runs_out() {
    let s = setup(BrokerConfig::default()).await;
    s.routes
        .upsert(route(&s.sub, "echo", json!({"broker": {}}), json!([])));
    // The subscriber answers every event with an event it matches itself.
    s.sub.script(
        "/echo",
        vec![
            Reply::status(200)
                .header("ce-specversion", "1.0")
                .header("ce-id", "again")
                .header("ce-source", "/echo")
                .header("ce-type", "loop"),
        ],
    );
    let mut start = event("loop");
    start.set_extension(TTL_EXTENSION, 3_i64);
    s.broker.publish("shop", start, 10).unwrap();
    eventually("the loop is cut", || s.metrics.drops("ttl_exhausted") == 1).await;
    eventually("all finished", || s.broker.in_flight() == 0).await;
    // TTL 3 → replies with TTL 2 and 1 are delivered; the reply to the TTL-1 event is dropped.
    assert_eq!(s.sub.received("/echo").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn refuses_instead_of_dropping_when_the_byte_budget_is_used_up() {
    let s = setup(BrokerConfig {
        max_buffered_bytes: 1000,
        ..BrokerConfig::default()
    })
    .await;
    s.routes
        .upsert(route(&s.sub, "slow", json!({"broker": {}}), json!([])));
    s.sub.script(
        "/slow",
        vec![Reply::status(202).delay(Duration::from_millis(300))],
    );
    s.broker.publish("shop", event("a"), 600).unwrap();
    assert_eq!(s.broker.publish("shop", event("b"), 600), Err(PublishError::Full));
    assert_eq!(
        s.broker.publish("shop", event("c"), 5000),
        Err(PublishError::TooLarge(5000))
    );
    eventually("the first delivery releases its bytes", || {
        s.broker.in_flight() == 0
    })
    .await;
    s.broker.publish("shop", event("d"), 600).unwrap();
}

#[tokio::test(start_paused = true)]
async fn refuses_when_the_queue_is_full() {
    let s = setup(BrokerConfig {
        queue_capacity: 1,
        ..BrokerConfig::default()
    })
    .await;
    // Fill the queue faster than the dispatcher (on this same thread) can drain it.
    let results: Vec<_> = (0..50)
        .map(|i| s.broker.publish("shop", event(&format!("e{i}")), 10))
        .collect();
    assert!(results.contains(&Err(PublishError::Full)));
    assert!(results[0].is_ok());
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_accepted_events_then_refuses_new_ones() {
    let s = setup(BrokerConfig::default()).await;
    s.routes
        .upsert(route(&s.sub, "slow", json!({"broker": {}}), json!([])));
    s.sub.script(
        "/slow",
        vec![Reply::status(202).delay(Duration::from_millis(100))],
    );
    s.broker.publish("shop", event("a"), 10).unwrap();
    assert_eq!(s.broker.shutdown(Duration::from_secs(10)).await, 0);
    assert_eq!(s.sub.received("/slow").len(), 1);
    assert_eq!(
        s.broker.publish("shop", event("b"), 10),
        Err(PublishError::ShuttingDown)
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_counts_what_it_could_not_drain() {
    let s = setup(BrokerConfig::default()).await;
    s.routes
        .upsert(route(&s.sub, "stuck", json!({"broker": {}}), json!([])));
    s.sub
        .script("/stuck", vec![Reply::status(202).delay(Duration::from_secs(30))]);
    s.broker.publish("shop", event("a"), 10).unwrap();
    eventually("delivery started", || s.sub.received("/stuck").len() == 1).await;
    assert_eq!(s.broker.shutdown(Duration::from_millis(50)).await, 1);
    assert_eq!(s.metrics.drops("shutdown"), 1);
}

#[tokio::test(start_paused = true)]
async fn source_events_go_to_their_own_trigger_through_its_filters() {
    let s = setup(BrokerConfig::default()).await;
    let tick = Arc::new(route(
        &s.sub,
        "tick",
        json!({"schedule": {"cron": "* * * * *"}}),
        json!([]),
    ));
    let picky = Arc::new(route(
        &s.sub,
        "picky",
        json!({"schedule": {"cron": "* * * * *"}}),
        json!([{"exact": {"type": "no"}}]),
    ));
    s.routes
        .upsert(route(&s.sub, "all", json!({"broker": {}}), json!([])));
    s.broker
        .publish_to(tick, event("dev.zeroscale.schedule"), 10)
        .await
        .unwrap();
    s.broker
        .publish_to(picky, event("dev.zeroscale.schedule"), 10)
        .await
        .unwrap();
    eventually("tick delivered", || s.sub.received("/tick").len() == 1).await;
    eventually("all finished", || s.broker.in_flight() == 0).await;
    assert!(
        s.sub.received("/picky").is_empty(),
        "filters apply to source events too"
    );
    assert!(
        s.sub.received("/all").is_empty(),
        "source events do not enter the broker fan-out"
    );
}

#[tokio::test(start_paused = true)]
async fn each_trigger_counts_an_event_in_its_backlog_until_its_own_delivery_finished() {
    let s = setup(BrokerConfig::default()).await;
    s.routes
        .upsert(route(&s.sub, "fast", json!({"broker": {}}), json!([])));
    s.routes
        .upsert(route(&s.sub, "slow", json!({"broker": {}}), json!([])));
    s.sub.script("/fast", vec![Reply::status(202)]);
    s.sub
        .script("/slow", vec![Reply::status(202).delay(Duration::from_secs(3))]);
    s.broker.publish("shop", event("a"), 10).unwrap();
    let pending = s.broker.pending();
    let of = |name: &str| {
        pending.backlog(
            &crate::metrics::TriggerLabels {
                namespace: "shop".into(),
                trigger: name.into(),
            },
            Instant::now(),
        )
    };
    eventually("the slow delivery started", || s.sub.received("/slow").len() == 1).await;
    eventually("the fast delivery finished", || of("fast").depth == 0).await;
    assert_eq!(of("slow").depth, 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        of("slow").oldest_age >= Duration::from_secs(1),
        "{:?}",
        of("slow")
    );
    eventually("the slow delivery finished", || of("slow").depth == 0).await;
}
