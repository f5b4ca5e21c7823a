//! Scripted pods for the churn tests: raw TCP servers that fail at an exact point of an HTTP/1.1
//! exchange, counting what they saw.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// What a scripted pod does with one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    /// Answers `200` with the pod's name, keeping the connection alive.
    Answer,
    /// Answers as [`Act::Answer`], then closes the idle connection (a pod's shutdown on SIGTERM).
    AnswerThenClose,
    /// Reads the request (head and announced body), then closes without answering: the keep-alive
    /// close after SIGTERM racing a request, or a pod killed while handling it.
    CloseAfterRead,
    /// Resets the connection as soon as the head arrived, before any response byte.
    Reset,
    /// Sends part of a response head, then closes: killed while answering.
    PartialHead,
    /// Sends a full head announcing 100 bytes, 10 of them, then closes: killed mid-body.
    CutBody,
    /// Reads the head and the first body bytes of a streamed request, then closes.
    CloseMidBody,
}

/// A scripted pod: `script(connection, request)` (both counted from 0) says what to do.
pub struct Pod {
    pub addr: SocketAddr,
    /// Requests whose head arrived.
    pub requests: Arc<AtomicUsize>,
    /// Requests answered in full.
    pub answered: Arc<AtomicUsize>,
    /// Connections closed by the activator.
    pub closed_by_peer: Arc<AtomicUsize>,
    /// Idle connections the pod closed itself.
    pub closed_by_pod: Arc<AtomicUsize>,
    /// Connections accepted.
    pub accepted: Arc<AtomicUsize>,
}

impl Pod {
    pub async fn start(ip: [u8; 4], name: &'static str, script: fn(usize, usize) -> Act) -> Self {
        let listener = TcpListener::bind(SocketAddr::from((ip, 0))).await.unwrap();
        Self::serve(listener, name, script, usize::MAX)
    }

    /// A pod that accepts `limit` connections, then closes its listener (it died): later connections
    /// are refused.
    pub fn serve(
        listener: TcpListener,
        name: &'static str,
        script: fn(usize, usize) -> Act,
        limit: usize,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let pod = Self {
            addr,
            requests: Arc::default(),
            answered: Arc::default(),
            closed_by_peer: Arc::default(),
            closed_by_pod: Arc::default(),
            accepted: Arc::default(),
        };
        let (requests, answered, closed, closed_by_pod, accepted) = (
            Arc::clone(&pod.requests),
            Arc::clone(&pod.answered),
            Arc::clone(&pod.closed_by_peer),
            Arc::clone(&pod.closed_by_pod),
            Arc::clone(&pod.accepted),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true); // paused time: see support::upstream
                let connection = accepted.fetch_add(1, Ordering::SeqCst);

                let (requests, answered, closed, closed_by_pod) = (
                    Arc::clone(&requests),
                    Arc::clone(&answered),
                    Arc::clone(&closed),
                    Arc::clone(&closed_by_pod),
                );
                tokio::spawn(async move {
                    let mut conn = Conn {
                        stream,
                        buf: Vec::new(),
                    };
                    for request in 0.. {
                        let Some(head) = conn.head().await else {
                            closed.fetch_add(1, Ordering::SeqCst);
                            return;
                        };
                        requests.fetch_add(1, Ordering::SeqCst);
                        match script(connection, request) {
                            Act::Answer | Act::AnswerThenClose => {
                                conn.body(&head).await;
                                let reply = format!(
                                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{name}",
                                    name.len()
                                );
                                conn.stream.write_all(reply.as_bytes()).await.unwrap();
                                answered.fetch_add(1, Ordering::SeqCst);
                                if script(connection, request) == Act::AnswerThenClose {
                                    conn.stream.shutdown().await.unwrap();
                                    drop(conn);
                                    closed_by_pod.fetch_add(1, Ordering::SeqCst);
                                    return;
                                }
                            }
                            Act::CloseAfterRead => {
                                conn.body(&head).await;
                                return;
                            }
                            Act::Reset => {
                                conn.stream.set_zero_linger().unwrap();
                                return;
                            }
                            Act::PartialHead => {
                                conn.body(&head).await;
                                conn.stream.write_all(b"HTTP/1.1 200 O").await.unwrap();
                                return;
                            }
                            Act::CutBody => {
                                conn.body(&head).await;
                                let reply = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789";
                                conn.stream.write_all(reply.as_bytes()).await.unwrap();
                                return;
                            }
                            Act::CloseMidBody => {
                                // Some of the streamed body arrives; then the pod dies.
                                while conn.buf.is_empty() {
                                    conn.fill().await;
                                }
                                return;
                            }
                        }
                    }
                });
                if connection + 1 >= limit {
                    // The listener closes: the pod died.
                    break;
                }
            }
        });
        pod
    }
}

/// A pod's side of one connection: the socket and bytes read past the last request.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Reads more bytes; false at the end of the stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next request head (lower-cased), or `None` when the activator closed the connection.
    async fn head(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_lowercase();
                self.buf.drain(..end + 4);
                return Some(head);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// Reads the body a `content-length` announces.
    async fn body(&mut self, head: &str) {
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while self.buf.len() < length {
            if !self.fill().await {
                return;
            }
        }
        self.buf.drain(..length);
    }
}
