//! Admission on the request path: the request's host names a function, which admits it at once or
//! queues it; a queued request waits within the function's total deadline. The first request of a
//! connection can be admitted from its head alone, before hyper read it ([`Early`]).

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::Request;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};

use super::{Counted, Proxy, Rejection};
use crate::{
    client_body::ClientBody,
    error::ProxyError,
    function::FunctionState,
    lease::{Admission, Lease, Ticket},
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
        request: &Request<ClientBody>,
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

/// A first request admitted from its head alone, before hyper read it: with its outcome, or with
/// none when another activator owns the revision picked ([`Proxy::handle_first`] then forwards it
/// there with that pick: picking again would skew a traffic split towards local revisions).
#[derive(Debug)]
pub struct Early {
    pub(super) host: String,
    pub(super) arrived: Instant,
    /// `None` once [`Proxy::handle_first`] took it.
    pub(super) outcome: Option<EarlyOutcome>,
}

/// What admitting a head decided.
#[derive(Debug)]
pub(super) enum EarlyOutcome {
    /// Admitted here: a pod, or why not.
    Here(Result<Lease, Rejection>),
    /// The revision picked belongs to another activator: forwarded there with this pick.
    AtPeer(Arc<FunctionState>),
}

impl Early {
    /// The same outcome, for a request whose `Host` is `host` ([`Proxy::handle_first`] checks the
    /// request hyper reads against it).
    pub fn for_host(mut self, host: String) -> Self {
        self.host = host;
        self
    }
}

impl Drop for Early {
    fn drop(&mut self) {
        // hyper rejected the head it re-read, or the client went away: the pod was never asked.
        if let Some(EarlyOutcome::Here(Ok(lease))) = self.outcome.take() {
            lease.unused();
        }
    }
}

/// What admitting a first request from its head came to.
#[derive(Debug)]
pub enum HeadAdmission {
    /// Decided now: a pod, an error, or a request for another activator.
    Decided(Early),
    /// The request waits in its function's queue.
    Parked(Parked),
}

/// A first request waiting in its function's queue, admitted from its head: its place in the queue
/// and when it arrived, which is all a parked request holds of the request pipeline (its connection
/// holds the socket and the head's bytes, see [`crate::server`]).
#[derive(Debug)]
pub struct Parked {
    ticket: Ticket,
    arrived: Instant,
}

impl Parked {
    pub(super) fn new(ticket: Ticket, arrived: Instant) -> Self {
        Self { ticket, arrived }
    }

    /// When the request stops waiting: its arrival plus the function's total deadline.
    pub fn deadline(&self) -> Instant {
        self.arrived + self.ticket.timeout()
    }

    /// Polls for the function's answer: a pod, or the error it handed the waiter. The [`Early`] has
    /// no host yet ([`Early::for_host`]).
    pub fn poll_early(&mut self, cx: &mut Context<'_>) -> Poll<Early> {
        self.poll_outcome(cx).map(|outcome| self.early(outcome))
    }

    /// The deadline passed: leaves the queue and answers with the timeout.
    pub fn expire(&mut self) -> Early {
        let outcome = self.expired();
        self.early(outcome)
    }

    fn poll_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Result<Lease, Rejection>> {
        let outcome = std::task::ready!(self.ticket.poll_wait(cx));
        // Errors handed to waiters were already counted by the function.
        Poll::Ready(outcome.map_err(|e| (Counted::Already(Arc::clone(&self.ticket.function)), e)))
    }

    fn expired(&mut self) -> Result<Lease, Rejection> {
        // Leave the queue before counting, so the depth gauge is right at once.
        self.ticket.leave();
        let function = Arc::clone(&self.ticket.function);
        let e = ProxyError::Timeout(function.display().to_string());
        Err((Counted::ByFunction(function), e))
    }

    fn early(&self, outcome: Result<Lease, Rejection>) -> Early {
        Early {
            host: String::new(),
            arrived: self.arrived,
            outcome: Some(EarlyOutcome::Here(outcome)),
        }
    }
}

pin_project! {
    /// A request waiting in its function's queue for its answer within the deadline: its place and
    /// the deadline's timer, and nothing else (an `async fn` would keep the place twice).
    pub(super) struct Waiting {
        parked: Parked,
        #[pin]
        deadline: Sleep,
    }
}

impl Future for Waiting {
    type Output = Result<Lease, Rejection>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The answer first, as `tokio::time::timeout` does: one that came with the deadline wins.
        if let Poll::Ready(outcome) = this.parked.poll_outcome(cx) {
            return Poll::Ready(outcome);
        }
        std::task::ready!(this.deadline.poll(cx));
        Poll::Ready(this.parked.expired())
    }
}

/// Admission's outcome when it was decided at once (`Ok`), else the wait for it (`Err`): boxed, so
/// only a request that waits pays for the wait's timer, and the request future every request holds
/// stays small. A caller that awaits the wait apart from the decided outcome keeps only the box
/// across the await (see `Proxy::handle_picked`).
pub(super) fn decided_or_waiting(
    admitted: Result<(Arc<FunctionState>, Admission), Rejection>,
    arrived: Instant,
) -> Result<Result<Lease, Rejection>, Pin<Box<Waiting>>> {
    match admitted {
        Ok((_, Admission::Go(lease))) => Ok(Ok(lease)),
        Ok((_, Admission::Wait(ticket))) => {
            let parked = Parked { ticket, arrived };
            let deadline = sleep_until(parked.deadline());
            Err(Box::pin(Waiting { parked, deadline }))
        }
        Err(rejection) => Ok(Err(rejection)),
    }
}
