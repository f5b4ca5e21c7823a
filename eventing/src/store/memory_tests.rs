//! The memory backend's duplicate rule, through the ingress.

use std::{sync::Arc, time::Duration};

use axum::{body::Body, http::Request};
use http::StatusCode;
use tokio::time::Instant;
use tower::ServiceExt;
use zeroscale_crds::trigger::BackoffPolicy;

use super::memory::MemoryStore;
use crate::{
    broker::{Broker, BrokerConfig},
    delivery::{Deliverer, DeliveryConfig, HttpSender},
    filter::Filters,
    ingress::{IngressConfig, router},
    metrics::{EventMetrics, TriggerLabels},
    retry::RetryPolicy,
    router::{Route, RoutingTable, SourceKind},
    testing::Subscriber,
};

fn post(source: &str, id: &str) -> Request<Body> {
    Request::post("/shop")
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-source", source)
        .header("ce-type", "order.created")
        .body(Body::empty())
        .expect("request")
}

#[tokio::test]
async fn the_same_source_and_id_three_times_within_the_window_is_delivered_once() {
    let sub = Subscriber::start().await;
    let routes = RoutingTable::default();
    routes.upsert(Route {
        trigger: TriggerLabels {
            namespace: "shop".into(),
            trigger: "orders".into(),
        },
        source: SourceKind::Broker,
        filters: Filters::default(),
        subscriber: sub.target("/orders"),
        delivery: DeliveryConfig {
            retry: RetryPolicy {
                retries: 0,
                backoff: BackoffPolicy::Linear,
                ..RetryPolicy::default()
            },
            ..DeliveryConfig::default()
        },
    });
    let metrics = EventMetrics::default();
    let deliverer = Deliverer::new(Arc::new(HttpSender::default()), metrics.clone());
    let broker = Broker::start(routes, deliverer, BrokerConfig::default(), metrics.clone());
    let store = Arc::new(MemoryStore::new(
        broker,
        Duration::from_secs(120),
        100,
        metrics.clone(),
    ));
    let app = router(store, IngressConfig::default(), metrics, None);
    for _ in 0..3 {
        let answer = app.clone().oneshot(post("/shop", "same")).await.expect("answer");
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
    }
    let answer = app.clone().oneshot(post("/other", "same")).await.expect("answer");
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sub.received("/orders").len() < 2 {
        assert!(Instant::now() < deadline, "timed out waiting for 2 deliveries");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sources: Vec<_> = sub
        .received("/orders")
        .iter()
        .filter_map(|r| {
            r.headers
                .get("ce-source")
                .map(|v| v.to_str().unwrap_or_default().to_string())
        })
        .collect();
    assert_eq!(sources.iter().filter(|s| *s == "/shop").count(), 1, "{sources:?}");
    assert_eq!(sources.len(), 2, "{sources:?}");
}
