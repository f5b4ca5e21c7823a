//! Helpers shared by the loopback tests: an activator started in-process, upstream servers on
//! 127.0.0.x, a client, and an autoscaler stand-in that records signals.
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{net::TcpListener, time::Instant};
use zeroscale_activator::{
    Activator, ActivatorConfig,
    settings::{EndpointInfo, FunctionSettings},
};
use zeroscale_common::signals::FunctionKey;

/// Body type of test servers.
pub type TestBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A full body.
pub fn full(data: impl Into<Bytes>) -> TestBody {
    Full::new(data.into()).map_err(|e| match e {}).boxed()
}

/// The function every test uses unless it says otherwise.
pub fn key() -> FunctionKey {
    FunctionKey::new("default", "hello")
}

/// Host header for [`key`].
pub const HOST: &str = "hello.default.svc.cluster.local";

/// Starts an activator with `config` tweaked by `f`.
pub async fn activator(f: impl FnOnce(&mut ActivatorConfig)) -> Activator {
    let mut config = ActivatorConfig::default();
    f(&mut config);
    Activator::start(config).await.expect("activator starts")
}

/// Starts an HTTP server (HTTP/1.1 with upgrades, and HTTP/2 prior knowledge) on `ip` with `handler`.
pub async fn upstream<F, Fut>(ip: [u8; 4], handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    let listener = TcpListener::bind(SocketAddr::from((ip, 0)))
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            // Paused-time tests need TCP_NODELAY on every test socket: Nagle would hold a small
            // write until the peer's delayed ACK, a real-time kernel timer the virtual clock skips.
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// An upstream answering `200 ok` to everything.
pub async fn ok_upstream(ip: [u8; 4]) -> SocketAddr {
    upstream(ip, |_req| async { Response::new(full("ok")) }).await
}

/// A connector with TCP_NODELAY (see [`upstream`] for why paused-time tests need it).
pub fn connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector
}

/// A pooled HTTP/1.1 client.
pub fn client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).build(connector())
}

/// An HTTP/2 client with prior knowledge (h2c), as gRPC clients connect.
pub fn h2c_client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector())
}

/// A TCP connection to `addr` with TCP_NODELAY (see [`upstream`]).
pub async fn connect(addr: SocketAddr) -> tokio::net::TcpStream {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Reads from `stream` until a whole request head has arrived; `false` when the client closed (or
/// the read failed) first. What came after the head is dropped: for raw test pods that answer each
/// head alike.
pub async fn read_head(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// An HTTP/1.1 connection to `addr` from the local address `source` (e.g. 127.0.0.3, which no test
/// activator counts as a peer), for requests that must come from a given client address.
pub async fn connection_from(
    source: [u8; 4],
    addr: SocketAddr,
) -> hyper::client::conn::http1::SendRequest<TestBody> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((source, 0))).expect("bind");
    let stream = socket.connect(addr).await.expect("connect");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

/// A GET for [`HOST`] to `addr`.
pub fn get(addr: SocketAddr, path: &str) -> Request<TestBody> {
    Request::get(format!("http://{addr}{path}"))
        .header("host", HOST)
        .body(full(""))
        .expect("request")
}

/// Sends `request` and returns the status and body text.
pub async fn send(request: Request<TestBody>) -> (u16, String, http::HeaderMap) {
    let response = client().request(request).await.expect("response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned(), headers)
}

/// Feeds `key()` into the activator with `settings` and `endpoints`.
pub fn set(activator: &Activator, settings: FunctionSettings, endpoints: Vec<EndpointInfo>) {
    activator.table.apply(&key(), settings, endpoints);
}

/// Waits until `condition` holds, failing after 10 s on tokio's clock (virtual in paused tests: it
/// moves only while every task, loopback IO included, waits on a timer).
pub async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A signal received by [`SignalRecorder`].
#[derive(Clone, Debug)]
pub struct Received {
    /// When it arrived.
    pub at: Instant,
    /// `ce-type`.
    pub ty: String,
    /// JSON body.
    pub body: serde_json::Value,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

/// An autoscaler stand-in recording every signal.
#[derive(Clone, Default)]
pub struct SignalRecorder {
    /// Everything received so far.
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl SignalRecorder {
    /// Starts it and returns its URL.
    pub async fn start(&self) -> String {
        let received = Arc::clone(&self.received);
        let addr = upstream([127, 0, 0, 1], move |req: Request<Incoming>| {
            let received = Arc::clone(&received);
            async move {
                let at = Instant::now();
                let ty = req
                    .headers()
                    .get("ce-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let authorization = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(String::from);
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                received.lock().unwrap().push(Received {
                    at,
                    ty,
                    body,
                    authorization,
                });
                Response::builder().status(202).body(full("")).unwrap()
            }
        })
        .await;
        format!("http://{addr}/")
    }

    /// Signals of type `ty`.
    pub fn of_type(&self, ty: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.ty == ty)
            .cloned()
            .collect()
    }
}

/// Resident set size of this process in bytes.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Reads the admin `/metrics` text.
pub async fn metrics(activator: &Activator) -> String {
    let request = Request::get(format!("http://{}/metrics", activator.admin_addr))
        .body(full(""))
        .unwrap();
    send(request).await.1
}

/// Opens a WebSocket (HTTP/1.1 upgrade) to `/chat` on `addr` with `Host: host`, then checks that each
/// of `messages` comes back unchanged (the upstream echoes bytes).
pub async fn websocket_round_trip(addr: SocketAddr, host: &str, messages: &[&str]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = connect(addr).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    let request = Request::get("/chat")
        .header("host", host)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(full(""))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    let mut io = TokioIo::new(hyper::upgrade::on(response).await.unwrap());
    for message in messages {
        io.write_all(message.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; message.len()];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, message.as_bytes());
    }
}
