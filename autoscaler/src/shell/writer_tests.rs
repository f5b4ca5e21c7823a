//! The `scaled` event's path over real HTTP: a tiny local server records what [`Sink::post`] sends,
//! so the `Authorization` header, token rotation and the 404 rule are checked on the wire. Real time
//! (not paused) because the sockets are real; no assertion depends on how long anything takes.

use zeroscale_common::testing::{Loopback, TokenDir};

use super::*;

fn event() -> (HeaderMap, Vec<u8>) {
    let payload = Scaled {
        function: FunctionKey::new("shop", "orders"),
        from: 0,
        to: 1,
        reason: "demand".into(),
    };
    let event = signals::build_event(
        SCALED_TYPE,
        "/zeroscale/autoscaler/test",
        &payload.function,
        &payload,
    )
    .expect("event");
    let message = signals::to_binary(event).expect("binary");
    (message.headers, message.body)
}

#[tokio::test]
async fn every_post_carries_the_token_and_a_rotated_token_is_picked_up() {
    let server = Loopback::start(&[]).await;
    let dir = TokenDir::new();
    let path = dir.rotate("first.token\n");
    let sink = Sink::new(&server.url, HttpClient::default())
        .expect("on")
        .with_token(TokenFile::new(&path));
    let (headers, body) = event();
    let posted = sink
        .post("shop", headers.clone(), body.clone())
        .await
        .expect("posted");
    assert_eq!(posted, Posted::Sent);
    dir.rotate("second.token.after.rotation");
    sink.post("shop", headers, body).await.expect("posted");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, "/shop");
    assert_eq!(seen[0].header("ce-type"), Some(SCALED_TYPE));
    assert_eq!(seen[0].header("authorization"), Some("Bearer first.token"));
    assert_eq!(
        seen[1].header("authorization"),
        Some("Bearer second.token.after.rotation")
    );
}

#[tokio::test]
async fn without_a_readable_token_the_event_goes_without_one() {
    let server = Loopback::start(&[401]).await;
    let dir = TokenDir::new();
    let (headers, body) = event();
    let sink = Sink::new(&server.url, HttpClient::default())
        .expect("on")
        .with_token(TokenFile::new(dir.path().join("absent")));
    let posted = sink
        .post("shop", headers.clone(), body.clone())
        .await
        .expect("answered");
    assert_eq!(posted, Posted::Refused(StatusCode::UNAUTHORIZED));
    // No token file at all: no header either.
    let plain = Sink::new(&server.url, HttpClient::default()).expect("on");
    plain.post("shop", headers, body).await.expect("answered");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter().all(|s| s.header("authorization").is_none()),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_404_means_no_broker_and_is_sent_once() {
    let server = Loopback::start(&[404]).await;
    let (headers, body) = event();
    let sink = Sink::new(&server.url, HttpClient::default()).expect("on");
    assert_eq!(
        sink.post("shop", headers, body).await.expect("answered"),
        Posted::NoBroker
    );
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn an_empty_sink_is_off() {
    assert!(Sink::new("", HttpClient::default()).is_none());
    assert!(Sink::new("  ", HttpClient::default()).is_none());
    assert!(Sink::new("http://b", HttpClient::default()).is_some());
}
