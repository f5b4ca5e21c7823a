//! Reserved concurrency (`spec.scale.maxConcurrency`) and the function's own queue bound
//! (`spec.scale.maxQueued`): how many of the function's requests this activator has on pods, whether
//! another may go, and the answer for one that can neither go nor wait.
//!
//! The cap holds across activator replicas because only a function's owner (rendezvous hashing,
//! [`crate::peers`]) admits its requests; the others forward to it. While the peer set changes, the
//! old and the new owner may both admit for a moment (until every replica sees the same set), so
//! the total can briefly exceed the cap by what the old owner still has in flight; it converges as
//! those requests finish. A forward that cannot reach the owner is admitted locally, with the same
//! bounded excess.

use tokio::time::Instant;

use super::drain::DrainRate;
use crate::{error::ProxyError, queue::Overflow, settings::FunctionSettings};

/// The in-flight count and drain rate of one function at this activator.
#[derive(Debug)]
pub struct Throttle {
    in_flight: usize,
    drain: DrainRate,
}

impl Throttle {
    /// Nothing in flight, no completions, at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            in_flight: 0,
            drain: DrainRate::new(now),
        }
    }

    /// Requests this activator has on the function's pods.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether `settings` let one more request go to a pod now.
    pub fn has_room(&self, settings: &FunctionSettings) -> bool {
        settings.max_concurrency == 0 || self.in_flight < settings.max_concurrency as usize
    }

    /// Whether the cap is what holds requests back (so an overflow is a throttle, not a cold start).
    pub fn capped(&self, settings: &FunctionSettings) -> bool {
        !self.has_room(settings)
    }

    /// A request went to a pod.
    pub fn started(&mut self) {
        self.in_flight += 1;
    }

    /// A request left its pod at `now`; `completed` when a response arrived (it counts towards the
    /// drain rate), not when it was given back unsent or retried.
    pub fn finished(&mut self, now: Instant, completed: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if completed {
            self.drain.complete(now);
        }
    }

    /// Whether the function's own queue bound (`maxQueued`) leaves no place for one more of `queued`.
    pub fn queue_full(&self, settings: &FunctionSettings, queued: usize) -> bool {
        settings.max_queued.is_some_and(|max| queued >= max as usize)
    }

    /// The answer for a request of `function` that can neither go nor wait (`overflow`) with
    /// `queued` requests ahead of it at `now`: 429 when the function's cap or its namespace's quota
    /// holds it back, 503 otherwise; both with a `Retry-After` from the drain rate.
    pub fn refuse(
        &self,
        function: &str,
        settings: &FunctionSettings,
        overflow: Overflow,
        queued: usize,
        now: Instant,
    ) -> ProxyError {
        let retry_after = self.drain.retry_after(now, queued);
        let function = function.to_string();
        let limit = overflow.limit_name();
        if overflow == Overflow::NamespaceMemory || self.capped(settings) {
            ProxyError::Throttled {
                function,
                limit: if self.capped(settings) && overflow != Overflow::NamespaceMemory {
                    "maxConcurrency"
                } else {
                    limit
                },
                retry_after,
            }
        } else {
            ProxyError::QueueFull {
                function,
                limit,
                retry_after,
            }
        }
    }
}
