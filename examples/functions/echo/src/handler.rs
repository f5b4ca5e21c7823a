//! The HTTP handler: `/healthz`, `/ws` (WebSocket echo), `/call` (an in-pod client) and the JSON echo of
//! everything else.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode, header};
use serde_json::json;

use crate::config::Config;
use crate::inflight::InFlight;
use crate::options::parse;

/// The response body type: whole or streamed.
pub type Body = BoxBody<Bytes, Infallible>;

/// Pause between two streamed chunks.
pub const CHUNK_GAP: Duration = Duration::from_millis(50);

/// Shared state of the server.
#[derive(Debug, Clone)]
pub struct Echo {
    /// Settings.
    pub config: Arc<Config>,
    /// Requests being handled.
    pub in_flight: InFlight,
    /// The CloudEvent ids received, when `ECHO_RECORD_IDS=1`.
    pub ids: Option<crate::ids::IdLog>,
    /// Which echoed requests fail on purpose (`ECHO_FAIL_PERCENT`).
    pub failures: Arc<crate::fail::FailPercent>,
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    response
}

impl Echo {
    /// An echo server's state.
    pub fn new(config: Config) -> Self {
        let ids = config.record_ids.then(crate::ids::IdLog::default);
        // `main` refuses a bad ECHO_FAIL_PERCENT before serving; here it only reads a checked one.
        let failures = Arc::new(crate::fail::FailPercent::new(config.fail_percent().unwrap_or(0)));
        Self {
            config: Arc::new(config),
            in_flight: InFlight::default(),
            ids,
            failures,
        }
    }

    /// Handles one request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        match req.uri().path() {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/ws" if crate::ws::is_upgrade(&req) => crate::ws::upgrade(req),
            "/call" => crate::call::call(req.uri().query()).await,
            "/ids" if self.ids.is_some() && req.method() == hyper::Method::GET => self.ids().await,
            "/ids/log" if self.ids.is_some() && req.method() == hyper::Method::GET => self.ids_log().await,
            _ => {
                if let (Some(ids), Some(id)) = (&self.ids, req.headers().get("ce-id")) {
                    ids.record(&String::from_utf8_lossy(id.as_bytes()), req.headers())
                        .await;
                }
                self.echo(req).await
            }
        }
    }

    /// `GET /ids/log`: each request with a `ce-id`, in arrival order ([`crate::ids`]).
    async fn ids_log(&self) -> Response<Body> {
        let doc = match &self.ids {
            Some(ids) => ids.log_document().await,
            None => serde_json::Value::Null,
        };
        let mut response = Response::new(Full::new(Bytes::from(format!("{doc}\n"))).boxed());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        response
    }

    /// `GET /ids`: the CloudEvent ids received ([`crate::ids`]).
    async fn ids(&self) -> Response<Body> {
        let doc = match &self.ids {
            Some(ids) => ids.document(self.config.pod.as_deref()).await,
            None => serde_json::Value::Null,
        };
        let mut response = Response::new(Full::new(Bytes::from(format!("{doc}\n"))).boxed());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        response
    }

    async fn echo(&self, req: Request<Incoming>) -> Response<Body> {
        if self.failures.next() {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "injected failure (ECHO_FAIL_PERCENT)\n",
            );
        }
        let guard = self.in_flight.enter();
        let options = match parse(req.uri().query()) {
            Ok(options) => options,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
        if guard.overlapped() && (options.overlap_fail || self.config.single) {
            return text(StatusCode::INTERNAL_SERVER_ERROR, "overlap detected\n");
        }
        if let Some(path) = &options.write {
            return write_probe(path).await;
        }
        // Held until the answer is built, so the memory is in use while the request is.
        let memory = match options.alloc {
            Some(bytes) => match tokio::task::spawn_blocking(move || crate::alloc::touch(bytes)).await {
                Ok(memory) => memory,
                Err(e) => {
                    return text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("cannot allocate: {e}\n"),
                    );
                }
            },
            None => Vec::new(),
        };
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("cannot read the body: {e}\n")),
        };
        if let Some(sleep) = options.sleep.or(self.config.sleep) {
            tokio::time::sleep(sleep).await;
        }
        let status = options
            .status
            .or(self.config.status)
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::OK);
        if let Some(chunks) = options.stream {
            return stream(status, chunks, guard);
        }
        let headers: serde_json::Map<String, serde_json::Value> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), json!(String::from_utf8_lossy(v.as_bytes()))))
            .collect();
        let doc = json!({
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "query": parts.uri.query().unwrap_or_default(),
            "version": format!("{:?}", parts.version),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
            "pod": self.config.pod,
            "function": self.config.function,
            "in_flight": guard.at_arrival,
            "started_us": guard.started_us,
            "answered_us": crate::inflight::unix_micros(),
            "status": status.as_u16(),
            "allocated": memory.len(),
        });
        drop(memory);
        let mut response = Response::new(Full::new(Bytes::from(format!("{doc}\n"))).boxed());
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        drop(guard);
        response
    }
}

/// Writes a small file at `path` and removes it: 200 when both work, 500 naming the error otherwise
/// (`Read-only file system` under `readOnlyRootFilesystem: true`). Nothing is left behind.
async fn write_probe(path: &str) -> Response<Body> {
    match tokio::fs::write(path, b"zeroscale-echo write probe\n").await {
        Ok(()) => {
            let removed = tokio::fs::remove_file(path).await;
            match removed {
                Ok(()) => text(StatusCode::OK, format!("wrote and removed {path}\n")),
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("wrote {path} but cannot remove it: {e}\n"),
                ),
            }
        }
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write {path}: {e}\n"),
        ),
    }
}

/// `n` chunks `data: <i>\n\n`, [`CHUNK_GAP`] apart; the request counts as in flight until the last one.
fn stream(status: StatusCode, n: u32, guard: crate::inflight::InFlightGuard) -> Response<Body> {
    let chunks = futures::stream::unfold((0u32, Some(guard)), move |(i, guard)| async move {
        if i >= n {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(CHUNK_GAP).await;
        }
        Some((
            Ok::<_, Infallible>(Frame::data(Bytes::from(format!("data: {i}\n\n")))),
            (i + 1, guard),
        ))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(chunks)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    response
}
