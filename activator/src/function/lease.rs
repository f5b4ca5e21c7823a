//! What a request holds while it waits for a pod ([`Ticket`]) and while it is forwarded ([`Lease`]).
//! Dropping either gives its place back to the function, so a client that goes away, a timeout or a
//! finished response all release capacity the same way.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{sync::oneshot, time::Instant};

use super::{
    FunctionState,
    record::{RequestMeta, RequestOutcome, RequestRecord},
};
use crate::{endpoints::Endpoint, error::ProxyError, settings::Limits};

/// What a waiting request is eventually handed.
pub type Outcome = Result<Lease, ProxyError>;

/// What goes through a waiter's channel: boxed, so that the channel a parked request holds is small
/// (its slot is one pointer until the outcome is sent; see `docs/benchmarks.md`, "What a parked
/// request holds").
pub(crate) type Handed = Box<Outcome>;

/// The right to send one request to one endpoint; counts against that endpoint's concurrency until
/// dropped.
#[derive(Debug)]
pub struct Lease {
    pub(crate) function: Arc<FunctionState>,
    pub(crate) endpoint: Arc<Endpoint>,
    pub(crate) arrived: Instant,
    pub(crate) limits: Limits,
    pub(crate) status: u16,
    /// Whether the request waited through a cold start (for its record).
    pub(crate) cold: bool,
    // Set when the slot was handed back for a retry, which does its own accounting.
    pub(crate) returned: bool,
}

impl Lease {
    /// The endpoint to send the request to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// When the request arrived (its deadlines count from here).
    pub fn arrived(&self) -> Instant {
        self.arrived
    }

    /// The function's timeouts and protocol as of when the lease was granted.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The function this lease belongs to.
    pub fn function(&self) -> &Arc<FunctionState> {
        &self.function
    }

    /// Gives the slot back for a request that was never sent, counting no response.
    pub fn unused(mut self) {
        self.returned = true;
        self.function.give_back(&self.endpoint);
    }

    /// Records the status code the client got, for the request metrics.
    pub fn set_status(&mut self, status: u16) {
        self.status = status;
    }

    /// Whether the request waited through a cold start.
    pub fn cold(&self) -> bool {
        self.cold
    }

    /// Hands the record of the request on this lease to the function's [`crate::function::record::Recorder`]:
    /// it was handed to the pod at `forwarded`, got its response head at `first_byte` (if it did),
    /// and ended at `end` with `outcome` after `response_bytes` body bytes.
    #[allow(clippy::too_many_arguments)] // one record: what the lease lacks
    pub fn record(
        &self,
        meta: &RequestMeta,
        forwarded: Instant,
        first_byte: Option<Instant>,
        end: Instant,
        outcome: RequestOutcome,
        response_bytes: u64,
    ) {
        let recorder = self.function.recorder();
        if recorder.is_empty() {
            return;
        }
        recorder.emit(&RequestRecord {
            function: Some(&self.function),
            revision: None,
            method: &meta.method,
            status: self.status,
            outcome,
            arrived: self.arrived,
            forwarded: Some(forwarded),
            first_byte,
            end,
            cold: self.cold,
            pod: Some(self.endpoint.address),
            request_id: meta.request_id(),
            traceparent: meta.traceparent.to_str().unwrap_or(""),
            request_bytes: meta.request_bytes,
            response_bytes,
        });
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.returned {
            self.function.release(&self.endpoint, self.arrived, self.status);
        }
    }
}

/// A place in a function's queue.
#[derive(Debug)]
pub struct Ticket {
    pub(crate) function: Arc<FunctionState>,
    pub(crate) id: u64,
    pub(crate) receiver: oneshot::Receiver<Handed>,
    pub(crate) settled: bool,
    // Only the total deadline of the function's limits as of admission: a parked request holds no
    // more than it needs (the lease it is handed carries the limits as of then).
    pub(crate) timeout: Duration,
}

impl Ticket {
    /// The function's total deadline (from arrival) as of admission; it bounds the wait.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Waits until the request gets a pod or an error. Cancel-safe: dropping the future (or the ticket)
    /// before it resolves leaves the queue.
    pub async fn wait(&mut self) -> Outcome {
        std::future::poll_fn(|cx| self.poll_wait(cx)).await
    }

    /// Polls for the request's pod or error: [`Ticket::wait`] for a caller that polls by hand.
    pub fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        let outcome = std::task::ready!(std::pin::Pin::new(&mut self.receiver).poll(cx));
        self.settled = true;
        // The sender is only dropped without sending when the function state itself goes away.
        Poll::Ready(outcome.map_or_else(
            |_| Err(ProxyError::FunctionDeleted(self.function.display().to_string())),
            |handed| *handed,
        ))
    }

    /// Leaves the queue now (the request gave up: its deadline passed), unless already answered.
    pub(crate) fn leave(&mut self) {
        if !self.settled {
            self.settled = true;
            self.function.abandon(self.id);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.leave();
    }
}

/// The result of admitting a request.
#[derive(Debug)]
pub enum Admission {
    /// A pod has room now.
    Go(Lease),
    /// The request must wait.
    Wait(Ticket),
}
