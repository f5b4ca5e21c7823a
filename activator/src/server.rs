//! The data-port listeners: accept connections, serve HTTP/1.1 (with upgrades) and HTTP/2 with prior
//! knowledge, and on shutdown stop accepting and let open connections finish within the drain period.
//!
//! A new connection's first request head is read here (`server/head.rs`) before a server gets the
//! connection, and the request is admitted from it: a request that has to wait for a pod waits
//! (`server/park.rs`) as a socket and a buffer of its head's size, not as a server connection with
//! its buffers, in the connection's one small task (`server/connection.rs`). Once a pod is chosen
//! (or at once when one has room) the activator's own HTTP/1.1 server (`server/h1.rs`) serves the
//! connection from the bytes read, and the first request carries the outcome reached early
//! ([`Proxy::handle_first`]). The first request that server leaves to hyper (an upgrade, `Expect`, a
//! streamed body, a malformed head) hands the connection to hyper, replaying the bytes not yet
//! served; the HTTP/2 preface goes to hyper at once.

mod connection;
mod h1;
mod head;
mod park;
mod served;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use hyper::{
    server::conn::{http1, http2},
    service::service_fn,
};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;

use crate::{
    proxy::{Early, Proxy},
    settings::Port,
};
use connection::Connection;
use head::Prefixed;

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
        let (stream, _) = tokio::select! {
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
        tokio::spawn(Connection::new(shared, stream, open.clone()));
    }
    drop(listener);
    drop(open);
    if tokio::time::timeout(drain, all_closed.recv()).await.is_err() {
        tracing::warn!(?drain, "drain period passed with connections still open");
    }
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
        served::for_hyper(proxy, port, remote, request, early)
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
        served::for_hyper(Arc::clone(&proxy), port, remote, request, None)
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

/// Connections a data port's kernel queue holds before the activator accepts them: the most Linux
/// allows by default (`net.core.somaxconn`, which caps the figure), as Go's listeners ask for.
///
/// Why not the 128 of `TcpListener::bind` (mio's, after the standard library's): a burst from zero
/// opens its connections all at once, while the activator is busy with the ones before them. When
/// the queue is full the kernel drops a connection's SYN, and the client sends it again only after
/// its initial retransmission timeout, 1 s; the cold-start bench's burst of 1,000 saw 13 such
/// connections answered 88 ms after every other (`docs/benchmarks.md`, session 29).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a port (data, admin or broker) with SO_REUSEADDR, as `TcpListener::bind` does, listening
/// with a queue of [`LISTEN_BACKLOG`] connections.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_connections_waits_in_the_queue_until_accepted() {
        // More connections at once than the 128 that `TcpListener::bind` queues, none accepted yet.
        // With that queue, the kernel drops the SYNs past it and keeps dropping the retries while
        // nothing is accepted, so those connects never finish; with ours, every one does at once.
        const BURST: usize = 300;
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let connects = (0..BURST)
            .map(|_| tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(addr)));
        let streams = futures::future::join_all(connects).await;
        let connected = streams.iter().filter(|s| matches!(s, Ok(Ok(_)))).count();
        assert_eq!(connected, BURST, "connections queued before the first accept");
        // Each is then served in turn.
        let (first, _) = listener.accept().await.expect("accept");
        assert!(first.peer_addr().is_ok());
    }
}
