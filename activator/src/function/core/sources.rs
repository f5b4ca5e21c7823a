//! Transitions driven by what the function's sources report (Kubernetes, a static file, direct
//! probes): new settings and endpoints, deletion, a starting pod answering; and the prober's wishes.

use std::net::SocketAddr;

use rand::Rng;
use tokio::time::Instant;

use super::{Core, Gone};
use crate::{
    error::ProxyError,
    function::effects::Effects,
    settings::{EndpointInfo, FunctionSettings},
};

impl<W> Core<W> {
    /// Replaces the settings and endpoints with what the source last reported.
    pub fn update(
        &mut self,
        settings: FunctionSettings,
        endpoints: Vec<EndpointInfo>,
        now: Instant,
        rng: &mut impl Rng,
        fx: &mut Effects<W>,
    ) {
        self.settings = settings;
        self.endpoints.replace(endpoints);
        self.gone = None;
        self.note_address(fx);
        if self.endpoints.routable().is_empty()
            && let Some(failure) = self.settings.failure.clone()
        {
            let error = |function: &str| ProxyError::StartupFailed {
                function: function.to_string(),
                reason: failure.reason.clone(),
                message: failure.message.clone(),
            };
            self.fail_waiters(now, error, fx);
        }
        self.dispatch(now, rng, fx);
        self.want_probe(fx);
    }

    /// The function was deleted: waiting requests get 404, new ones too (until it is re-created).
    pub fn remove(&mut self, now: Instant, fx: &mut Effects<W>) {
        self.gone = Some(Gone::Deleted);
        self.endpoints.replace(Vec::new());
        self.fail_waiters(now, |d| ProxyError::FunctionDeleted(d.to_string()), fx);
    }

    /// Another entry of the same function took this one's place (its first revision replaced the
    /// function's own entry, or a revision is no longer routed to): waiting requests, and any that
    /// still reach this state, are handed back with [`ProxyError::Rerouted`] to be routed again.
    pub fn supersede(&mut self, now: Instant, fx: &mut Effects<W>) {
        self.gone = Some(Gone::Superseded);
        self.endpoints.replace(Vec::new());
        self.fail_waiters(now, |d| ProxyError::Rerouted(d.to_string()), fx);
    }

    /// Why a request can no longer be served here: the state was superseded, or deleted.
    pub(super) fn gone_error(&self) -> ProxyError {
        match self.gone {
            Some(Gone::Superseded) => ProxyError::Rerouted(self.display.clone()),
            _ => ProxyError::FunctionDeleted(self.display.clone()),
        }
    }

    fn fail_waiters(&mut self, now: Instant, error: impl Fn(&str) -> ProxyError, fx: &mut Effects<W>) {
        for waiter in self.queue.drain() {
            fx.metrics.queue_depth -= 1;
            self.presence.leave(now);
            fx.failures.push((waiter.notify, error(&self.display)));
        }
        self.cold = false;
    }

    fn probe_wanted(&self) -> bool {
        // Requests wait and some pod is starting, or some pod refused a connection and must answer
        // a probe before it is routed to again.
        (!self.queue.is_empty() && !self.endpoints.starting().is_empty())
            || !self.endpoints.failed().is_empty()
    }

    pub(super) fn want_probe(&mut self, fx: &mut Effects<W>) {
        if self.probe_wanted() && !self.probing {
            self.probing = true;
            fx.probe = true;
        }
    }

    /// Addresses to probe now, or `None` when probing should stop (nobody waits, or no pod is
    /// starting); stopping clears the probing flag so a later request starts a new prober.
    pub fn probe_targets(&mut self) -> Option<Vec<SocketAddr>> {
        if !self.probe_wanted() || self.gone.is_some() {
            self.probing = false;
            return None;
        }
        if self.queue.is_empty() {
            // Nobody waits: only pods that refused a connection are probed, to route to them again.
            return Some(self.endpoints.failed().to_vec());
        }
        Some(self.endpoints.starting().to_vec())
    }

    /// A starting pod answered a probe: route to it now, before its EndpointSlice says ready.
    pub fn mark_answering(
        &mut self,
        address: SocketAddr,
        now: Instant,
        rng: &mut impl Rng,
        fx: &mut Effects<W>,
    ) {
        if self.endpoints.mark_answering(address) {
            self.dispatch(now, rng, fx);
        }
    }
}
