//! The listener: gRPC over h2c (HTTP/2 with prior knowledge, no TLS) with the health service, and a
//! graceful drain when the shutdown future completes.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::proto::echo_server::EchoServer;
use crate::service::EchoService;

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
    /// The gRPC server failed.
    #[error("grpc server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// How a server run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Every call in flight finished.
    Complete,
    /// The drain timeout passed with calls still open; they were cut.
    TimedOut,
}

/// Binds `0.0.0.0:<port>`.
pub async fn bind(port: u16) -> Result<TcpListener, ServerError> {
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Completes on the first SIGTERM (what the kubelet sends) or SIGINT.
pub fn termination() -> Result<impl Future<Output = ()> + Send + 'static, ServerError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(ServerError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServerError::Signal)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// Serves `service` and `grpc.health.v1.Health` (`SERVING` for `""` and `zeroscale.echo.v1.Echo`)
/// on `listener` until `shutdown` completes. Then it reports `NOT_SERVING`, stops accepting
/// connections, sends GOAWAY on the open ones and waits up to `drain_timeout` for the calls in flight
/// (a `Chat` stream lasts until its client ends it).
pub async fn serve(
    listener: TcpListener,
    service: EchoService,
    drain_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<Drain, ServerError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<EchoServer<EchoService>>().await;
    reporter.set_service_status("", ServingStatus::Serving).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = Server::builder()
        .add_service(health)
        .add_service(EchoServer::new(service))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            // A dropped sender also stops the server: either way the drain has begun.
            let _ = stopped.await;
        });
    tokio::pin!(server);
    tokio::select! {
        ended = &mut server => return ended.map(|()| Drain::Complete).map_err(ServerError::from),
        () = shutdown => {}
    }
    reporter.set_not_serving::<EchoServer<EchoService>>().await;
    reporter.set_service_status("", ServingStatus::NotServing).await;
    let _ = stop.send(());
    match tokio::time::timeout(drain_timeout, server).await {
        Ok(ended) => ended.map(|()| Drain::Complete).map_err(ServerError::from),
        Err(_) => Ok(Drain::TimedOut),
    }
}
