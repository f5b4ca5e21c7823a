//! The listener: HTTP/1.1 and h2c on one port (auto-detected), graceful shutdown on SIGTERM/SIGINT.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::handler::Echo;

/// How long in-flight requests may take to finish after SIGTERM: the longest `timeoutSeconds` a
/// Function can have. On Kubernetes the pod's grace period (the operator sets it to the `preStop` sleep
/// plus `timeoutSeconds`) is the real bound; this one only stops a stuck process run by hand.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(3600);

/// Errors of the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signal(#[source] std::io::Error),
}

/// Binds `0.0.0.0:<port>`.
pub async fn bind(config: &Config) -> Result<TcpListener, ServerError> {
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port));
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Serves until SIGTERM or SIGINT, then stops accepting and waits (up to [`DRAIN_TIMEOUT`]) for the
/// requests in flight to finish.
pub async fn serve(listener: TcpListener, config: Config) -> Result<(), ServerError> {
    let echo = Echo::new(config);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(ServerError::Signal)?;
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    continue;
                }
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let _ = stream.set_nodelay(true);
        let echo = echo.clone();
        let service = service_fn(move |req| {
            let echo = echo.clone();
            async move { Ok::<_, std::convert::Infallible>(echo.handle(req).await) }
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    eprintln!(
        "shutting down: waiting for {} request(s) in flight",
        echo.in_flight.current()
    );
    // Done when every connection has closed, or when no request is in flight: an idle kept-alive
    // connection (a client's pool, a connection that never sent a byte) would otherwise hold the pod
    // until its grace period ends, although nothing is left to finish.
    let in_flight = echo.in_flight.clone();
    let requests_done = async move {
        while in_flight.current() > 0 {
            tokio::time::sleep(DRAIN_POLL).await;
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        tokio::select! {
            () = graceful.shutdown() => {}
            () = requests_done => {}
        }
    })
    .await;
    Ok(())
}

/// How often the drain looks at the number of requests in flight.
const DRAIN_POLL: Duration = Duration::from_millis(50);
