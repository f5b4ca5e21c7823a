//! A host HTTP server that records the requests it receives (CloudEvents in binary mode: `ce-*`
//! headers and a body), for tests whose components deliver events to a URL.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

/// One received request.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request path.
    pub path: String,
    /// The `ce-*` headers, lowercase names, in arrival order.
    pub ce: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl Received {
    /// The value of header `name` (a `ce-*` header, lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.ce.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A recording HTTP/1 server on 127.0.0.1 answering every request with a fixed status and an empty
/// body; it runs until the test's runtime stops.
#[derive(Clone, Debug)]
pub struct EventSink {
    addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl EventSink {
    /// Starts a sink on a free port that answers `status` (e.g. 200 or 202).
    pub async fn start(status: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the sink binds 127.0.0.1");
        let addr = listener.local_addr().expect("the sink's address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let store = store.clone();
                        async move {
                            store.lock().await.push(record(req).await);
                            let response = Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::new()))
                                .unwrap_or_default();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, received }
    }

    /// Its base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything received so far.
    pub async fn received(&self) -> Vec<Received> {
        self.received.lock().await.clone()
    }

    /// The requests received so far whose `ce-type` is `ty`.
    pub async fn of_type(&self, ty: &str) -> Vec<Received> {
        let received = self.received.lock().await;
        received
            .iter()
            .filter(|r| r.header("ce-type") == Some(ty))
            .cloned()
            .collect()
    }
}

/// Reads one request into a [`Received`] (an unreadable body is recorded as empty).
async fn record(req: Request<Incoming>) -> Received {
    let path = req.uri().path().to_string();
    let ce = req
        .headers()
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("ce-"))
        .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Received { path, ce, body }
}
