//! Conformance-style tests: one per MUST of the broker ingress contract.

use std::sync::Mutex;

use axum::http::{Method, Request};
use cloudevents::{Data, event::SpecVersion};
use tower::ServiceExt;

use super::*;
use crate::reply::{TTL_EXTENSION, ttl};

/// Records what it is given; answers with a preset error when set.
#[derive(Default)]
pub(super) struct Recorder {
    pub(super) events: Mutex<Vec<(String, Event)>>,
    error: Mutex<Option<PublishError>>,
    /// Namespaces without a broker Trigger.
    pub(super) no_broker: Mutex<Vec<String>>,
}

impl Publish for Recorder {
    fn has_broker(&self, namespace: &str) -> bool {
        !self.no_broker.lock().unwrap().iter().any(|n| n == namespace)
    }

    fn publish(&self, namespace: &str, event: Event, _size: usize) -> Result<(), PublishError> {
        if let Some(error) = self.error.lock().unwrap().take() {
            return Err(error);
        }
        self.events.lock().unwrap().push((namespace.to_string(), event));
        Ok(())
    }
}

pub(super) struct Harness {
    pub(super) recorder: Arc<Recorder>,
    pub(super) metrics: EventMetrics,
    pub(super) app: Router,
}

fn harness() -> Harness {
    let recorder = Arc::new(Recorder::default());
    let metrics = EventMetrics::default();
    let config = IngressConfig {
        max_event_bytes: 1024,
        retry_after_seconds: 2,
    };
    let app = router(recorder.clone(), config, metrics.clone(), None);
    Harness {
        recorder,
        metrics,
        app,
    }
}

pub(super) async fn send(h: &Harness, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let response = h.app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

pub(super) fn binary(path: &str, specversion: &str) -> axum::http::request::Builder {
    Request::post(path)
        .header("ce-specversion", specversion)
        .header("ce-id", "evt-1")
        .header("ce-source", "/orders")
        .header("ce-type", "com.example.order.created")
}

fn structured(path: &str, json: serde_json::Value) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/cloudevents+json; charset=utf-8")
        .body(Body::from(json.to_string()))
        .unwrap()
}

#[tokio::test]
async fn accepts_binary_mode_1_0_with_202_and_keeps_data_and_extensions() {
    let h = harness();
    let request = binary("/shop", "1.0")
        .header("ce-region", "eu")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"order":42}"#))
        .unwrap();
    let (status, _, _) = send(&h, request).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let events = h.recorder.events.lock().unwrap();
    let (namespace, event) = &events[0];
    assert_eq!(namespace, "shop");
    assert_eq!(event.specversion(), SpecVersion::V10);
    assert_eq!(
        event.extension("region").map(ToString::to_string).as_deref(),
        Some("eu")
    );
    assert!(matches!(
        event.data(),
        Some(Data::Binary(_)) | Some(Data::Json(_))
    ));
    assert_eq!(ttl(event), Some(255), "the ingress stamps the loop-guard ttl");
    assert_eq!(h.metrics.rejections("malformed"), 0);
}

#[tokio::test]
async fn accepts_binary_mode_0_3() {
    let h = harness();
    let (status, _, _) = send(&h, binary("/shop", "0.3").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        h.recorder.events.lock().unwrap()[0].1.specversion(),
        SpecVersion::V03
    );
}

#[tokio::test]
async fn accepts_structured_mode_1_0_and_0_3() {
    let h = harness();
    for specversion in ["1.0", "0.3"] {
        let json = serde_json::json!({"specversion": specversion, "id": "1", "source": "/s", "type": "t",
                                      "datacontenttype": "application/json", "data": {"a": 1}});
        let (status, _, body) = send(&h, structured("/shop", json)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{specversion}: {body}");
    }
    let events = h.recorder.events.lock().unwrap();
    assert_eq!(events[0].1.specversion(), SpecVersion::V10);
    assert_eq!(events[1].1.specversion(), SpecVersion::V03);
    assert_eq!(events[0].1.data(), Some(&Data::Json(serde_json::json!({"a": 1}))));
}

#[tokio::test]
async fn keeps_a_ttl_the_event_already_carries() {
    let h = harness();
    let request = binary("/shop", "1.0")
        .header(format!("ce-{TTL_EXTENSION}"), "9")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&h, request).await.0, StatusCode::ACCEPTED);
    assert_eq!(ttl(&h.recorder.events.lock().unwrap()[0].1), Some(9));
}

#[tokio::test]
async fn rejects_malformed_events_with_400_and_a_reason() {
    let h = harness();
    let missing = |name: &'static str| {
        let mut request = binary("/shop", "1.0").body(Body::empty()).unwrap();
        request.headers_mut().remove(format!("ce-{name}").as_str());
        request
    };
    let cases: Vec<(&str, Request<Body>)> = vec![
        ("id", missing("id")),
        ("source", missing("source")),
        ("type", missing("type")),
        (
            "ce-specversion",
            Request::post("/shop")
                .header("ce-id", "1")
                .body(Body::empty())
                .unwrap(),
        ),
        ("spec", binary("/shop", "2.0").body(Body::empty()).unwrap()),
        (
            "empty",
            binary("/shop", "1.0")
                .header("ce-id", "")
                .body(Body::empty())
                .unwrap(),
        ),
        ("json", structured("/shop", serde_json::json!("not an object"))),
        (
            "id",
            structured(
                "/shop",
                serde_json::json!({"specversion": "1.0", "source": "/s", "type": "t"}),
            ),
        ),
        (
            "json",
            Request::post("/shop")
                .header("content-type", "application/cloudevents+json")
                .body(Body::from("{oops"))
                .unwrap(),
        ),
        (
            "time",
            binary("/shop", "1.0")
                .header("ce-time", "yesterday")
                .body(Body::empty())
                .unwrap(),
        ),
    ];
    let count = cases.len() as u64;
    for (hint, request) in cases {
        let (status, headers, body) = send(&h, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{hint}: {body}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert!(!body.trim().is_empty(), "{hint}: a reason is given");
    }
    assert!(h.recorder.events.lock().unwrap().is_empty());
    assert_eq!(h.metrics.rejections("malformed"), count);
}

#[tokio::test]
async fn rejects_other_methods_with_405_and_allow() {
    let h = harness();
    for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
        let request = Request::builder()
            .method(method.clone())
            .uri("/shop")
            .body(Body::empty())
            .unwrap();
        let (status, headers, _) = send(&h, request).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(headers["allow"], "POST");
    }
}

#[tokio::test]
async fn rejects_bodies_over_the_limit_with_413() {
    let h = harness();
    let big = "x".repeat(2000);
    // Declared length over the limit, and a streamed body with no declared length.
    let declared = binary("/shop", "1.0")
        .header("content-length", "2000")
        .body(Body::from(big.clone()))
        .unwrap();
    assert_eq!(send(&h, declared).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(big.into_bytes())]);
    let streamed = binary("/shop", "1.0").body(Body::from_stream(stream)).unwrap();
    assert_eq!(send(&h, streamed).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(h.metrics.rejections("too_large"), 2);
}

#[tokio::test]
async fn rejects_paths_that_are_not_a_namespace_with_404() {
    let h = harness();
    for path in [
        "/",
        "/shop/orders",
        "/Shop",
        "/-shop",
        "/shop_1",
        &format!("/{}", "a".repeat(64)),
    ] {
        let (status, _, body) = send(&h, binary(path, "1.0").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
}

#[tokio::test]
async fn a_namespace_without_broker_triggers_is_404_like_an_unknown_broker() {
    let h = harness();
    h.recorder.no_broker.lock().unwrap().push("empty".into());
    let (status, headers, body) = send(&h, binary("/empty", "1.0").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("namespace empty has no broker"), "{body}");
    let id = headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 32, "a generated id: {id}");
    assert!(body.ends_with(&format!("request id: {id}\n")), "{body}");
    assert!(h.recorder.events.lock().unwrap().is_empty());
    assert_eq!(h.metrics.rejections("not_found"), 1);
}

#[tokio::test]
async fn error_answers_echo_the_callers_request_id() {
    let h = harness();
    let request = Request::get("/shop")
        .header("x-request-id", "req-42")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send(&h, request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["x-request-id"], "req-42");
    assert!(body.ends_with("request id: req-42\n"), "{body}");
    let (status, headers, _) = send(&h, binary("/shop", "1.0").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(!headers.contains_key("x-request-id"), "202 stays empty");
}

#[tokio::test]
async fn answers_503_with_retry_after_when_the_broker_is_full_or_closing() {
    let h = harness();
    *h.recorder.error.lock().unwrap() = Some(PublishError::Full);
    let (status, headers, body) = send(&h, binary("/shop", "1.0").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "2");
    assert!(body.contains("capacity"));
    *h.recorder.error.lock().unwrap() = Some(PublishError::ShuttingDown);
    let (status, _, _) = send(&h, binary("/shop", "1.0").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h.metrics.rejections("overloaded"), 1);
    assert_eq!(h.metrics.rejections("shutting_down"), 1);
}

#[tokio::test]
async fn rejects_batched_mode_with_415() {
    let h = harness();
    let request = Request::post("/shop")
        .header("content-type", "application/cloudevents-batch+json")
        .body(Body::from("[]"))
        .unwrap();
    assert_eq!(send(&h, request).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
