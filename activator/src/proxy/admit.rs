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
    pub(super) fn admit(
        &self,
        port: Port,
        request: &Request<Incoming>,
        arrived: Instant,
    ) -> Result<(Arc<FunctionState>, Admission), Rejection> {
        let host = host_of(request).map_err(|e| (Counted::Unrouted, e.into()))?;
        self.admit_host(port, host, || parked_request_bytes(request), arrived)
    }

    pub(super) fn admit_host(
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
