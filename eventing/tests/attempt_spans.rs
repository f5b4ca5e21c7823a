//! Delivery-attempt spans reach a real OTLP receiver: with export on, each attempt of the in-memory
//! deliverer and of the durable stores' `attempt` is a client span continuing the event's
//! distributed-tracing extension, and the subscriber gets that span's context in `traceparent`.
#![allow(clippy::unwrap_used)]

#[path = "../../activator/tests/otlp/collector.rs"]
mod collector;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use cloudevents::{EventBuilder, EventBuilderV10};
use http::StatusCode;
use zeroscale_common::tracing_otlp::{self, OtlpConfig};
use zeroscale_eventing::{
    delivery::{Answer, Deliverer, DeliveryConfig, EventSender, Outgoing, SendError, Target},
    metrics::{EventMetrics, TriggerLabels},
    store::attempt,
};

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const EVENT_SPAN: &str = "b7ad6b7169203331";

/// A subscriber that records each attempt's `traceparent` and fails the first one.
#[derive(Default)]
struct Recording(Mutex<Vec<String>>);

impl EventSender for Recording {
    async fn send(&self, request: Outgoing) -> Result<Answer, SendError> {
        let mut seen = self.0.lock().unwrap();
        let tp = request
            .headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        seen.push(tp.to_string());
        let status = if seen.len() == 1 {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        Ok(Answer {
            status,
            headers: Default::default(),
            body: Bytes::new(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_attempt_is_a_span_of_the_events_trace() {
    let collector = collector::Collector::start().await;
    let guard = tracing_otlp::install(&OtlpConfig {
        endpoint: collector.endpoint.clone(),
        sampling_ratio: 1.0,
        service_name: "zeroscale-eventing-test",
    })
    .unwrap();
    let event = EventBuilderV10::new()
        .id("evt-1")
        .ty("com.example.order.created")
        .source("/shop")
        .extension("traceparent", format!("00-{TRACE}-{EVENT_SPAN}-01"))
        .build()
        .unwrap();
    let sender = Arc::new(Recording::default());
    let target = Target::uri("http://subscriber.shop.svc/").unwrap();
    let mut config = DeliveryConfig::default();
    config.retry.retries = 1;
    config.retry.delay = Duration::from_millis(1);
    let deliverer = Deliverer::new(Arc::clone(&sender), EventMetrics::default());
    let labels = TriggerLabels {
        namespace: "shop".into(),
        trigger: "orders".into(),
    };
    deliverer.deliver(&labels, &event, &target, &config).await;
    attempt::attempt(&*sender, &event, &target, Duration::from_secs(5))
        .await
        .unwrap();
    // Flushes the batch: every span is exported before the guard returns.
    tokio::task::spawn_blocking(move || guard.shutdown())
        .await
        .unwrap();

    let spans = collector.wait_for_trace(TRACE, 3).await;
    let seen = sender.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (sent, number) in seen.iter().zip(["1", "2", ""]) {
        let id = sent.split('-').nth(2).unwrap();
        let span = spans
            .iter()
            .find(|s| s["spanId"] == id)
            .unwrap_or_else(|| panic!("no span {id}: {spans:#?}"));
        assert_eq!(span["parentSpanId"], EVENT_SPAN, "the event's span is the parent");
        assert_eq!(span["kind"], 3, "a client span");
        assert_eq!(span["name"], "deliver com.example.order.created");
        let attributes = span["attributes"].as_array().unwrap();
        let attempt = attributes
            .iter()
            .find(|a| a["key"] == "zeroscale.delivery.attempt");
        assert_eq!(
            attempt
                .map(|a| a["value"]["intValue"].as_str().unwrap())
                .unwrap_or(""),
            number
        );
        assert!(sent.ends_with("-01"), "sampled: {sent}");
    }
    let first = spans
        .iter()
        .find(|s| s["spanId"] == seen[0].split('-').nth(2).unwrap())
        .unwrap();
    assert_eq!(first["status"]["code"], 2, "the 503 attempt is an error");
}
