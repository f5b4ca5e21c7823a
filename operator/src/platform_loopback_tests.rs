//! The sending path over real HTTP: a tiny local server records what the operator's [`HttpSender`]
//! sends, so the `Authorization` header, token rotation and the 404 rule are checked on the wire.
//! Real time (not paused): the sockets are real, and a paused clock would fire the per-attempt
//! timeout while the server works. No assertion depends on how long anything takes.

use zeroscale_common::testing::{Loopback, TokenDir};
use zeroscale_eventing::delivery::HttpSender;

use super::*;

fn config() -> SinkConfig {
    SinkConfig {
        // A bound, not a measurement: only a stuck test would reach it.
        timeout: Duration::from_secs(10),
        ..SinkConfig::default()
    }
}

#[tokio::test]
async fn every_post_carries_the_token_and_a_rotated_token_is_picked_up() {
    let server = Loopback::start(&[]).await;
    let dir = TokenDir::new();
    let path = dir.rotate("first.token\n");
    let sink = Sink::new(&server.url).with_token(TokenFile::new(&path));
    let sender = HttpSender::default();
    let delivered = deliver(&sink, &sender, &config(), notice()).await.expect("sent");
    assert_eq!(delivered, Delivered::Sent);
    dir.rotate("second.token.after.rotation");
    deliver(&sink, &sender, &config(), notice()).await.expect("sent");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, "/shop");
    assert_eq!(seen[0].header("authorization"), Some("Bearer first.token"));
    assert_eq!(seen[0].header("ce-type"), Some(READY_TYPE));
    assert_eq!(
        seen[1].header("authorization"),
        Some("Bearer second.token.after.rotation")
    );
}

#[tokio::test]
async fn a_missing_token_file_sends_without_a_token_and_a_401_is_final() {
    let server = Loopback::start(&[401, 202]).await;
    let dir = TokenDir::new();
    let sink = Sink::new(&server.url).with_token(TokenFile::new(dir.path().join("absent")));
    let err = deliver(&sink, &HttpSender::default(), &config(), notice())
        .await
        .expect_err("401");
    assert!(err.contains("401"), "{err}");
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "a 401 is not retried");
    assert_eq!(seen[0].header("authorization"), None);
}

#[tokio::test]
async fn a_404_from_the_broker_is_sent_once() {
    let server = Loopback::start(&[404, 202]).await;
    let delivered = deliver(
        &Sink::new(&server.url),
        &HttpSender::default(),
        &config(),
        notice(),
    )
    .await
    .expect("no broker is not an error");
    assert_eq!(delivered, Delivered::NoBroker);
    assert_eq!(server.seen().len(), 1);
}

fn notice() -> Notice {
    Notice {
        ty: READY_TYPE,
        data: FunctionCondition {
            function: FunctionKey::new("shop", "orders"),
            reason: "Ready".into(),
            message: String::new(),
        },
    }
}
