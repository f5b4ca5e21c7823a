use std::time::{Duration, SystemTime};

use cloudevents::{EventBuilder, EventBuilderV10};
use http::StatusCode;
use zeroscale_crds::trigger::BackoffPolicy;

use super::*;
use crate::{
    delivery::{HttpSender, dead_letter::*},
    retry::RetryPolicy,
    testing::{Reply, Subscriber, VirtualClock},
};

fn event() -> Event {
    EventBuilderV10::new()
        .id("evt-1")
        .ty("com.example.order.created")
        .source("/shop")
        .data("application/json", serde_json::json!({"order": 42}))
        .build()
        .unwrap()
}

fn labels() -> TriggerLabels {
    TriggerLabels {
        namespace: "shop".into(),
        trigger: "orders".into(),
    }
}

fn config(retries: u32, dead_letter: Option<Target>) -> DeliveryConfig {
    DeliveryConfig {
        retry: RetryPolicy {
            retries,
            ..RetryPolicy::default()
        },
        attempt_timeout: Duration::from_secs(5),
        dead_letter,
    }
}

fn epoch() -> SystemTime {
    httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap()
}

struct Setup {
    deliverer: Deliverer<HttpSender, VirtualClock>,
    clock: VirtualClock,
    metrics: EventMetrics,
    sub: Subscriber,
}

async fn setup() -> Setup {
    let clock = VirtualClock::at(epoch());
    let metrics = EventMetrics::default();
    let deliverer = Deliverer::with_clock(Arc::new(HttpSender::default()), clock.clone(), metrics.clone());
    Setup {
        deliverer,
        clock,
        metrics,
        sub: Subscriber::start().await,
    }
}

#[tokio::test]
async fn delivers_in_binary_mode_on_the_first_2xx() {
    let s = setup().await;
    s.sub.script("/in", vec![Reply::status(202)]);
    let outcome = s
        .deliverer
        .deliver(&labels(), &event(), &s.sub.target("/in"), &config(3, None))
        .await;
    assert_eq!(
        outcome,
        Outcome::Delivered {
            attempts: 1,
            reply: None
        }
    );
    let got = s.sub.received("/in");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers["ce-id"], "evt-1");
    assert_eq!(got[0].headers["ce-specversion"], "1.0");
    assert_eq!(got[0].headers["content-type"], "application/json");
    assert_eq!(got[0].headers["prefer"], "reply");
    assert_eq!(&got[0].body[..], br#"{"order":42}"#);
    assert!(s.clock.waits().is_empty());
    assert_eq!(s.metrics.deliveries("shop", "orders", "delivered"), 1);
}

#[tokio::test]
async fn retries_retryable_statuses_with_exponential_backoff() {
    let s = setup().await;
    s.sub.script(
        "/in",
        vec![
            Reply::status(503),
            Reply::status(404),
            Reply::status(429),
            Reply::status(200),
        ],
    );
    let outcome = s
        .deliverer
        .deliver(&labels(), &event(), &s.sub.target("/in"), &config(3, None))
        .await;
    assert_eq!(
        outcome,
        Outcome::Delivered {
            attempts: 4,
            reply: None
        }
    );
    let ms = Duration::from_millis;
    assert_eq!(s.clock.waits(), [ms(400), ms(800), ms(1600)]);
    assert_eq!(s.metrics.retry_count("shop", "orders"), 3);
    // Every attempt carries the same event: receivers de-duplicate on source + id.
    assert!(
        s.sub
            .received("/in")
            .iter()
            .all(|r| r.headers["ce-id"] == "evt-1")
    );
}

#[tokio::test]
async fn linear_backoff_and_retry_after_in_seconds_and_as_a_date() {
    let s = setup().await;
    s.sub.script(
        "/in",
        vec![
            Reply::status(503).header("retry-after", "3"),
            Reply::status(429).header("retry-after", "Wed, 21 Oct 2015 07:28:13 GMT"),
            Reply::status(500),
            Reply::status(204),
        ],
    );
    let mut cfg = config(3, None);
    cfg.retry.backoff = BackoffPolicy::Linear;
    let outcome = s
        .deliverer
        .deliver(&labels(), &event(), &s.sub.target("/in"), &cfg)
        .await;
    assert_eq!(
        outcome,
        Outcome::Delivered {
            attempts: 4,
            reply: None
        }
    );
    // 3 s asked (longer than 200 ms); the date is 10 s after the virtual now (07:28:03) → 10 s;
    // then the plain linear 600 ms.
    let waits = s.clock.waits();
    assert_eq!(
        waits,
        [
            Duration::from_secs(3),
            Duration::from_secs(10),
            Duration::from_millis(600)
        ]
    );
}

#[tokio::test]
async fn final_status_goes_to_the_dead_letter_sink_at_once_with_extensions() {
    let s = setup().await;
    s.sub
        .script("/in", vec![Reply::status(400).body("missing field order")]);
    s.sub.script("/dlq", vec![Reply::status(202)]);
    let cfg = config(3, Some(s.sub.target("/dlq")));
    let outcome = s
        .deliverer
        .deliver(&labels(), &event(), &s.sub.target("/in"), &cfg)
        .await;
    let Outcome::DeadLettered { attempts: 1, failure } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(failure.status(), Some(StatusCode::BAD_REQUEST));
    assert!(s.clock.waits().is_empty(), "400 is not retried");
    let dlq = s.sub.received("/dlq");
    assert_eq!(dlq.len(), 1);
    let headers = &dlq[0].headers;
    assert_eq!(headers["ce-id"], "evt-1");
    assert_eq!(
        headers[format!("ce-{ERROR_DEST_EXTENSION}").as_str()],
        s.sub.target("/in").address().as_str()
    );
    assert_eq!(headers[format!("ce-{ERROR_CODE_EXTENSION}").as_str()], "400");
    assert_eq!(
        headers[format!("ce-{ERROR_DATA_EXTENSION}").as_str()],
        "missing field order"
    );
    assert_eq!(&dlq[0].body[..], br#"{"order":42}"#, "the original data is kept");
    assert_eq!(s.metrics.deliveries("shop", "orders", "dead_lettered"), 1);
}

#[tokio::test]
async fn exhausted_retries_dead_letter_after_the_last_attempt() {
    let s = setup().await;
    s.sub.script("/in", vec![Reply::status(500).body("boom")]);
    let cfg = config(2, Some(s.sub.target("/dlq")));
    let outcome = s
        .deliverer
        .deliver(&labels(), &event(), &s.sub.target("/in"), &cfg)
        .await;
    assert!(
        matches!(outcome, Outcome::DeadLettered { attempts: 3, .. }),
        "{outcome:?}"
    );
    assert_eq!(s.sub.received("/in").len(), 3);
    assert_eq!(
        s.sub.received("/dlq")[0].headers[format!("ce-{ERROR_CODE_EXTENSION}").as_str()],
        "500"
    );
    let subscriber = SubscriberLabels::of(&labels(), &s.sub.target("/in"));
    assert_eq!(s.metrics.triggers().redeliveries(&subscriber), 2);
    assert_eq!(s.metrics.triggers().dead_letters(&subscriber), 1);
}

#[tokio::test]
async fn retries_of_the_dead_letter_sink_are_not_redeliveries_of_the_subscriber() {
    let s = setup().await;
    s.sub.script("/in", vec![Reply::status(400)]);
    s.sub.script(
        "/dlq",
        vec![Reply::status(503), Reply::status(503), Reply::status(200)],
    );
    let cfg = config(2, Some(s.sub.target("/dlq")));
    let outcome = s
        .deliverer
        .deliver(&labels(), &event(), &s.sub.target("/in"), &cfg)
        .await;
    assert!(
        matches!(outcome, Outcome::DeadLettered { attempts: 1, .. }),
        "{outcome:?}"
    );
    let subscriber = SubscriberLabels::of(&labels(), &s.sub.target("/in"));
    assert_eq!(s.metrics.triggers().redeliveries(&subscriber), 0);
    assert_eq!(s.metrics.triggers().dead_letters(&subscriber), 1);
    assert_eq!(
        s.metrics.retry_count("shop", "orders"),
        2,
        "the sink's retries still count as retries"
    );
}

#[tokio::test]
async fn timeouts_are_retried_and_without_a_sink_the_event_is_undeliverable() {
    let s = setup().await;
    s.sub
        .script("/slow", vec![Reply::status(200).delay(Duration::from_secs(5))]);
    let mut cfg = config(1, None);
    cfg.attempt_timeout = Duration::from_millis(50);
    let outcome = s
        .deliverer
        .deliver(&labels(), &event(), &s.sub.target("/slow"), &cfg)
        .await;
    let expected_failure = Failure::Timeout(Duration::from_millis(50));
    assert_eq!(
        outcome,
        Outcome::Undeliverable {
            attempts: 2,
            failure: expected_failure,
            dead_letter: None
        }
    );
    assert_eq!(s.metrics.deliveries("shop", "orders", "undeliverable"), 1);
}

#[tokio::test]
async fn connection_errors_are_retried_then_dead_lettered_without_a_code() {
    let s = setup().await;
    // A port nothing listens on: bind, read the port, close.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let nowhere = Target::uri(&format!("http://{closed}/in")).unwrap();
    let cfg = config(1, Some(s.sub.target("/dlq")));
    let outcome = s.deliverer.deliver(&labels(), &event(), &nowhere, &cfg).await;
    let Outcome::DeadLettered {
        attempts: 2,
        failure: Failure::Transport(_),
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    let dlq = &s.sub.received("/dlq")[0].headers;
    assert!(!dlq.contains_key(format!("ce-{ERROR_CODE_EXTENSION}").as_str()));
    assert!(dlq.contains_key(format!("ce-{ERROR_DATA_EXTENSION}").as_str()));
}

#[tokio::test]
async fn a_failing_dead_letter_sink_leaves_the_event_undeliverable() {
    let s = setup().await;
    s.sub.script("/in", vec![Reply::status(500)]);
    s.sub.script("/dlq", vec![Reply::status(503)]);
    let outcome = s
        .deliverer
        .deliver(
            &labels(),
            &event(),
            &s.sub.target("/in"),
            &config(1, Some(s.sub.target("/dlq"))),
        )
        .await;
    let Outcome::Undeliverable {
        attempts: 2,
        dead_letter: Some(dlq),
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(dlq.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(
        s.sub.received("/dlq").len(),
        2,
        "the sink gets the same retry schedule"
    );
}

#[tokio::test]
async fn a_2xx_answer_carrying_an_event_is_returned_as_the_reply() {
    let s = setup().await;
    s.sub.script(
        "/in",
        vec![
            Reply::status(200)
                .header("ce-specversion", "1.0")
                .header("ce-id", "reply-1")
                .header("ce-type", "com.example.order.confirmed")
                .header("ce-source", "/orders")
                .header("content-type", "application/json")
                .body(r#"{"ok":true}"#),
        ],
    );
    let outcome = s
        .deliverer
        .deliver(&labels(), &event(), &s.sub.target("/in"), &config(0, None))
        .await;
    let Outcome::Delivered {
        attempts: 1,
        reply: Some(reply),
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(reply.id(), "reply-1");
    assert_eq!(reply.ty(), "com.example.order.confirmed");
}

#[tokio::test]
async fn a_malformed_reply_is_dropped_but_the_delivery_counts() {
    let s = setup().await;
    s.sub.script(
        "/in",
        vec![
            Reply::status(200)
                .header("ce-specversion", "1.0")
                .header("ce-id", "x"),
        ],
    );
    let outcome = s
        .deliverer
        .deliver(&labels(), &event(), &s.sub.target("/in"), &config(0, None))
        .await;
    assert_eq!(
        outcome,
        Outcome::Delivered {
            attempts: 1,
            reply: None
        }
    );
    assert_eq!(s.metrics.drops("invalid_reply"), 1);
}
