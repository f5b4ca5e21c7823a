//! Forwarding a request to the activator that owns its function: one hop to the owner's in-cluster
//! data port, the owner treated like an upstream with no concurrency limit. HTTP/1.1 goes over pooled
//! keep-alive connections, upgrades over a connection of their own (then tunnelled), h2c functions
//! over one multiplexed HTTP/2 connection per peer. The connection is secured before the request is
//! touched, so an owner that cannot be reached hands the request back unchanged for local handling.

use std::{collections::HashMap, net::SocketAddr, sync::Mutex, time::Duration};

use http::{HeaderValue, Request, Response, StatusCode, Uri, Version, header, uri::Authority};
use hyper::{
    body::Incoming,
    client::conn::{http1, http2},
    upgrade::OnUpgrade,
};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::{
    net::TcpStream,
    time::{Instant, timeout_at},
};
use zeroscale_crds::function::Protocol;

use super::{Outcome, PEER_HOP, Peering, Target};
use crate::{
    body::ResponseBody,
    error::ProxyError,
    headers,
    rewrite::{host_of, set_target},
    upgrade,
    upstream::{self, UpstreamConfig, UpstreamError},
};

/// Added to the function's total timeout for the forwarding activator's own deadline, so the owner's
/// 504 (its deadline counts from a slightly later arrival) reaches the client rather than ours.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(1);
/// Longest wait for a connection to a peer: activators are a hop apart in one cluster, and a peer
/// that does not accept by then is treated as unreachable (the request is handled locally).
const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Most idle HTTP/1.1 connections kept per peer.
const MAX_IDLE_PER_PEER: usize = 256;

/// A connection to a peer, ready for one request.
enum Conn {
    Http1 {
        sender: http1::SendRequest<Incoming>,
        pooled: bool,
    },
    H2(http2::SendRequest<Incoming>),
}

/// Connections to peer activators.
#[derive(Default)]
pub struct PeerClient {
    config: UpstreamConfig,
    http1: Mutex<HashMap<SocketAddr, Vec<http1::SendRequest<Incoming>>>>,
    h2: Mutex<HashMap<SocketAddr, http2::SendRequest<Incoming>>>,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClient").finish_non_exhaustive()
    }
}

impl PeerClient {
    /// A client connecting within `config.connect_timeout`, at most 1 s.
    pub fn new(config: UpstreamConfig) -> Self {
        let config = UpstreamConfig {
            connect_timeout: config.connect_timeout.min(PEER_CONNECT_TIMEOUT),
            ..config
        };
        Self {
            config,
            ..Self::default()
        }
    }

    async fn open(&self, peer: SocketAddr) -> Result<TokioIo<TcpStream>, UpstreamError> {
        upstream::open(peer, self.config.connect_timeout)
            .await
            .map(TokioIo::new)
    }

    /// A connection for one request: an idle pooled one when there is one (never for upgrades,
    /// which take the connection over), else a new one.
    async fn connection(
        &self,
        peer: SocketAddr,
        protocol: Protocol,
        upgrade: bool,
    ) -> Result<Conn, UpstreamError> {
        if protocol == Protocol::H2c {
            return self.h2(peer).await.map(Conn::H2);
        }
        if !upgrade && let Some(sender) = self.checkout(peer) {
            return Ok(Conn::Http1 { sender, pooled: true });
        }
        self.fresh_http1(peer).await
    }

    async fn fresh_http1(&self, peer: SocketAddr) -> Result<Conn, UpstreamError> {
        let io = self.open(peer).await?;
        let (sender, conn) = http1::handshake(io).await.map_err(UpstreamError::Http)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "peer connection ended with an error");
            }
        });
        Ok(Conn::Http1 {
            sender,
            pooled: false,
        })
    }

    fn checkout(&self, peer: SocketAddr) -> Option<http1::SendRequest<Incoming>> {
        let mut pools = self.http1.lock().unwrap_or_else(|e| e.into_inner());
        let pool = pools.get_mut(&peer)?;
        pool.retain(|s| !s.is_closed());
        // Not ready = its last response body is still being read.
        let i = pool.iter().position(http1::SendRequest::is_ready)?;
        Some(pool.swap_remove(i))
    }

    fn checkin(&self, peer: SocketAddr, sender: http1::SendRequest<Incoming>) {
        let mut pools = self.http1.lock().unwrap_or_else(|e| e.into_inner());
        let pool = pools.entry(peer).or_default();
        if pool.len() < MAX_IDLE_PER_PEER {
            pool.push(sender);
        }
    }

    async fn h2(&self, peer: SocketAddr) -> Result<http2::SendRequest<Incoming>, UpstreamError> {
        if let Some(sender) = self
            .h2
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&peer)
            .filter(|s| !s.is_closed())
        {
            return Ok(sender.clone());
        }
        let io = self.open(peer).await?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(UpstreamError::Http)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "peer h2c connection ended with an error");
            }
        });
        self.h2
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(peer, sender.clone());
        Ok(sender)
    }

    /// Sends on `conn`; the request comes back when it never left.
    async fn send(
        &self,
        peer: SocketAddr,
        conn: Conn,
        request: Request<Incoming>,
    ) -> Result<Response<Incoming>, (Option<Request<Incoming>>, hyper::Error, bool)> {
        match conn {
            Conn::Http1 { mut sender, pooled } => match sender.try_send_request(request).await {
                Ok(response) => {
                    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                        self.checkin(peer, sender);
                    }
                    Ok(response)
                }
                Err(mut e) => Err((e.take_message(), e.into_error(), pooled)),
            },
            Conn::H2(mut sender) => sender
                .try_send_request(request)
                .await
                .map_err(|mut e| (e.take_message(), e.into_error(), true)),
        }
    }
}

impl Peering {
    /// Forwards `request` to `target`'s owner and answers with the owner's response. When the owner
    /// cannot be reached before the request went out, the request comes back (unchanged) to be
    /// handled here.
    pub async fn forward(
        &self,
        target: Target,
        remote: SocketAddr,
        mut request: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, Box<Request<Incoming>>> {
        let deadline = Instant::now() + target.limits.timeout + DEADLINE_MARGIN;
        let protocol = target.limits.protocol;
        let upgrade = protocol == Protocol::Http1 && headers::is_upgrade(request.headers());
        let owner = target.owner;
        let function = target.function.display();
        let conn = match timeout_at(deadline, self.client.connection(owner, protocol, upgrade)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(error)) => return Err(self.fall_back(owner, &error.to_string(), request)),
            Err(_) => return Err(self.fall_back(owner, "connect timed out", request)),
        };
        let original = (
            request.uri().clone(),
            request.version(),
            request.headers().clone(),
        );
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        self.prepare(&mut request, protocol, owner, remote, upgrade);
        let mut conn = Some(conn);
        let response = loop {
            let attempt = match conn.take() {
                Some(c) => c,
                // A pooled connection the owner had closed: once more on a new one.
                None => match timeout_at(deadline, self.client.fresh_http1(owner)).await {
                    Ok(Ok(c)) => c,
                    _ => return Err(self.restore(owner, request, original, client_upgrade)),
                },
            };
            match timeout_at(deadline, self.client.send(owner, attempt, request)).await {
                Ok(Ok(response)) => break response,
                Ok(Err((Some(unsent), _, true))) if protocol == Protocol::Http1 => request = unsent,
                Ok(Err((Some(unsent), _, _))) => {
                    return Err(self.restore(owner, unsent, original, client_upgrade));
                }
                Ok(Err((None, error, _))) => {
                    self.count(Outcome::Failed);
                    // The owner went away with the request (it is drained with a delay, so this is
                    // a crash or a network fault): the one 502 of the hop, counted with the others.
                    target.function.record_lost(crate::metrics::LOST_PEER_HOP);
                    let source = UpstreamError::Http(error);
                    let e = ProxyError::Upstream {
                        function: function.to_string(),
                        source,
                    };
                    tracing::info!(error = %e, %owner, "forward to the owning activator failed");
                    return Ok(e.into_response());
                }
                Err(_) => {
                    self.count(Outcome::Failed);
                    return Ok(ProxyError::Timeout(function.to_string()).into_response());
                }
            }
        };
        self.count(Outcome::Forwarded);
        Ok(answer(function.to_string(), response, client_upgrade, deadline))
    }

    fn fall_back(
        &self,
        owner: SocketAddr,
        error: &str,
        request: Request<Incoming>,
    ) -> Box<Request<Incoming>> {
        tracing::info!(%owner, error, "owning activator unreachable: handling the request here");
        self.count(Outcome::Local);
        Box::new(request)
    }

    /// Undoes [`Peering::prepare`] for a request that never left, so local handling sees it as the
    /// client sent it.
    fn restore(
        &self,
        owner: SocketAddr,
        mut request: Request<Incoming>,
        (uri, version, headers): (Uri, Version, http::HeaderMap),
        client_upgrade: Option<OnUpgrade>,
    ) -> Box<Request<Incoming>> {
        *request.uri_mut() = uri;
        *request.version_mut() = version;
        *request.headers_mut() = headers;
        if let Some(upgrade) = client_upgrade {
            request.extensions_mut().insert(upgrade);
        }
        self.fall_back(owner, "connection closed before the request was sent", request)
    }

    /// Rewrites the request for the owner, as the edge: hop-by-hop headers removed, forwarding and
    /// tracing headers added, `Host` kept (set from the authority for HTTP/2 clients), the marker set.
    fn prepare(
        &self,
        request: &mut Request<Incoming>,
        protocol: Protocol,
        owner: SocketAddr,
        remote: SocketAddr,
        upgrade: bool,
    ) {
        let host = host_of(request).ok().and_then(|h| HeaderValue::from_str(h).ok());
        // HTTP/2 needs an absolute target (the owner's address); HTTP/1.1 gets origin-form.
        let h2 = protocol == Protocol::H2c;
        set_target(
            request,
            h2.then(|| Authority::try_from(owner.to_string()).ok()).flatten(),
        );
        *request.version_mut() = if h2 { Version::HTTP_2 } else { Version::HTTP_11 };
        let h = request.headers_mut();
        headers::strip_hop_by_hop(h, upgrade);
        if let Some(host) = host {
            headers::add_forwarding(h, remote.ip(), &host);
            h.insert(header::HOST, host);
        }
        headers::ensure_ids(h);
        h.insert(&PEER_HOP, self.marker.clone());
    }
}

/// The owner's response for the client: a tunnel after `101`, else the streamed body under the
/// forwarding deadline (the owner enforces the function's idle timeout).
fn answer(
    function: String,
    mut response: Response<Incoming>,
    client_upgrade: Option<OnUpgrade>,
    deadline: Instant,
) -> Response<ResponseBody> {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client) = client_upgrade
    {
        let owner = hyper::upgrade::on(&mut response);
        upgrade::spawn_tunnel(function, client, owner, ());
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, ResponseBody::empty());
    }
    headers::strip_hop_by_hop(response.headers_mut(), false);
    response.map(|body| ResponseBody::forwarded(body, deadline))
}
