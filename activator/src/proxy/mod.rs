//! The request pipeline: **route** (to the activator owning the function, see [`crate::peers`], or
//! here) → **admit** into the function, at once or after waiting in its queue (`admit.rs`) → **send** to
//! the chosen pod within the deadlines, sending again elsewhere when the pod went away before it
//! answered (`send.rs`) → **respond**: the pod's answer streamed back, or the error made a response by
//! [`crate::respond`].

mod admit;
mod async_hook;
mod send;

use std::{convert::Infallible, net::SocketAddr, pin::Pin, sync::Arc};

use http::{Request, Response};
use tokio::time::Instant;

pub use self::admit::{Early, HeadAdmission, Parked};
use self::admit::{EarlyOutcome, decided_or_waiting};
use crate::{
    body::ResponseBody,
    client_body::ClientBody,
    error::ProxyError,
    function::FunctionState,
    function::record::RequestMeta,
    host::Domains,
    lease::Admission,
    metrics::Metrics,
    peers::{self, Peering},
    queue::parked_head_bytes,
    rewrite::host_of,
    settings::Port,
    table::RoutingTable,
    upstream::Upstreams,
};

pub use crate::metrics::{
    LOST_BEFORE_RESPONSE, LOST_MID_RESPONSE, LOST_PEER_HOP, RETRY_NOT_SENT, RETRY_POD_GONE, RETRY_REPLAYED,
};

/// The activator's request handler, shared by every connection.
#[derive(Debug)]
pub struct Proxy {
    table: Arc<RoutingTable>,
    domains: Domains,
    upstreams: Upstreams,
    metrics: Arc<Metrics>,
    peers: Option<Arc<Peering>>,
    invoker: Option<Arc<crate::invoke_async::AsyncInvoker>>,
}

/// Who still has to count an error that happened before a lease.
#[derive(Debug)]
enum Counted {
    /// No function was found: count it unlabelled.
    Unrouted,
    /// Count it on this function.
    ByFunction(Arc<FunctionState>),
    /// The function counted it when it answered the waiter.
    Already(Arc<FunctionState>),
}

/// Most times one request is routed again because the entry it waited in was replaced
/// ([`ProxyError::Rerouted`]); a Function's routes settle within a few watch events.
const MAX_REROUTES: u8 = 3;

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
            invoker: None,
        }
    }

    /// Forwards requests for functions another activator owns to it (see [`crate::peers`]).
    pub fn with_peers(mut self, peers: Arc<Peering>) -> Self {
        self.peers = Some(peers);
        self
    }

    /// The revision (routing-table state) `request` goes to, picked once per request: the one a
    /// peer activator picked when it forwarded the request ([`peers::take_pin`]), else one by weight.
    /// `None` when its host names no function (admission then answers why).
    fn pick(&self, remote: SocketAddr, request: &mut Request<ClientBody>) -> Option<Arc<FunctionState>> {
        let pinned = peers::take_pin(self.peers.as_deref(), request.headers_mut(), remote);
        let key = self.domains.route_key(host_of(request).ok()?).ok()??;
        match pinned {
            Some(revision) => self.table.lookup_pinned(&key, &revision),
            None => self.table.lookup(&key),
        }
    }

    /// The forward of `request` to the activator owning `picked`, when that is another one; else
    /// the request back. Boxed: the forwarding state is only allocated for such requests.
    // The request comes back unboxed: boxing it would cost every local request an allocation.
    #[allow(clippy::type_complexity, clippy::result_large_err)]
    fn to_peer(
        &self,
        port: Port,
        remote: SocketAddr,
        request: Request<ClientBody>,
        picked: Option<&Arc<FunctionState>>,
    ) -> Result<
        Pin<Box<impl Future<Output = Result<Response<ResponseBody>, Box<Request<ClientBody>>>> + '_>>,
        Request<ClientBody>,
    > {
        let (Some(peers), Some(function)) = (self.peers.as_deref(), picked) else {
            return Err(request);
        };
        let hop_from = peers::has_hop(request.headers()).then_some(remote);
        match peers.target(function, port, hop_from) {
            Some(target) => Ok(Box::pin(peers.forward(target, remote, request))),
            None => Err(request),
        }
    }

    /// Handles one request that came in on `port` from `remote`. Never fails: errors become responses.
    pub fn handle(
        self: Arc<Self>,
        port: Port,
        remote: SocketAddr,
        request: Request<ClientBody>,
    ) -> impl Future<Output = Result<Response<ResponseBody>, Infallible>> {
        self.handle_picked(port, remote, request, None, None)
    }

    /// [`Proxy::handle`], with the revision already picked for the request (`preset`) when its head
    /// was routed before hyper read it, and its arrival (`since`) when it waited before.
    // Not an `async fn`: one keeps each argument twice in its future (the argument and the binding
    // it is moved into), and the request is 264 bytes. An `async move` block keeps what it captures
    // once, which matters while a request is parked (an h2c stream's task holds this future).
    #[allow(clippy::manual_async_fn)]
    fn handle_picked(
        self: Arc<Self>,
        port: Port,
        remote: SocketAddr,
        mut request: Request<ClientBody>,
        mut preset: Option<Arc<FunctionState>>,
        mut since: Option<Instant>,
    ) -> impl Future<Output = Result<Response<ResponseBody>, Infallible>> {
        async move {
            let mut reroutes: u8 = 0;
            loop {
                // Picked once per routing: forwarded to its owner with the pick, or admitted here with it.
                let picked = match preset.take() {
                    Some(function) => Some(function),
                    None => self.pick(remote, &mut request),
                };
                // Only a box pointer lives across this await, and the request comes back into the same
                // binding, so the future of a parked request does not grow.
                'peer: {
                    let forward = match self.to_peer(port, remote, request, picked.as_ref()) {
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
                // After the peer hop: the owning activator stores an async invocation, so the memory
                // store's `Idempotency-Key` window and its worker are the owner's, whichever replica it
                // reached first.
                if self.invoker.is_some() && crate::invoke_async::wants_async(&request) {
                    return Ok(Box::pin(self.handle_async(request)).await);
                }
                // A request routed again keeps its arrival, so its deadline does not move.
                let arrived = *since.get_or_insert_with(Instant::now);
                let admitted = self.admit(port, &request, picked, arrived);
                // Only the boxed wait is awaited, after the match that decided it has ended, and the
                // lease is taken out of a block that ends before the send is awaited: a value matched
                // or bound across an await stays in the future (the admission's result, 104 bytes),
                // and so in every parked request's task.
                let lease = {
                    let waited = 'waited: {
                        let waiting = match decided_or_waiting(admitted, arrived) {
                            Ok(decided) => break 'waited decided,
                            Err(waiting) => waiting,
                        };
                        waiting.await
                    };
                    match waited {
                        Ok(lease) => lease,
                        // The entry it waited in was replaced (its function's first revision took
                        // over): routed again, to what the function's routes name now.
                        Err((_, ProxyError::Rerouted(_))) if reroutes < MAX_REROUTES => {
                            reroutes += 1;
                            continue;
                        }
                        Err((counted, error)) => {
                            let meta = RequestMeta::of(request.method(), request.headers(), arrived);
                            return Ok(self.reject(counted, error, &meta));
                        }
                    }
                };
                // Boxed so a parked request's future stays small: the forwarding state is only
                // allocated once a pod has been chosen (one small allocation on the warm path).
                return Ok(Box::pin(self.forward(port, lease, remote, request, arrived)).await);
            }
        }
    }

    /// The activator's answer for a request refused before it reached a pod; makes its record.
    fn reject(&self, counted: Counted, error: ProxyError, meta: &RequestMeta) -> Response<ResponseBody> {
        let function = match counted {
            Counted::ByFunction(f) => {
                f.record_error(&error);
                Some(f)
            }
            // A waiter handed back to be routed again was left uncounted by its function.
            Counted::Already(f) if matches!(error, ProxyError::Rerouted(_)) => {
                f.record_error(&error);
                Some(f)
            }
            Counted::Unrouted => {
                self.metrics.count_unrouted(error.status().as_u16());
                None
            }
            Counted::Already(f) => Some(f),
        };
        let recorder = self.table.recorder();
        if !recorder.is_empty() {
            recorder.emit(&meta.failed(function.as_ref(), &error, None, None, Instant::now()));
        }
        // Logged with the request id by `respond::with_request_id`.
        error.into_response()
    }

    /// Admits the first request of a new HTTP/1.1 connection from its head alone (`host` and the
    /// head's size), before hyper has read the request: see [`crate::server`]. A decided outcome is
    /// handed to [`Proxy::handle_first`] with the request; a parked one once its wait is over.
    pub fn admit_head(&self, port: Port, host: String, head_bytes: usize) -> HeadAdmission {
        let arrived = Instant::now();
        // A head naming a peer's pick is never admitted early (see `server::head`): no pin here.
        let picked = self.route(&host, None);
        if let (Ok(function), Some(peers)) = (&picked, self.peers.as_deref())
            && peers.target(function, port, None).is_some()
        {
            // Another activator owns the revision picked: once the request is read,
            // [`Proxy::handle_first`] forwards it there with this pick.
            return HeadAdmission::Decided(Early {
                host,
                arrived,
                outcome: Some(EarlyOutcome::AtPeer(Arc::clone(function))),
            });
        }
        let admitted = picked.and_then(|function| {
            self.admit_picked(port, function, || parked_head_bytes(head_bytes), arrived)
        });
        let outcome = match admitted {
            Ok((_, Admission::Wait(ticket))) => return HeadAdmission::Parked(Parked::new(ticket, arrived)),
            Ok((_, Admission::Go(lease))) => Ok(lease),
            Err(rejection) => Err(rejection),
        };
        HeadAdmission::Decided(Early {
            host,
            arrived,
            outcome: Some(EarlyOutcome::Here(outcome)),
        })
    }

    /// Handles the request an [`Early`] outcome was reached for, or, when its `Host` turns out to be
    /// another than the one read early, handles it afresh.
    pub async fn handle_first(
        self: Arc<Self>,
        port: Port,
        remote: SocketAddr,
        request: Request<ClientBody>,
        mut early: Early,
    ) -> Result<Response<ResponseBody>, Infallible> {
        if host_of(&request).ok() != Some(early.host.as_str()) {
            return self.handle(port, remote, request).await;
        }
        let response = match early.outcome.take() {
            Some(EarlyOutcome::Here(Ok(lease))) => {
                Box::pin(self.forward(port, lease, remote, request, early.arrived)).await
            }
            Some(EarlyOutcome::Here(Err((_, ProxyError::Rerouted(_))))) => {
                let since = Some(early.arrived);
                return self.handle_picked(port, remote, request, None, since).await;
            }
            Some(EarlyOutcome::Here(Err((counted, error)))) => {
                let meta = RequestMeta::of(request.method(), request.headers(), early.arrived);
                self.reject(counted, error, &meta)
            }
            Some(EarlyOutcome::AtPeer(picked)) => {
                return self
                    .handle_picked(port, remote, request, Some(picked), None)
                    .await;
            }
            None => return self.handle(port, remote, request).await,
        };
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<F: Future>(_: fn(Arc<Proxy>, Port, SocketAddr, Request<ClientBody>) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn a_parked_request_stays_small() {
        // The request future lives in the connection for as long as the request does (a parked one
        // also holds its boxed wait); P6 allows 2 KiB per parked request in total. It was 1,040
        // bytes as an `async fn` that kept the request twice and the admission's result through
        // the send.
        let size = future_size(Proxy::handle);
        assert!(size <= 384, "request future is {size} bytes");
        let size = std::mem::size_of::<admit::Waiting>();
        assert!(size <= 192, "a queued request's wait is {size} bytes");
    }
}
