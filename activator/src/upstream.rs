//! Sending requests to pods: HTTP/1.1 on keep-alive connections pooled per endpoint and driven by the
//! request's own task (see `upstream/pool.rs`), written and read directly when the body is kept whole
//! (`upstream/h1.rs`) and through hyper's client when it is streamed; upgrades on a connection of their
//! own, and HTTP/2 with prior knowledge for `protocol: h2c` functions (hyper-util's pooled client:
//! one multiplexed connection per pod).
//!
//! A request that was never written to a pod (the connection was refused, timed out, or closed
//! before the request went out) is handed back to the caller, which may send it elsewhere; one whose
//! connection broke after it went out is reported as such, so the caller can replay it when that is
//! safe (see [`request`]).

pub mod h1;
mod h2;
mod idle_pool;
mod pod_body;
mod pool;
mod pools;
pub mod request;
mod send_h1;

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use http::{Request, Response};
use hyper::client::conn::http1;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo, TokioTimer},
};
use tokio::net::TcpStream;

pub use idle_pool::{IdlePool, PoolLimits};
pub use pod_body::{PodBody, PodBodyError};
pub use pool::{CountingIo, UpstreamConn};
pub(crate) use pools::IdHasher;
pub use pools::{PooledConn, Pools, SWEEP_INTERVAL};
pub use request::{OutBody, Outgoing};

use crate::endpoints::Endpoint;

/// The h2c client: pooled, sends the client's own body through unchanged (or a kept copy).
pub type H2cClient = Client<HttpConnector, OutBody>;

/// Settings of the upstream connections.
#[derive(Clone, Copy, Debug)]
pub struct UpstreamConfig {
    /// How long to try to connect to a pod.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Most idle connections kept per pod.
    pub pool_max_idle_per_host: usize,
    /// Whether each pod's pool learns the pod's own idle close (`idle_pool.rs`); off for peer
    /// activators, whose close is known and bounded from the start.
    pub learn_idle_close: bool,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 1024,
            learn_idle_close: true,
        }
    }
}

/// Why a request to a pod failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be opened.
    #[error("connect to {address}: {source}")]
    Connect {
        /// The pod's address.
        address: SocketAddr,
        /// What the socket reported.
        #[source]
        source: io::Error,
    },
    /// Opening a connection took longer than the connect timeout.
    #[error("connect to {0}: timed out")]
    ConnectTimeout(SocketAddr),
    /// The HTTP/1.1 exchange failed (hyper's client).
    #[error("{0}")]
    Http(#[source] hyper::Error),
    /// The HTTP/1.1 exchange failed (a raw connection).
    #[error("{0}")]
    H1(#[source] h1::H1Error),
    /// The h2c client failed.
    #[error("{0}")]
    H2c(#[source] hyper_util::client::legacy::Error),
}

/// How sending a request failed.
#[derive(Debug)]
pub enum SendError {
    /// Nothing of the request reached the pod: it may go elsewhere, whatever its method.
    NotSent {
        /// The request when it came back unchanged (a streamed body can then still be sent); `None`
        /// when the client library consumed it.
        request: Option<Box<Request<OutBody>>>,
        /// Whether the pod itself failed (refused a new connection, or broke one), rather than an
        /// idle pooled connection having gone stale.
        pod_failed: bool,
        /// What went wrong.
        error: UpstreamError,
    },
    /// The connection broke after some of the request went out and before the response head: the
    /// pod may have seen it, so only an idempotent request with a kept body may be sent again.
    Broken {
        /// Whether it was a new connection (so the pod itself is failing) rather than a pooled one
        /// the pod may have closed while shutting down.
        fresh: bool,
        /// What went wrong.
        error: UpstreamError,
    },
}

/// A response from a pod, and the way back to its pool of the HTTP/1.1 connection it came on (none
/// for h2c and upgrades, whose connections run on tasks of their own).
pub type Sent = (Response<PodBody>, Option<PooledConn>);

/// Connections to pods, for both protocols.
#[derive(Clone, Debug)]
pub struct Upstreams {
    config: UpstreamConfig,
    h2c: H2cClient,
    direct_h2: Arc<h2::DirectH2>,
    pools: Pools,
}

impl Upstreams {
    /// Builds the h2c pool; HTTP/1.1 pools are made per endpoint on first use.
    pub fn new(config: UpstreamConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.connect_timeout));
        let h2c = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .http2_only(true)
            .build(connector);
        let limits = PoolLimits {
            idle_timeout: config.pool_idle_timeout,
            max_idle: config.pool_max_idle_per_host,
            learn_idle_close: config.learn_idle_close,
        };
        Self {
            config,
            h2c,
            direct_h2: Arc::default(),
            pools: Pools::new(limits),
        }
    }

    /// Closes the idle HTTP/1.1 connections to `endpoint` (one broke: the pod is likely going away).
    pub fn clear_idle(&self, endpoint: &Endpoint) {
        self.pools.clear(endpoint);
    }

    /// Idle HTTP/1.1 connections to `endpoint` now.
    pub fn idle(&self, endpoint: &Endpoint) -> usize {
        self.pools.idle(endpoint)
    }

    /// The idle-pool limits for HTTP/1.1 connections.
    pub fn pool_limits(&self) -> PoolLimits {
        self.pools.limits()
    }

    /// Sends an h2c request (absolute URI on the pod's address).
    pub async fn send_h2c(&self, request: Request<OutBody>) -> Result<Sent, SendError> {
        self.h2c
            .request(request)
            .await
            .map(|r| (r.map(PodBody::Hyper), None))
            .map_err(|e| {
                if e.is_connect() {
                    SendError::NotSent {
                        request: None,
                        pod_failed: true,
                        error: UpstreamError::H2c(e),
                    }
                } else {
                    SendError::Broken {
                        fresh: false,
                        error: UpstreamError::H2c(e),
                    }
                }
            })
    }

    /// Sends an h2c request (absolute URI) on the one HTTP/2 connection kept to `address`. Unlike
    /// [`Upstreams::send_h2c`], a request that never went out comes back in [`SendError::NotSent`].
    pub async fn send_h2c_direct(
        &self,
        address: SocketAddr,
        request: Request<OutBody>,
    ) -> Result<Sent, SendError> {
        let mut sender = match self.direct_h2.sender(address, self.config.connect_timeout).await {
            Ok(sender) => sender,
            Err(error) => {
                return Err(SendError::NotSent {
                    request: Some(Box::new(request)),
                    pod_failed: true,
                    error,
                });
            }
        };
        match sender.try_send_request(request).await {
            Ok(response) => Ok((response.map(PodBody::Hyper), None)),
            Err(e) => Err(failed_send(e, false, false)),
        }
    }

    /// Sends an HTTP/1.1 upgrade request on a connection of its own, which runs on its own task so
    /// it can hand its IO over to the tunnel after `101`.
    pub async fn send_upgrade(
        &self,
        address: SocketAddr,
        request: Request<OutBody>,
    ) -> Result<Sent, SendError> {
        let stream = match self.open(address).await {
            Ok(s) => s,
            Err(error) => {
                return Err(SendError::NotSent {
                    request: Some(Box::new(request)),
                    pod_failed: true,
                    error,
                });
            }
        };
        let (mut sender, conn) = match http1::handshake(TokioIo::new(stream)).await {
            Ok(handshake) => handshake,
            Err(e) => {
                return Err(SendError::NotSent {
                    request: Some(Box::new(request)),
                    pod_failed: true,
                    error: UpstreamError::Http(e),
                });
            }
        };
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upgrade connection ended with an error");
            }
        });
        match sender.try_send_request(request).await {
            Ok(response) => Ok((response.map(PodBody::Hyper), None)),
            Err(e) => Err(failed_send(e, true, true)),
        }
    }

    async fn open(&self, address: SocketAddr) -> Result<TcpStream, UpstreamError> {
        open(address, self.config.connect_timeout).await
    }
}

/// The [`SendError`] for a request hyper's client failed to send: the request back when it never
/// left, else `Broken` (it may have reached the other side).
fn failed_send(
    mut e: hyper::client::conn::TrySendError<Request<OutBody>>,
    pod_failed: bool,
    fresh: bool,
) -> SendError {
    match e.take_message() {
        Some(r) => SendError::NotSent {
            request: Some(Box::new(r)),
            pod_failed,
            error: UpstreamError::Http(e.into_error()),
        },
        None => SendError::Broken {
            fresh,
            error: UpstreamError::Http(e.into_error()),
        },
    }
}

/// Opens a TCP connection to `address` (a pod, or a peer activator) within `timeout`.
pub async fn open(address: SocketAddr, timeout: Duration) -> Result<TcpStream, UpstreamError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| UpstreamError::ConnectTimeout(address))?
        .map_err(|source| UpstreamError::Connect { address, source })?;
    // Small requests and responses go out at once rather than waiting for Nagle.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
