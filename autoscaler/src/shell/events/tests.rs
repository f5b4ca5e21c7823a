use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use prometheus_client::registry::Registry;
use tower::ServiceExt;
use zeroscale_common::signals::{FunctionKey, build_event, to_binary};

use super::*;

fn setup(token: Option<&str>) -> (Router, mpsc::Receiver<Signal>) {
    let (tx, rx) = mpsc::channel(8);
    let metrics = Metrics::register(&mut Registry::default());
    (router(tx, token.map(String::from), metrics), rx)
}

fn request<T: serde::Serialize>(ty: &str, payload: &T) -> Request<Body> {
    let key = FunctionKey::new("default", "hello");
    let message = to_binary(build_event(ty, "/zeroscale/activator/a", &key, payload).unwrap()).unwrap();
    let mut request = Request::post("/").body(Body::from(message.body)).unwrap();
    request.headers_mut().extend(message.headers);
    request
}

async fn text(response: Response) -> String {
    String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

fn demand() -> Demand {
    Demand {
        function: FunctionKey::new("default", "hello"),
        activator: "a".into(),
        queued: 3,
    }
}

#[tokio::test]
async fn demand_is_accepted_and_forwarded() {
    let (router, mut rx) = setup(None);
    let response = router.oneshot(request(DEMAND_TYPE, &demand())).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    match rx.try_recv().unwrap() {
        Signal::Demand { demand: d, .. } => assert_eq!(d, demand()),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn stats_are_accepted() {
    let (router, mut rx) = setup(None);
    let stats = Stats {
        function: FunctionKey::new("default", "hello"),
        activator: "a".into(),
        period_ms: 1000,
        concurrency: 2.5,
        requests: 7,
        queued: 0,
    };
    let response = router.oneshot(request(STATS_TYPE, &stats)).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(matches!(rx.try_recv().unwrap(), Signal::Stats(s) if s == stats));
}

#[tokio::test]
async fn malformed_events_get_400_with_a_reason() {
    let (router, _rx) = setup(None);
    let response = router
        .clone()
        .oneshot(Request::post("/").body(Body::from("hello")).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(text(response).await.contains("cloudevent"));

    let response = router
        .clone()
        .oneshot(request("dev.example.other", &demand()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(text(response).await.contains("unknown event type"));

    // A demand payload under the stats type does not decode.
    let response = router
        .clone()
        .oneshot(request(STATS_TYPE, &demand()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(text(response).await.starts_with("invalid event data"));

    let mut req = request(DEMAND_TYPE, &demand());
    req.headers_mut().insert(
        "ce-dataschema",
        "https://zeroscale.dev/schemas/signals/v9".parse().unwrap(),
    );
    let response = router.oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(text(response).await.contains("unsupported dataschema"));
}

#[tokio::test]
async fn token_is_required_when_configured() {
    let (router, _rx) = setup(Some("s3cret"));
    let response = router
        .clone()
        .oneshot(request(DEMAND_TYPE, &demand()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let mut req = request(DEMAND_TYPE, &demand());
    req.headers_mut()
        .insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
    assert_eq!(router.oneshot(req).await.unwrap().status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_an_empty_one_means_none() {
    let (router, _rx) = setup(Some("s3cret"));
    for wrong in [
        "Bearer s3cre",
        "Bearer s3cret2",
        "Bearer S3CRET",
        "s3cret",
        "Basic s3cret",
    ] {
        let mut req = request(DEMAND_TYPE, &demand());
        req.headers_mut()
            .insert(header::AUTHORIZATION, wrong.parse().unwrap());
        let response = router.clone().oneshot(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{wrong}");
    }
    let (open, _rx) = setup(Some(""));
    let response = open.oneshot(request(DEMAND_TYPE, &demand())).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn other_methods_get_405() {
    let (router, _rx) = setup(None);
    let response = router
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}
