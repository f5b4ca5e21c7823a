//! Test support shared by the components' unit tests (feature `testing`, a dev-dependency only): a
//! loopback HTTP/1.1 server that records what a sender posts and answers scripted statuses, a
//! directory of token files rotated the way the kubelet does, and a log destination to read back
//! with the JSON log format the components install.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request the server saw: its path and headers (names lowercased).
#[derive(Clone, Debug)]
pub struct Seen {
    /// The request target.
    pub path: String,
    /// The headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A one-request-per-connection HTTP/1.1 server answering statuses from a script (then 202).
pub struct Loopback {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Loopback {
    /// Starts the server on a free loopback port; it answers the statuses of `script` in turn.
    pub async fn start(script: &[u16]) -> Self {
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

    /// Every request seen so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// A fresh directory for token files, removed on drop.
pub struct TokenDir(PathBuf);

impl TokenDir {
    /// A new empty directory under the system temporary directory.
    #[allow(clippy::new_without_default)] // each call makes a new directory: not a default value
    pub fn new() -> Self {
        let dir = std::env::temp_dir()
            .join(format!("zs-token-{}", std::process::id()))
            .join(format!("{:x}", rand_suffix()));
        std::fs::create_dir_all(&dir).expect("create dir");
        Self(dir)
    }

    /// Writes `token` as the kubelet does: a new file renamed over the old one.
    pub fn rotate(&self, token: &str) -> PathBuf {
        let (path, next) = (self.0.join("token"), self.0.join(".token.next"));
        std::fs::write(&next, token).expect("write");
        std::fs::rename(&next, &path).expect("rename");
        path
    }
}

impl TokenDir {
    /// The directory itself.
    pub fn path(&self) -> &std::path::Path {
        &self.0
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

/// A log destination keeping what is written to it, for a test to read back: a formatter's writer
/// (`tracing_subscriber::fmt::layer().with_writer(captured.clone())`) or any `io::Write`.
#[derive(Clone, Debug, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// What `body` logs through the JSON log format `telemetry::init` installs (the same layer), as text.
pub fn json_logged(body: impl FnOnce()) -> String {
    use tracing_subscriber::prelude::*;
    let captured = Captured::default();
    let layer = crate::telemetry::json_layer(captured.clone());
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), body);
    captured.text()
}
