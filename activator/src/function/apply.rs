//! Applying what a transition of the core asked for, once its lock is released: metric changes,
//! waiters answered through their channels (a pod's [`super::Lease`] or an error), and the [`super::Wakeups`].

use std::sync::Arc;

use super::{FunctionState, Waiter, relock};
use crate::{error::ProxyError, function::effects::Effects, metrics::FunctionMetrics};

impl FunctionState {
    /// Applies what a transition asked for; called with the core unlocked.
    pub(super) fn apply(self: &Arc<Self>, fx: Effects<Waiter>) {
        {
            let mut m = relock(&self.metrics);
            let changes = &fx.metrics;
            if changes.queue_depth != 0 {
                m.queue_depth.inc_by(changes.queue_depth);
            }
            if changes.in_flight != 0 {
                m.in_flight.inc_by(changes.in_flight);
            }
            for _ in 0..changes.cold_starts {
                m.cold_starts.inc();
            }
            if changes.cold_address_known {
                m.cold_starts.address_known();
            }
            for (waited, cold) in &changes.waits {
                m.queue_wait.observe(waited.as_secs_f64());
                if *cold {
                    m.cold_start_duration.observe(waited.as_secs_f64());
                }
            }
            for status in &changes.responses {
                m.count_response(*status);
            }
            if let Some(duration) = changes.duration {
                m.duration.observe(duration.as_secs_f64());
            }
            // A request handed back to be routed again is not answered yet: the entry that answers
            // it counts it.
            let answered = fx
                .failures
                .iter()
                .filter(|(_, e)| !matches!(e, ProxyError::Rerouted(_)));
            for (_, error) in answered {
                count_error(&mut m, error);
            }
        }
        if let Some(address) = fx.failed_pod {
            tracing::info!(function = %self.display, %address, "pod refused a connection: routing around it until it answers");
        }
        for (waiter, error) in fx.failures {
            // The waiter is settled by the error: its ticket will not try to leave the queue again.
            let _ = waiter.send(Box::new(Err(error)));
        }
        for grant in fx.grants {
            let mut lease = self.lease(grant.endpoint, grant.arrived, grant.limits);
            lease.cold = grant.cold;
            // A waiter that has gone meanwhile drops the lease here, which gives the slot back.
            drop(grant.waiter.send(Box::new(Ok(lease))));
        }
        if let Some(queued) = fx.demand {
            *relock(&self.demand_sent) = Some(tokio::time::Instant::now());
            self.wakeups.demand(self, queued);
        }
        if fx.probe {
            self.wakeups.probe(self);
        }
    }
}

/// Counts an error answer as a response, and as a rejection when it rejects a buffered request.
pub(super) fn count_error(metrics: &mut FunctionMetrics, error: &ProxyError) {
    metrics.count_response(error.status().as_u16());
    if let Some(reason) = error.rejection_reason() {
        metrics.count_rejection(reason);
    }
}
