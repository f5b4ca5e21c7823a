//! The sending path over real HTTP: a tiny local server records what the operator's [`HttpSender`]
//! sends, so the `Authorization` header, token rotation and the 404 rule are checked on the wire.
//! Real time (not paused): the sockets are real, and a paused clock would fire the per-attempt
//! timeout while the server works. No assertion depends on how long anything takes.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use zeroscale_eventing::delivery::HttpSender;

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
            .join(format!("zs-op-token-{}", std::process::id()))
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
    let sink = Sink::new(&server.url).with_token(TokenFile::new(dir.0.join("absent")));
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
