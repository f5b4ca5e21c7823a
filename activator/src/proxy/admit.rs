//! Admission on the request path: the request's host names a function, which admits it at once or
//! queues it; a queued request waits within the function's total deadline. The first request of a
//! connection can be admitted from its head alone, before hyper read it ([`Early`]).

use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use tokio::time::{Instant, timeout_at};

use super::{Counted, Proxy, Rejection};
use crate::{
    error::ProxyError,
    function::FunctionState,
    lease::{Admission, Lease},
    queue::parked_request_bytes,
    rewrite::host_of,
    settings::Port,
};

impl Proxy {
    /// Admits `request` into `picked`, the revision picked for it ([`Proxy::pick`]); without one,
    /// routes its host now (and answers why it names no function).
    pub(super) fn admit(
        &self,
        port: Port,
        request: &Request<Incoming>,
        picked: Option<Arc<FunctionState>>,
        arrived: Instant,
    ) -> Result<(Arc<FunctionState>, Admission), Rejection> {
        let function = match picked {
            Some(function) => function,
            None => self.route(host_of(request).map_err(|e| (Counted::Unrouted, e.into()))?, None)?,
        };
        self.admit_picked(port, function, || parked_request_bytes(request), arrived)
    }

    /// The revision a request for `host` goes to: `pinned` (a peer's pick) while the host still
    /// routes to it, else one picked by weight.
    pub(super) fn route(&self, host: &str, pinned: Option<&str>) -> Result<Arc<FunctionState>, Rejection> {
        let key = self
            .domains
            .route_key(host)
            .map_err(|e| (Counted::Unrouted, e.into()))?;
        key.and_then(|k| match pinned {
            Some(revision) => self.table.lookup_pinned(&k, revision),
            None => self.table.lookup(&k),
        })
        .ok_or_else(|| (Counted::Unrouted, ProxyError::UnknownFunction(host.to_string())))
    }

    /// Admits a request into `function`, the revision picked for it.
    pub(super) fn admit_picked(
        &self,
        port: Port,
        function: Arc<FunctionState>,
        bytes: impl FnOnce() -> usize,
        arrived: Instant,
    ) -> Result<(Arc<FunctionState>, Admission), Rejection> {
        let admission = function
            .admit(port, bytes, arrived)
            .map_err(|e| (Counted::ByFunction(Arc::clone(&function)), e))?;
        Ok((function, admission))
    }
}

/// A first request admitted (and possibly parked) from its head alone, before hyper read it.
#[derive(Debug)]
pub struct Early {
    pub(super) host: String,
    pub(super) arrived: Instant,
    pub(super) outcome: Option<Result<Lease, Rejection>>,
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
pub(super) async fn wait_for_lease(
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
                Ok(Err(e)) => Err((Counted::Already(function), e)),
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
