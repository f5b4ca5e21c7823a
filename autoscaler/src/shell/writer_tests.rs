//! The `scaled` event's path over real HTTP: a tiny local server records what [`Sink::post`] sends,
//! so the `Authorization` header, token rotation and the 404 rule are checked on the wire. Real time
//! (not paused) because the sockets are real; no assertion depends on how long anything takes.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// One request the server saw: its path and headers (names lowercased).
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A one-request-per-connection HTTP/1.1 server answering statuses from a script (then 202).
struct Loopback {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Loopback {
    async fn start(script: &[u16]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let (record, answers) = (seen.clone(), script.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then as much body as Content-Length says.
                let head_end = loop {
                    let n = stream.read(&mut chunk).await.expect("read");
                    assert!(n > 0, "connection closed before the head ended");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let path = lines
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .unwrap_or_default()
                    .to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    let n = stream.read(&mut chunk).await.expect("read body");
                    assert!(n > 0, "connection closed inside the body");
                    buf.extend_from_slice(&chunk[..n]);
                }
                record.lock().expect("lock").push(Seen { path, headers });
                let status = answers.lock().expect("lock").pop_front().unwrap_or(202);
                let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                stream.write_all(answer.as_bytes()).await.expect("answer");
            }
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// A fresh directory for token files, removed on drop.
struct TokenDir(PathBuf);

impl TokenDir {
    fn new() -> Self {
        let dir = std::env::temp_dir()
            .join(format!("zs-as-token-{}", std::process::id()))
            .join(format!("{:x}", rand_suffix()));
        std::fs::create_dir_all(&dir).expect("create dir");
        Self(dir)
    }

    /// Writes `token` as the kubelet does: a new file renamed over the old one.
    fn rotate(&self, token: &str) -> PathBuf {
        let (path, next) = (self.0.join("token"), self.0.join(".token.next"));
        std::fs::write(&next, token).expect("write");
        std::fs::rename(&next, &path).expect("rename");
        path
    }
}

impl Drop for TokenDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Distinct per call within this process (tests run in parallel threads).
fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

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
        .with_token(TokenFile::new(dir.0.join("absent")));
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
