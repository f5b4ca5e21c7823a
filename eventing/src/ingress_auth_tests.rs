//! The ingress with authentication on: 401 without a valid token, 403 without the grant, 202 with
//! both, and no word about which namespaces have a broker before the caller is known.

use axum::http::Request;

use super::{
    tests::{Harness, Recorder, binary, send},
    *,
};
use crate::auth::{CacheConfig, tests::FakeVerifier};

fn harness_with_auth(fake: FakeVerifier) -> Harness {
    let recorder = Arc::new(Recorder::default());
    let metrics = EventMetrics::default();
    let auth = Arc::new(BrokerAuth::new(fake, CacheConfig::default()));
    let app = router(
        recorder.clone(),
        IngressConfig::default(),
        metrics.clone(),
        Some(auth),
    );
    Harness {
        recorder,
        metrics,
        app,
    }
}

fn event(namespace: &str, authorization: Option<&str>) -> Request<Body> {
    let mut request = binary(&format!("/{namespace}"), "1.0");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn no_or_bad_token_is_401_with_a_challenge() {
    let h = harness_with_auth(FakeVerifier::allowing("alice", "shop"));
    for authorization in [None, Some("Bearer wrong-audience"), Some("Basic YTpi")] {
        let (status, headers, body) = send(&h, event("shop", authorization)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}: {body}");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        assert!(body.contains("zeroscale-broker"), "{body}");
    }
    assert_eq!(h.metrics.rejections("unauthenticated"), 3);
    assert!(h.recorder.events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_caller_without_the_grant_is_403_and_one_with_it_202() {
    let h = harness_with_auth(FakeVerifier::allowing("alice", "shop"));
    let (status, _, body) = send(&h, event("shop", Some("Bearer good-bob"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("bob may not post events to namespace shop"),
        "{body}"
    );
    assert!(body.contains("create on brokers.zeroscale.dev"), "{body}");
    let (status, _, body) = send(&h, event("shop", Some("Bearer good-alice"))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(h.recorder.events.lock().unwrap().len(), 1);
    assert_eq!(h.metrics.rejections("forbidden"), 1);
}

#[tokio::test]
async fn the_namespace_check_comes_after_authentication() {
    let h = harness_with_auth(FakeVerifier::allowing("alice", "empty"));
    h.recorder.no_broker.lock().unwrap().push("empty".into());
    assert_eq!(send(&h, event("empty", None)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        send(&h, event("empty", Some("Bearer good-alice"))).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_unreachable_api_server_is_503_with_retry_after() {
    let fake = FakeVerifier::allowing("alice", "shop");
    fake.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let h = harness_with_auth(fake);
    let (status, headers, _) = send(&h, event("shop", Some("Bearer good-alice"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key("retry-after"));
    assert_eq!(h.metrics.rejections("auth_unavailable"), 1);
}
