//! The request path: route by host, admit into the function (at once or after waiting in its queue),
//! forward to the chosen pod within the deadlines, and stream the answer back.

use std::{convert::Infallible, net::SocketAddr, pin::Pin, sync::Arc};

use http::{
    HeaderValue, Request, Response, StatusCode, Uri, Version, header,
    uri::{Authority, Scheme},
};
use hyper::body::Incoming;
use tokio::time::{Instant, timeout_at};
use zeroscale_crds::function::Protocol;

use crate::{
    body::ResponseBody,
    error::ProxyError,
    function::FunctionState,
    headers,
    host::{Domains, HostError},
    lease::{Admission, Lease},
    metrics::Metrics,
    peers::{self, Peering},
    queue::{parked_head_bytes, parked_request_bytes},
    settings::Port,
    table::RoutingTable,
    upgrade,
    upstream::{OutBody, Outgoing, SendError, Sent, Upstreams},
};

pub use crate::metrics::{
    LOST_BEFORE_RESPONSE, LOST_MID_RESPONSE, LOST_PEER_HOP, RETRY_NOT_SENT, RETRY_POD_GONE, RETRY_REPLAYED,
};
/// Most times one request that may have reached a pod is sent again (a request that kills every pod
/// it reaches must not go through all of them).
const MAX_REPLAYS: u32 = 3;

/// The activator's request handler, shared by every connection.
#[derive(Debug)]
pub struct Proxy {
    table: Arc<RoutingTable>,
    domains: Domains,
    upstreams: Upstreams,
    metrics: Arc<Metrics>,
    peers: Option<Arc<Peering>>,
}

/// Who still has to count an error that happened before a lease.
#[derive(Debug)]
enum Counted {
    /// No function was found: count it unlabelled.
    Unrouted,
    /// Count it on this function.
    ByFunction(Arc<FunctionState>),
    /// The function counted it when it answered the waiter.
    Already,
}

/// An error before a lease, with who counts it.
type Rejection = (Counted, ProxyError);

impl Proxy {
    /// A handler routing over `table`.
    pub fn new(
        table: Arc<RoutingTable>,
        domains: Domains,
        upstreams: Upstreams,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            table,
            domains,
            upstreams,
            metrics,
            peers: None,
        }
    }

    /// Forwards requests for functions another activator owns to it (see [`crate::peers`]).
    pub fn with_peers(mut self, peers: Arc<Peering>) -> Self {
        self.peers = Some(peers);
        self
    }

    /// The forward of `request` to the activator owning its function, when that is another one;
    /// else the request back. Boxed: the forwarding state is only allocated for such requests.
    // The request comes back unboxed: boxing it would cost every local request an allocation.
    #[allow(clippy::type_complexity, clippy::result_large_err)]
    fn to_peer(
        &self,
        port: Port,
        remote: SocketAddr,
        request: Request<Incoming>,
    ) -> Result<
        Pin<Box<impl Future<Output = Result<Response<ResponseBody>, Box<Request<Incoming>>>> + '_>>,
        Request<Incoming>,
    > {
        let Some(peers) = self.peers.as_deref() else {
            return Err(request);
        };
        let hop_from = peers::has_hop(request.headers()).then_some(remote);
        let target = host_of(&request)
            .ok()
            .and_then(|h| peers.target(&self.table, &self.domains, port, h, hop_from));
        match target {
            Some(target) => Ok(Box::pin(peers.forward(target, remote, request))),
            None => Err(request),
        }
    }

    /// The peer owning the request's function, when that is another activator.
    fn peer_target(
        &self,
        port: Port,
        host: &str,
        hop_from: Option<SocketAddr>,
    ) -> Option<(&Peering, peers::Target)> {
        let peers = self.peers.as_deref()?;
        Some((
            peers,
            peers.target(&self.table, &self.domains, port, host, hop_from)?,
        ))
    }

    /// Handles one request that came in on `port` from `remote`. Never fails: errors become responses.
    pub async fn handle(
        self: Arc<Self>,
        port: Port,
        remote: SocketAddr,
        mut request: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, Infallible> {
        // Only a box pointer lives across this await, and the request comes back into the same
        // binding, so the future of a parked request does not grow.
        'peer: {
            let forward = match self.to_peer(port, remote, request) {
                Ok(forward) => forward,
                Err(local) => {
                    request = local;
                    break 'peer;
                }
            };
            match forward.await {
                Ok(response) => return Ok(response),
                Err(returned) => request = *returned,
            }
        }
        let arrived = Instant::now();
        let admitted = self.admit(port, &request, arrived);
        let response = match wait_for_lease(admitted, arrived).await {
            // Boxed so a parked request's future stays small: the forwarding state is only
            // allocated once a pod has been chosen (one small allocation on the warm path).
            Ok(lease) => Box::pin(self.forward(lease, remote, request, arrived)).await,
            Err((counted, error)) => self.reject(counted, error),
        };
        Ok(response)
    }

    fn reject(&self, counted: Counted, error: ProxyError) -> Response<ResponseBody> {
        match counted {
            Counted::ByFunction(f) => f.record_error(&error),
            Counted::Unrouted => self.metrics.count_unrouted(error.status().as_u16()),
            Counted::Already => {}
        }
        // Logged with the request id by `error::with_request_id`.
        error.into_response()
    }

    /// Admits the first request of a new HTTP/1.1 connection from its head alone (`host` and the
    /// head's size) and waits for its pod, before hyper has read the request: see
    /// [`crate::server`]. The outcome is handed to [`Proxy::handle_first`] with the request.
    pub async fn admit_early(&self, port: Port, host: String, head_bytes: usize) -> Early {
        let arrived = Instant::now();
        if self.peer_target(port, &host, None).is_some() {
            // Another activator owns the function: [`Proxy::handle`] forwards it once it is read.
            return Early {
                host,
                arrived,
                outcome: None,
            };
        }
        let admitted = self.admit_host(port, &host, || parked_head_bytes(head_bytes), arrived);
        let outcome = Some(wait_for_lease(admitted, arrived).await);
        Early {
            host,
            arrived,
            outcome,
        }
    }

    /// Handles the request an [`Early`] outcome was reached for, or, when its `Host` turns out to be
    /// another than the one read early, handles it afresh.
    pub async fn handle_first(
        self: Arc<Self>,
        port: Port,
        remote: SocketAddr,
        request: Request<Incoming>,
        mut early: Early,
    ) -> Result<Response<ResponseBody>, Infallible> {
        if host_of(&request).ok() != Some(early.host.as_str()) {
            return self.handle(port, remote, request).await;
        }
        let response = match early.outcome.take() {
            Some(Ok(lease)) => Box::pin(self.forward(lease, remote, request, early.arrived)).await,
            Some(Err((counted, error))) => self.reject(counted, error),
            None => return self.handle(port, remote, request).await,
        };
        Ok(response)
    }

    fn admit(
        &self,
        port: Port,
        request: &Request<Incoming>,
        arrived: Instant,
    ) -> Result<(Arc<FunctionState>, Admission), Rejection> {
        let host = host_of(request).map_err(|e| (Counted::Unrouted, e.into()))?;
        self.admit_host(port, host, || parked_request_bytes(request), arrived)
    }

    fn admit_host(
        &self,
        port: Port,
        host: &str,
        bytes: impl FnOnce() -> usize,
        arrived: Instant,
    ) -> Result<(Arc<FunctionState>, Admission), Rejection> {
        let key = self
            .domains
            .route_key(host)
            .map_err(|e| (Counted::Unrouted, e.into()))?;
        let function = key
            .and_then(|k| self.table.lookup(&k))
            .ok_or_else(|| (Counted::Unrouted, ProxyError::UnknownFunction(host.to_string())))?;
        let admission = function
            .admit(port, bytes, arrived)
            .map_err(|e| (Counted::ByFunction(Arc::clone(&function)), e))?;
        Ok((function, admission))
    }

    async fn forward(
        &self,
        mut lease: Lease,
        remote: SocketAddr,
        mut request: Request<Incoming>,
        arrived: Instant,
    ) -> Response<ResponseBody> {
        let protocol = lease.limits().protocol;
        let upgrade = headers::is_upgrade(request.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        // A hop from a peer already carries the forwarding headers the edge added.
        let peer_hop = self
            .peers
            .as_ref()
            .is_some_and(|p| p.take_hop(request.headers_mut(), remote));
        let host = host_of(&request)
            .ok()
            .filter(|_| !peer_hop)
            .and_then(|h| HeaderValue::from_str(h).ok());
        prepare(&mut request, protocol, remote, host, upgrade);
        let limits = lease.limits();
        let head_deadline = arrived + limits.timeout.min(limits.response_start_timeout);
        // A small body is read now, so the request can be sent again if its pod goes away.
        let mut outgoing = match timeout_at(head_deadline, Outgoing::read(request)).await {
            Ok(Ok(outgoing)) => outgoing,
            Ok(Err(error)) => {
                let function = lease.function().display().to_string();
                tracing::info!(function, error = %error, "request body could not be read");
                return fail(lease, ProxyError::RequestBody(function));
            }
            Err(_) => {
                let e = head_timeout(&lease);
                return fail(lease, e);
            }
        };
        let mut replays = 0;
        // Sent; or sent elsewhere when the pod went away before it answered and that is safe, as long
        // as the deadline allows.
        let (mut response, conn) = loop {
            let limits = lease.limits();
            let head_deadline = arrived + limits.timeout.min(limits.response_start_timeout);
            let (reason, pod_failed) = if lease.endpoint().is_retired() {
                // The pod left rotation (terminating, gone) after it was picked: nothing went out yet.
                (RETRY_POD_GONE, false)
            } else {
                let Some(attempt) = outgoing.attempt() else {
                    return lose(lease, &outgoing, "its body was already sent".into());
                };
                let sent = timeout_at(head_deadline, self.send(&lease, protocol, attempt, upgrade)).await;
                match sent {
                    Ok(Ok(sent)) => break sent,
                    Ok(Err(SendError::NotSent {
                        request,
                        pod_failed,
                        error,
                    })) => {
                        if let Some(request) = request {
                            outgoing.unsent(*request);
                        }
                        if !outgoing.can_send() {
                            return lose(lease, &outgoing, error.to_string());
                        }
                        tracing::info!(
                            function = lease.function().display(),
                            address = %lease.endpoint().address,
                            error = %error,
                            "the request did not reach the pod: trying again"
                        );
                        (RETRY_NOT_SENT, pod_failed)
                    }
                    Ok(Err(SendError::Broken { fresh, error })) => {
                        if !outgoing.replayable() || replays >= MAX_REPLAYS {
                            return lose(lease, &outgoing, error.to_string());
                        }
                        replays += 1;
                        // The pod closed a connection it had kept alive: it is most likely shutting
                        // down, and so are the others it keeps.
                        self.upstreams.clear_idle(lease.endpoint());
                        tracing::info!(
                            function = lease.function().display(),
                            address = %lease.endpoint().address,
                            error = %error,
                            "the pod's connection broke before it answered: sending the request again"
                        );
                        (RETRY_REPLAYED, fresh)
                    }
                    Err(_) => {
                        let e = head_timeout(&lease);
                        return fail(lease, e);
                    }
                }
            };
            let state = Arc::clone(lease.function());
            state.record_retry(reason);
            let admitted = state
                .retry(lease, pod_failed, outgoing.parked_bytes())
                .map(|a| (Arc::clone(&state), a))
                .map_err(|e| (Counted::ByFunction(Arc::clone(&state)), e));
            lease = match wait_for_lease(admitted, arrived).await {
                Ok(lease) => lease,
                Err((counted, error)) => return self.reject(counted, error),
            };
        };
        let limits = lease.limits();
        lease.set_status(response.status().as_u16());
        if response.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(client_upgrade) = client_upgrade
        {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            upgrade::spawn_tunnel(client_upgrade, upstream_upgrade, lease);
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, ResponseBody::empty());
        }
        headers::strip_hop_by_hop(response.headers_mut(), false);
        let total_deadline = arrived + limits.timeout;
        response.map(|body| ResponseBody::upstream(body, lease, total_deadline, limits.idle_timeout, conn))
    }

    /// Sends `request` to the lease's pod over `protocol`.
    async fn send(
        &self,
        lease: &Lease,
        protocol: Protocol,
        mut request: Request<OutBody>,
        upgrade: bool,
    ) -> Result<Sent, SendError> {
        let endpoint = lease.endpoint();
        match protocol {
            Protocol::H2c => {
                // The h2c pool keys on the URI's authority: the pod's address.
                set_target(&mut request, Some(endpoint.authority.clone()));
                self.upstreams.send_h2c(request).await
            }
            Protocol::Http1 if upgrade => self.upstreams.send_upgrade(endpoint.address, request).await,
            Protocol::Http1 => self.upstreams.send_http1(endpoint, request).await,
        }
    }
}

/// A first request admitted (and possibly parked) from its head alone, before hyper read it.
#[derive(Debug)]
pub struct Early {
    host: String,
    arrived: Instant,
    outcome: Option<Result<Lease, Rejection>>,
}

impl Drop for Early {
    fn drop(&mut self) {
        // hyper rejected the head it re-read, or the client went away: the pod was never asked.
        if let Some(Ok(lease)) = self.outcome.take() {
            lease.unused();
        }
    }
}

/// Waits in the queue when admission said so, within the function's total deadline.
async fn wait_for_lease(
    admitted: Result<(Arc<FunctionState>, Admission), Rejection>,
    arrived: Instant,
) -> Result<Lease, Rejection> {
    let (function, admission) = admitted?;
    match admission {
        Admission::Go(lease) => Ok(lease),
        Admission::Wait(mut ticket) => {
            let deadline = arrived + ticket.limits().timeout;
            match timeout_at(deadline, ticket.wait()).await {
                Ok(Ok(lease)) => Ok(lease),
                // Errors handed to waiters were already counted by the function.
                Ok(Err(e)) => Err((Counted::Already, e)),
                Err(_) => {
                    // Leave the queue before counting, so the depth gauge is right at once.
                    drop(ticket);
                    let e = ProxyError::Timeout(function.display().to_string());
                    Err((Counted::ByFunction(function), e))
                }
            }
        }
    }
}

/// The 504 for a response head that did not come in time.
fn head_timeout(lease: &Lease) -> ProxyError {
    let limits = lease.limits();
    let function = lease.function().display().to_string();
    if limits.response_start_timeout < limits.timeout {
        ProxyError::ResponseStartTimeout(function)
    } else {
        ProxyError::Timeout(function)
    }
}

/// The 502 for a request whose pod went away with it when it could not be sent again; `detail`
/// (which may name the pod) goes to the log only.
fn lose(lease: Lease, outgoing: &Outgoing, detail: String) -> Response<ResponseBody> {
    let request_id = outgoing
        .head()
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let function = lease.function().display().to_string();
    lease.function().record_lost(LOST_BEFORE_RESPONSE);
    tracing::warn!(
        function,
        request_id,
        address = %lease.endpoint().address,
        method = %outgoing.head().method,
        error = detail,
        "the pod went away with a request that cannot be sent again (not idempotent, or its body was streamed)"
    );
    let kind = "its pod went away before answering, and it cannot be sent again";
    fail(lease, ProxyError::Lost { function, kind })
}

fn fail(mut lease: Lease, error: ProxyError) -> Response<ResponseBody> {
    // Logged with the request id by `error::with_request_id`.
    lease.set_status(error.status().as_u16());
    error.into_response()
}

/// The request's host: the `Host` header, else the target's authority (HTTP/2 `:authority`).
fn host_of<B>(request: &Request<B>) -> Result<&str, HostError> {
    match request.headers().get(header::HOST) {
        Some(v) => v
            .to_str()
            .map_err(|_| HostError::Invalid(String::from_utf8_lossy(v.as_bytes()).into_owned())),
        None => request
            .uri()
            .authority()
            .map(|a| a.as_str())
            .ok_or(HostError::Missing),
    }
}

/// Rewrites the request for the pod: origin-form target (HTTP/1.1; h2c sets the pod's address per
/// attempt), the right HTTP version, hop-by-hop headers removed, forwarding and tracing headers added.
/// The client's `Host` is kept.
fn prepare(
    request: &mut Request<Incoming>,
    protocol: Protocol,
    remote: SocketAddr,
    host: Option<HeaderValue>,
    upgrade: bool,
) {
    if request.uri().scheme().is_some() || request.uri().path_and_query().is_none() {
        // Absolute-form from the client (or no path): the pod gets origin-form, `Host` names the host.
        set_target(request, None);
    }
    *request.version_mut() = match protocol {
        Protocol::Http1 => Version::HTTP_11,
        Protocol::H2c => Version::HTTP_2,
    };
    let h = request.headers_mut();
    headers::strip_hop_by_hop(h, upgrade && protocol == Protocol::Http1);
    if let Some(host) = host {
        headers::add_forwarding(h, remote.ip(), &host);
        if !h.contains_key(header::HOST) {
            h.insert(header::HOST, host);
        }
    }
    headers::ensure_ids(h);
}

/// Sets the request target: absolute on `authority` (plain HTTP), or origin-form without one.
fn set_target<B>(request: &mut Request<B>, authority: Option<Authority>) {
    let mut parts = std::mem::take(request.uri_mut()).into_parts();
    parts.scheme = authority.is_some().then_some(Scheme::HTTP);
    parts.authority = authority;
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    *request.uri_mut() = Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<F: Future>(_: fn(Arc<Proxy>, Port, SocketAddr, Request<Incoming>) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn a_parked_request_stays_small() {
        // The whole request future lives in the connection while the request is parked; P6 allows
        // 2 KiB per parked request in total.
        let size = future_size(Proxy::handle);
        assert!(size <= 1280, "request future is {size} bytes");
    }
}
