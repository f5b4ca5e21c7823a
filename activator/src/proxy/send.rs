//! Sending an admitted request to its pod: the request rewritten for the pod, its small body kept so
//! it can be sent again, then sent over the function's protocol within the response-start deadline.
//! A request that never reached the pod, or whose pod broke the connection before answering when it
//! is safe to send again, is admitted again and sent elsewhere; the answer is streamed back holding
//! the lease, or tunnelled after `101`.

use std::{net::SocketAddr, sync::Arc};

use http::{Request, Response, StatusCode};
use tokio::time::{Instant, timeout_at};
use zeroscale_crds::function::Protocol;

use super::{Counted, MAX_REROUTES, Proxy, Rejection, decided_or_waiting};
use crate::{
    body::{ResponseBody, Served},
    client_body::ClientBody,
    error::ProxyError,
    function::FunctionState,
    function::record::{RequestMeta, RequestOutcome},
    headers,
    host::HostError,
    lease::Admission,
    lease::Lease,
    metrics::{LOST_BEFORE_RESPONSE, RETRY_NOT_SENT, RETRY_POD_GONE, RETRY_REPLAYED},
    rewrite::{host_value, prepare, set_target},
    settings::Port,
    upgrade,
    upstream::{OutBody, Outgoing, SendError, Sent},
};

/// Most times one request that may have reached a pod is sent again (a request that kills every pod
/// it reaches must not go through all of them).
const MAX_REPLAYS: u32 = 3;

impl Proxy {
    pub(super) async fn forward(
        &self,
        port: Port,
        mut lease: Lease,
        remote: SocketAddr,
        mut request: Request<ClientBody>,
        arrived: Instant,
    ) -> Response<ResponseBody> {
        let protocol = lease.limits().protocol;
        let meta = RequestMeta::of(request.method(), request.headers(), arrived);
        let mut forwarded = Instant::now();
        let upgrade = headers::is_upgrade(request.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        // A hop from a peer already carries the forwarding headers the edge added.
        let peer_hop = self
            .peers
            .as_ref()
            .is_some_and(|p| p.take_hop(request.headers_mut(), remote));
        let host = host_value(&request).filter(|_| !peer_hop);
        let forwarding = prepare(&mut request, protocol, remote, host, upgrade);
        let limits = lease.limits();
        let head_deadline = arrived + limits.timeout.min(limits.response_start_timeout);
        // A small body is read now, so the request can be sent again if its pod goes away.
        let mut outgoing = match timeout_at(head_deadline, Outgoing::read(request)).await {
            Ok(Ok(mut outgoing)) => {
                if let Some(forwarding) = forwarding {
                    outgoing.forward_for(forwarding);
                }
                outgoing
            }
            Ok(Err(error)) => {
                let function = lease.function().display().to_string();
                tracing::info!(function, error = %error, "request body could not be read");
                return fail(lease, ProxyError::RequestBody(function), &meta, forwarded);
            }
            Err(_) => {
                let e = head_timeout(&lease);
                return fail(lease, e, &meta, forwarded);
            }
        };
        let mut replays = 0;
        let mut reroutes = 0;
        // Sent; or sent elsewhere when the pod went away before it answered and that is safe, as long
        // as the deadline allows.
        let (mut response, conn) = loop {
            let limits = lease.limits();
            let head_deadline = arrived + limits.timeout.min(limits.response_start_timeout);
            let (reason, pod_failed) = if lease.endpoint().is_retired() {
                // The pod left rotation (terminating, gone) after it was picked: nothing went out yet.
                (RETRY_POD_GONE, false)
            } else {
                let sent = match outgoing.kept_body() {
                    // The usual case: written from the kept parts, with no request built for it.
                    Some((body, trailers)) if protocol == Protocol::Http1 && !upgrade => {
                        let send = self.upstreams.send_http1_kept(
                            lease.endpoint(),
                            outgoing.head_ref(),
                            body,
                            trailers,
                        );
                        timeout_at(head_deadline, send).await
                    }
                    _ => {
                        let Some(attempt) = outgoing.attempt() else {
                            return lose(
                                lease,
                                &outgoing,
                                "its body was already sent".into(),
                                &meta,
                                forwarded,
                            );
                        };
                        // Boxed: this path's future (hyper's client, h2c, upgrades) is larger than
                        // the rest of this one, which is itself boxed and moved once per request.
                        let send = Box::pin(self.send(&lease, protocol, attempt, upgrade));
                        timeout_at(head_deadline, send).await
                    }
                };
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
                            return lose(lease, &outgoing, error.to_string(), &meta, forwarded);
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
                            return lose(lease, &outgoing, error.to_string(), &meta, forwarded);
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
                        return fail(lease, e, &meta, forwarded);
                    }
                }
            };
            let state = Arc::clone(lease.function());
            state.record_retry(reason);
            let mut admitted = state
                .retry(lease, pod_failed, outgoing.parked_bytes())
                .map(|a| (Arc::clone(&state), a))
                .map_err(|e| (Counted::ByFunction(Arc::clone(&state)), e));
            lease = loop {
                let waited = match decided_or_waiting(admitted, arrived) {
                    Ok(decided) => decided,
                    Err(waiting) => waiting.await,
                };
                match waited {
                    Ok(lease) => break lease,
                    // The entry it was to be sent again from was replaced meanwhile (its function's
                    // first revision took over): admitted again where its host routes now.
                    Err((_, ProxyError::Rerouted(_))) if reroutes < MAX_REROUTES => {
                        reroutes += 1;
                        admitted = self.readmit(port, &outgoing, arrived);
                    }
                    Err((counted, error)) => return self.reject(counted, error, &meta),
                }
            };
            forwarded = Instant::now();
        };
        let first_byte = Instant::now();
        let limits = lease.limits();
        lease.set_status(response.status().as_u16());
        if response.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(client_upgrade) = client_upgrade
        {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            // The tunnel runs on its own: the request's record ends at the switch.
            lease.record(
                &meta,
                forwarded,
                Some(first_byte),
                first_byte,
                RequestOutcome::Ok,
                0,
            );
            let function = lease.function().display().to_string();
            upgrade::spawn_tunnel(function, client_upgrade, upstream_upgrade, lease);
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, ResponseBody::empty());
        }
        headers::strip_hop_by_hop(response.headers_mut(), false);
        let total_deadline = arrived + limits.timeout;
        let served = Served {
            meta,
            forwarded,
            first_byte,
        };
        response.map(|body| {
            ResponseBody::upstream(body, lease, total_deadline, limits.idle_timeout, conn, served)
        })
    }

    /// Admits a request that is to be sent again into the revision its host routes to now. It is
    /// admitted here even when another activator owns that revision: its body was already read, and
    /// this happens only in the moment a function's entry is replaced.
    fn readmit(
        &self,
        port: Port,
        outgoing: &Outgoing,
        arrived: Instant,
    ) -> Result<(Arc<FunctionState>, Admission), Rejection> {
        let host = outgoing
            .head()
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or((Counted::Unrouted, ProxyError::Host(HostError::Missing)))?;
        let function = self.route(host, None)?;
        self.admit_picked(port, function, || outgoing.parked_bytes(), arrived)
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
fn lose(
    lease: Lease,
    outgoing: &Outgoing,
    detail: String,
    meta: &RequestMeta,
    forwarded: Instant,
) -> Response<ResponseBody> {
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
    fail(lease, ProxyError::Lost { function, kind }, meta, forwarded)
}

/// The activator's answer for a request on `lease`, handed to its pod at `forwarded`, that failed
/// with `error` before a response head; makes the request's record.
fn fail(
    mut lease: Lease,
    error: ProxyError,
    meta: &RequestMeta,
    forwarded: Instant,
) -> Response<ResponseBody> {
    // Logged with the request id by `respond::with_request_id`.
    lease.set_status(error.status().as_u16());
    let outcome = RequestOutcome::of_error(&error);
    lease.record(meta, forwarded, None, Instant::now(), outcome, 0);
    error.into_response()
}
