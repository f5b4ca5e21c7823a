//! The data-port listeners: accept connections, serve HTTP/1.1 (with upgrades) and HTTP/2 with prior
//! knowledge, and on shutdown stop accepting and let open connections finish within the drain period.
//!
//! A new connection's first request head is read here (`server/head.rs`) before a server gets the
//! connection, and the request is admitted from it: a request that has to wait for a pod waits in a
//! small task of its own (`server/park.rs`) as a socket and a buffer of its head's size, not as a
//! server connection with its buffers. Once a pod is chosen (or at once when one has room) the
//! activator's own HTTP/1.1 server (`server/h1.rs`) serves the connection from the bytes read, and the
//! first request carries the outcome reached early ([`Proxy::handle_first`]). The first request that
//! server leaves to hyper (an upgrade, `Expect`, a streamed body, a malformed head) hands the
//! connection to hyper, replaying the bytes not yet served; the HTTP/2 preface goes to hyper at once.

mod h1;
mod head;
mod park;

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use hyper::{
    server::conn::{http1, http2},
    service::service_fn,
};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::{net::TcpListener, net::TcpStream, sync::mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    body::ResponseBody,
    client_body::{ClientBody, ClientRequest},
    headers::ensure_request_id,
    proxy::{Early, HeadAdmission, Proxy},
    respond::with_request_id,
    settings::Port,
    trace,
};
use head::{Head, Prefixed};

/// Limits that protect the data ports from hostile or broken clients.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Time allowed to receive a request head; slow clients are disconnected after it.
    pub header_read_timeout: Duration,
    /// Largest request head in bytes (HTTP/1.1 read buffer); larger heads get 431.
    pub max_header_bytes: usize,
    /// Most header fields in a request.
    pub max_headers: usize,
    /// Most concurrent HTTP/2 streams per client connection.
    pub max_concurrent_streams: u32,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_concurrent_streams: 1000,
        }
    }
}

/// What every connection of one port shares.
struct Listener {
    port: Port,
    proxy: Arc<Proxy>,
    limits: ServerLimits,
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    stop: CancellationToken,
}

fn builders(limits: &ServerLimits) -> (http1::Builder, http2::Builder<TokioExecutor>) {
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper refuses buffers below 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams);
    (h1, h2)
}

/// Serves `listener` until `stop` is cancelled, then waits up to `drain` for open connections (and the
/// requests they carry, queued ones included) to finish.
pub async fn serve(
    listener: TcpListener,
    port: Port,
    proxy: Arc<Proxy>,
    limits: ServerLimits,
    stop: CancellationToken,
    drain: Duration,
) {
    let (http1, http2) = builders(&limits);
    let shared = Arc::new(Listener {
        port,
        proxy,
        limits,
        http1,
        http2,
        stop: stop.clone(),
    });
    // Every connection task holds a sender; the channel closes when the last one has finished.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Usually EMFILE: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let open = open.clone();
        tokio::spawn(connection(shared, stream, remote, open.clone()));
    }
    drop(listener);
    drop(open);
    if tokio::time::timeout(drain, all_closed.recv()).await.is_err() {
        tracing::warn!(?drain, "drain period passed with connections still open");
    }
}

/// One client connection: its first head, the wait for a pod if any, then hyper. `open` is held
/// until the connection ends (a drain waits for every one).
async fn connection(shared: Arc<Listener>, stream: TcpStream, remote: SocketAddr, open: mpsc::Sender<()>) {
    let limits = shared.limits;
    let read = tokio::select! {
        read = tokio::time::timeout(limits.header_read_timeout, head::read(&stream, limits.max_header_bytes)) => read,
        // Draining: a connection that has not sent a whole request yet is closed.
        () = shared.stop.cancelled() => return,
    };
    let (bytes, head) = match read {
        Ok(Ok(Some(read))) => read,
        // Closed, failed or too slow: nothing to answer.
        Ok(Ok(None) | Err(_)) | Err(_) => return,
    };
    let early = match head {
        Head::Http2 => return Box::pin(serve_http2(&shared, Prefixed::new(bytes, stream), remote)).await,
        Head::Http1 { host } => match shared.proxy.admit_head(shared.port, host, bytes.len()) {
            HeadAdmission::Decided(early) => Some(early),
            HeadAdmission::Parked(parked) => {
                // The wait goes on in a task of its own that holds only what waiting needs; this
                // task (sized for reading heads and serving) ends here.
                tokio::spawn(park::wait(shared, stream, bytes.into_boxed_slice(), parked, open));
                return;
            }
        },
        Head::Partial | Head::Other => None,
    };
    Box::pin(h1::serve(&shared, stream, bytes, remote, early)).await;
    drop(open);
}

/// One request through the pipeline, with its request id, trace and log span; `early` is the
/// outcome of its admission from the head, for the first request of a connection.
async fn serve_request(
    proxy: Arc<Proxy>,
    port: Port,
    remote: SocketAddr,
    mut request: ClientRequest,
    early: Option<Early>,
) -> http::Response<trace::Traced<ResponseBody>> {
    let request_id = ensure_request_id(request.headers_mut());
    let trace = trace::start(&mut request, remote, &request_id);
    let span = trace.log_span(&request_id);
    // Each arm awaits its own future (no wrapping block), so the request's future is moved less.
    // The first request of a connection is boxed: its future is twice the others', and would make
    // this one, which is moved on every request, as large. With no log span (the level is off),
    // nothing is instrumented: `Instrumented` would be one more move of the future and a span
    // entered on every poll.
    let response = match early {
        Some(early) => {
            let first = Box::pin(proxy.handle_first(port, remote, request, early));
            first.instrument(span.clone()).await
        }
        None if span.is_disabled() => proxy.handle(port, remote, request).await,
        None => proxy.handle(port, remote, request).instrument(span.clone()).await,
    };
    let response = match response {
        Ok(response) => response,
        Err(never) => match never {},
    };
    traced(response, &request_id, trace, span)
}

async fn serve_http1(shared: &Listener, io: Prefixed, remote: SocketAddr, early: Option<Early>) {
    let proxy = Arc::clone(&shared.proxy);
    let port = shared.port;
    // The first request takes the early outcome; the rest of the connection's requests are admitted
    // as they come. Taking it drops `taken`, which tells a drain that the request hyper had not
    // read yet is now in progress, and will be finished before the connection closes.
    let (taken, first_taken) = tokio::sync::oneshot::channel::<()>();
    let first = Mutex::new(early.map(|e| (e, taken)));
    let service = service_fn(move |request| {
        let proxy = Arc::clone(&proxy);
        let early = first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .map(|(early, _taken)| early);
        async move {
            let request = request.map(ClientBody::Hyper);
            let response = serve_request(proxy, port, remote, request, early).await;
            Ok::<_, Infallible>(with_passed_fields(response))
        }
    });
    let connection = shared
        .http1
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let drain = async {
        shared.stop.cancelled().await;
        // A graceful shutdown closes a connection hyper sees as idle: wait until the request that
        // waited for its pod before hyper had the connection is being served.
        let _ = first_taken.await;
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = drain => {
            // Finish the request in progress, then close.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%remote, error = %e, "connection ended with an error");
    }
}

async fn serve_http2(shared: &Listener, io: Prefixed, remote: SocketAddr) {
    let proxy = Arc::clone(&shared.proxy);
    let port = shared.port;
    let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let proxy = Arc::clone(&proxy);
        async move {
            let request = request.map(ClientBody::Hyper);
            let response = serve_request(proxy, port, remote, request, None).await;
            Ok::<_, Infallible>(with_passed_fields(response))
        }
    });
    let connection = shared.http2.serve_connection(TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shared.stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%remote, error = %e, "connection ended with an error");
    }
}

/// The answer with its request's trace, which ends when the body is done (see [`trace::Traced`]).
/// The request id is added (and an error logged) inside the request's log span.
fn traced(
    response: http::Response<ResponseBody>,
    request_id: &http::HeaderValue,
    mut trace: trace::RequestTrace,
    span: tracing::Span,
) -> http::Response<trace::Traced<ResponseBody>> {
    let response = span.in_scope(|| with_request_id(response, request_id));
    trace.set_status(response.status().as_u16());
    response.map(|body| trace::Traced::new(body, trace, span))
}

/// `response` with its pod's passed fields (`upstream/h1/passed.rs`) in its header map, for hyper,
/// which writes only the map. The activator's own HTTP/1.1 server writes them as lines instead.
fn with_passed_fields(
    response: http::Response<trace::Traced<ResponseBody>>,
) -> http::Response<trace::Traced<ResponseBody>> {
    let (mut parts, body) = response.into_parts();
    if let Some(passed) = body.inner().passed_fields() {
        passed.append_to(&mut parts.headers);
    }
    http::Response::from_parts(parts, body)
}

/// Binds a data port.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<F: Future>(_: fn(Arc<Listener>, TcpStream, SocketAddr, mpsc::Sender<()>) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn a_parked_connection_stays_small() {
        // A connection's task holds this future while it reads its first head; hyper's state is
        // boxed and only allocated after. A request that has to wait does so in a task of its own
        // (`park.rs`, bounded by its own test).
        let size = future_size(connection);
        assert!(size <= 1024, "connection future is {size} bytes");
    }
}
