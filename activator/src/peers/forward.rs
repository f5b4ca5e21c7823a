//! Forwarding a request to the activator that owns its function: one hop to the owner's in-cluster
//! data port, the owner treated like a pod with no concurrency limit. The request is rewritten as the
//! edge would ([`crate::rewrite`] plus the hop marker) and sent with the pods' client
//! ([`crate::upstream`]: pooled HTTP/1.1 keep-alive connections, upgrades on a connection of their own
//! then tunnelled by [`crate::upgrade`], h2c on one multiplexed connection per peer). An owner that
//! cannot be reached before the request went out hands it back, as the client sent it, for local
//! handling; so does one that breaks the connection before answering a request that is safe to send
//! again (an idempotent method with its whole body in hand).

use std::{
    collections::HashMap,
    hash::BuildHasherDefault,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{
    Extensions, HeaderValue, Method, Request, Response, StatusCode, Uri, Version, header, uri::Authority,
};
use http_body::Body as _;
use hyper::upgrade::OnUpgrade;

use tokio::time::{Instant, timeout_at};
use zeroscale_crds::function::Protocol;

use super::{Outcome, PEER_HOP, Peering, Target};
use crate::{
    body::ResponseBody,
    client_body::ClientBody,
    endpoints::Endpoint,
    error::ProxyError,
    headers,
    rewrite::{host_of, set_target},
    upgrade,
    upstream::{
        IdHasher, OutBody, PodBody, PooledConn, SendError, Sent, UpstreamConfig, Upstreams,
        request::is_idempotent,
    },
};

/// Added to the function's total timeout for the forwarding activator's own deadline, so the owner's
/// 504 (its deadline counts from a slightly later arrival) reaches the client rather than ours.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(1);
/// Longest wait for a connection to a peer: activators are a hop apart in one cluster, and a peer
/// that does not accept by then is treated as unreachable (the request is handled locally).
const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a connection to a peer may sit idle in the pool: at most half the peers' header-read
/// timeout (`peer_header_read`, the same setting on every replica), after which the peer closes it.
/// A request written onto a connection as the peer closes it is lost when it cannot be sent again
/// (a POST), so this side must always be the one to close first; half leaves the margin of timer
/// slack and of a request taken out of the pool just before its deadline.
pub fn peer_idle_timeout(pool_idle_timeout: Duration, peer_header_read: Duration) -> Duration {
    pool_idle_timeout.min(peer_header_read / 2)
}

/// Connections to peer activators, through an [`Upstreams`] client like the pods' (a peer is an
/// endpoint with no concurrency limit; h2c goes on one connection per peer, so that a request a peer
/// never got comes back).
pub struct PeerClient {
    upstreams: Upstreams,
    // One endpoint per peer address: it keys the peer's idle connections in `upstreams`. Looked up
    // on every forward, so hashed cheaply (peer addresses are not a client's to choose).
    endpoints: Mutex<HashMap<SocketAddr, Arc<Endpoint>, BuildHasherDefault<IdHasher>>>,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClient").finish_non_exhaustive()
    }
}

impl PeerClient {
    /// A client connecting within `config.connect_timeout`, at most 1 s, whose idle connections
    /// close before peers with header-read timeout `peer_header_read` close them
    /// ([`peer_idle_timeout`]).
    pub fn new(config: UpstreamConfig, peer_header_read: Duration) -> Self {
        let config = UpstreamConfig {
            connect_timeout: config.connect_timeout.min(PEER_CONNECT_TIMEOUT),
            pool_idle_timeout: peer_idle_timeout(config.pool_idle_timeout, peer_header_read),
            // A peer that drains closes its idle connections at once, and its address may come
            // back as another replica: learning from that would leave a needlessly short timeout.
            learn_idle_close: false,
            ..config
        };
        Self {
            upstreams: Upstreams::new(config),
            endpoints: Mutex::default(),
        }
    }

    fn endpoint(&self, peer: SocketAddr) -> Arc<Endpoint> {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            endpoints
                .entry(peer)
                .or_insert_with(|| Arc::new(Endpoint::new(peer))),
        )
    }

    /// Sends a request to `peer` over `protocol` (an upgrade on a connection of its own).
    async fn send(
        &self,
        peer: SocketAddr,
        protocol: Protocol,
        request: Request<OutBody>,
        upgrade: bool,
    ) -> Result<Sent, SendError> {
        match protocol {
            Protocol::H2c => self.upstreams.send_h2c_direct(peer, request).await,
            Protocol::Http1 if upgrade => self.upstreams.send_upgrade(peer, request).await,
            Protocol::Http1 => self.upstreams.send_http1(&self.endpoint(peer), request).await,
        }
    }
}

/// The request back from an attempt that never reached the peer, with the client's own body.
fn unsent(request: Request<OutBody>) -> Option<Request<ClientBody>> {
    let (parts, body) = request.into_parts();
    match body {
        OutBody::Streamed(body) => Some(Request::from_parts(parts, body)),
        OutBody::Buffered(..) => None,
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
        mut request: Request<ClientBody>,
    ) -> Result<Response<ResponseBody>, Box<Request<ClientBody>>> {
        let deadline = Instant::now() + target.limits.timeout + DEADLINE_MARGIN;
        let protocol = target.limits.protocol;
        let upgrade = protocol == Protocol::Http1 && headers::is_upgrade(request.headers());
        let owner = target.owner;
        let function = target.function.display();
        let original = (
            request.uri().clone(),
            request.version(),
            request.headers().clone(),
        );
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        let replay = Replay::of(&request, upgrade);
        self.prepare(&mut request, protocol, owner, remote, upgrade);
        pin(&mut request, &target.function);
        let request = request.map(OutBody::Streamed);
        // At debug, with the answer's below: a request that never comes back (a client timing out with
        // nothing in either activator's access log) shows here whether it went through a hop, to whom.
        let started = Instant::now();
        tracing::debug!(function, %owner, %remote, "forwarding to the owning activator");
        let sent = timeout_at(deadline, self.client.send(owner, protocol, request, upgrade))
            .await
            .map(|r| {
                r.map_err(|e| match e {
                    SendError::NotSent { request, error, .. } => {
                        (request.and_then(|r| unsent(*r)).map(Box::new), error)
                    }
                    SendError::Broken { error, .. } => (None, error),
                })
            });
        let (response, conn) = match sent {
            Ok(Ok(sent)) => sent,
            Ok(Err((Some(unsent), error))) => {
                let error = error.to_string();
                let unsent = *unsent;
                return Err(self.restore(owner, &error, unsent, original, client_upgrade, Outcome::Local));
            }
            // The owner went away with a request that is safe to send again (it is drained with a
            // delay, so this is a crash): handled here, as a pod's broken connection is replayed.
            Ok(Err((None, error))) if let Some(replay) = replay => {
                let error = error.to_string();
                let request = replay.request();
                return Err(self.restore(owner, &error, request, original, None, Outcome::Replayed));
            }
            Ok(Err((None, source))) => {
                self.count(Outcome::Failed);
                // The owner went away with the request (it is drained with a delay, so this is a
                // crash or a network fault): the one 502 of the hop, counted with the others.
                target.function.record_lost(crate::metrics::LOST_PEER_HOP);
                let e = ProxyError::Upstream {
                    function: function.to_string(),
                    source,
                };
                tracing::info!(error = %e, %owner, "forward to the owning activator failed");
                return Ok(e.into_response());
            }
            Err(_) => {
                self.count(Outcome::Failed);
                tracing::info!(function, %owner, "the owning activator did not answer before the deadline");
                return Ok(ProxyError::Timeout(function.to_string()).into_response());
            }
        };
        self.count(Outcome::Forwarded);
        tracing::debug!(
            function,
            %owner,
            status = response.status().as_u16(),
            head_ms = started.elapsed().as_secs_f64() * 1000.0,
            "the owning activator answered"
        );
        Ok(answer(
            function.to_string(),
            response,
            conn,
            client_upgrade,
            deadline,
        ))
    }

    /// Undoes [`Peering::prepare`] for a request to be handled here (`outcome`: it never left, or
    /// it is sent again), so local handling sees it as the client sent it.
    fn restore(
        &self,
        owner: SocketAddr,
        error: &str,
        mut request: Request<ClientBody>,
        (uri, version, headers): (Uri, Version, http::HeaderMap),
        client_upgrade: Option<OnUpgrade>,
        outcome: Outcome,
    ) -> Box<Request<ClientBody>> {
        *request.uri_mut() = uri;
        *request.version_mut() = version;
        *request.headers_mut() = headers;
        if let Some(upgrade) = client_upgrade {
            request.extensions_mut().insert(upgrade);
        }
        if outcome == Outcome::Replayed {
            tracing::info!(%owner, error, "owning activator broke the connection: handling the request (safe to send again) here");
        } else {
            tracing::info!(%owner, error, "owning activator unreachable: handling the request here");
        }
        self.count(outcome);
        Box::new(request)
    }

    /// Rewrites the request for the owner, as the edge: hop-by-hop headers removed, forwarding and
    /// tracing headers added, `Host` kept (set from the authority for HTTP/2 clients), the marker set.
    fn prepare(
        &self,
        request: &mut Request<ClientBody>,
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
            crate::forwarding::Forwarding::new(remote.ip(), host.clone()).add_to(h);
            h.insert(header::HOST, host);
        }
        h.insert(&PEER_HOP, self.marker.clone());
        crate::trace::hop(request);
    }
}

/// Names the revision picked here on the forwarded request ([`super::PEER_REVISION`]).
fn pin<B>(request: &mut Request<B>, revision: &crate::function::FunctionState) {
    let key = revision.key();
    if let Ok(value) = HeaderValue::from_str(&crate::host::key_of(&key.namespace, &key.name)) {
        request.headers_mut().insert(&super::PEER_REVISION, value);
    }
}

/// What is needed to handle a forwarded request here after the owner broke the connection with it:
/// kept only for a request that is safe to send again, an idempotent method whose whole body (or
/// none) is in hand and no upgrade. Its head is restored from the copy every forward keeps.
struct Replay {
    method: Method,
    extensions: Extensions,
    body: Bytes,
}

impl Replay {
    fn of(request: &Request<ClientBody>, upgrade: bool) -> Option<Self> {
        if upgrade || !is_idempotent(request.method()) {
            return None;
        }
        let body = match request.body() {
            ClientBody::Read(body) => body.clone().unwrap_or_default(),
            ClientBody::Hyper(body) if body.is_end_stream() => Bytes::new(),
            ClientBody::Hyper(_) => return None,
        };
        Some(Self {
            method: request.method().clone(),
            extensions: request.extensions().clone(),
            body,
        })
    }

    /// The request to restore (its URI, version and headers are set by [`Peering::restore`]).
    fn request(self) -> Request<ClientBody> {
        let mut request = Request::new(ClientBody::Read(Some(self.body)));
        *request.method_mut() = self.method;
        *request.extensions_mut() = self.extensions;
        request
    }
}

/// The owner's response for the client: a tunnel after `101`, else the streamed body under the
/// forwarding deadline (the owner enforces the function's idle timeout).
fn answer(
    function: String,
    mut response: Response<PodBody>,
    conn: Option<PooledConn>,
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
    response.map(|body| ResponseBody::forwarded(body, deadline, conn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_peer_connections_close_before_the_peer_closes_them() {
        let secs = Duration::from_secs;
        // The peer closes an idle connection after 10 s: ours go after 5, whatever the pods' pool keeps.
        assert_eq!(peer_idle_timeout(secs(90), secs(10)), secs(5));
        assert_eq!(
            peer_idle_timeout(secs(2), secs(10)),
            secs(2),
            "a shorter pool timeout stays"
        );
        assert_eq!(peer_idle_timeout(secs(90), secs(1)), Duration::from_millis(500));
    }

    #[test]
    fn the_client_applies_the_peer_bound() {
        let client = PeerClient::new(UpstreamConfig::default(), Duration::from_secs(10));
        let limits = client.upstreams.pool_limits();
        assert_eq!(limits.idle_timeout, Duration::from_secs(5));
        assert!(!limits.learn_idle_close, "the peers' bound is known, not learned");
    }
}
