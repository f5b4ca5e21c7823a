//! The pure per-function state machine: admission, the wait queue, leasing and dispatch. Every
//! transition takes the time (`now`) and, where it picks a pod, a random source; it changes the state
//! and records what the IO shell ([`crate::function::FunctionState`]) must do afterwards in [`Effects`]: hand a
//! pod to a waiter, fail waiters, send demand, start a prober, update metrics. Nothing here reads a
//! clock, touches a metric or a channel, so it is tested on a virtual clock (`function/core_tests.rs`).

use std::{net::SocketAddr, sync::Arc};

use rand::Rng;
use tokio::time::Instant;
use zeroscale_crds::function::Visibility;

pub mod drain;
mod sources;
pub mod throttle;

use super::effects::{Admit, Effects};
use crate::{
    balancer,
    endpoints::{Endpoint, EndpointSet},
    error::ProxyError,
    queue::{BufferBudget, Overflow, QueueLimits, WaitQueue},
    settings::{FunctionSettings, Limits, Port},
    stats::{PeriodReport, Presence},
};

/// Why a state left the routing table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gone {
    /// Its function was deleted: requests get 404.
    Deleted,
    /// Another entry of the same function took its place: requests are routed again.
    Superseded,
}

/// One function's state; `W` is how a waiter is handed its outcome (a channel in the shell).
#[derive(Debug)]
pub struct Core<W> {
    display: String,
    settings: FunctionSettings,
    endpoints: EndpointSet,
    queue: WaitQueue<W>,
    cold: bool,
    // Whether the cold episode has stamped the first pod address it knew (`note_address`).
    address_noted: bool,
    // The requests the cold episode's latest demand counted.
    demanded: u64,
    probing: bool,
    // Set once the state left the routing table, and why.
    gone: Option<Gone>,
    presence: Presence,
    throttle: throttle::Throttle,
}

impl<W> Core<W> {
    /// A function called `display` (`<namespace>/<name>`, for errors) with no endpoints, at `now`.
    pub fn new(
        display: String,
        settings: FunctionSettings,
        limits: QueueLimits,
        budget: BufferBudget,
        now: Instant,
    ) -> Self {
        Self {
            display,
            settings,
            endpoints: EndpointSet::default(),
            queue: WaitQueue::new(limits, budget),
            cold: false,
            address_noted: false,
            demanded: 0,
            probing: false,
            gone: None,
            presence: Presence::new(now),
            throttle: throttle::Throttle::new(now),
        }
    }

    /// Whether the function is served on `port` (not deleted, and not cluster-local on the external
    /// port).
    pub fn serves(&self, port: Port) -> bool {
        let hidden = port == Port::External && self.settings.visibility == Visibility::ClusterLocal;
        self.gone.is_none() && !hidden
    }

    /// The function's settings now.
    pub fn settings(&self) -> &FunctionSettings {
        &self.settings
    }

    /// The function's timeouts and protocol now.
    pub fn limits(&self) -> Limits {
        Limits::of(&self.settings)
    }

    pub(super) fn startup_failure(&self) -> Option<ProxyError> {
        if !self.endpoints.routable().is_empty() {
            return None;
        }
        let failure = self.settings.failure.as_ref()?;
        Some(ProxyError::StartupFailed {
            function: self.display.clone(),
            reason: failure.reason.clone(),
            message: failure.message.clone(),
        })
    }

    fn pick(&self, rng: &mut impl Rng) -> Option<Arc<Endpoint>> {
        // `maxConcurrency` holds requests in the queue like a full pod does.
        if !self.throttle.has_room(&self.settings) {
            return None;
        }
        let routable = self.endpoints.routable();
        let i = balancer::pick(routable, self.settings.concurrency as usize, rng)?;
        Some(Arc::clone(&routable[i]))
    }

    fn grant(&mut self, endpoint: Arc<Endpoint>, fx: &mut Effects<W>) -> Arc<Endpoint> {
        // Counted under the state's lock, so the balancer's check-then-take is not racy.
        endpoint.start();
        self.throttle.started();
        fx.metrics.in_flight += 1;
        endpoint
    }

    /// A cold episode starts when a request waits with no routable pod, and sends demand. While it
    /// lasts, demand goes out again each time the queue needs at least twice the pods the latest
    /// demand counted (`concurrency` requests a pod), so the pods a burst needs start together
    /// rather than one at once and the rest a tick or more after the first is ready (#19's P5). A
    /// burst of 1,000 at `concurrency: 10` sends 7 demands, at 1, 11, 31, 71, … 631 waiting.
    fn maybe_demand(&mut self, fx: &mut Effects<W>) {
        if !self.endpoints.routable().is_empty() {
            return;
        }
        let queued = self.queue.len() as u64;
        if !self.cold {
            self.cold = true;
            self.address_noted = false;
            fx.metrics.cold_starts += 1;
            self.note_address(fx);
        } else if pods_for(queued, self.settings.concurrency)
            < 2 * pods_for(self.demanded, self.settings.concurrency)
        {
            return;
        }
        self.demanded = queued;
        fx.demand = Some(queued);
    }

    /// Admits a request that arrived at `arrived` on `port`: a pod now ([`Admit::Go`]), or a place in
    /// the queue holding `waiter()`, accounting `bytes()` (both computed only when it waits).
    pub fn admit(
        &mut self,
        port: Port,
        arrived: Instant,
        bytes: impl FnOnce() -> usize,
        waiter: impl FnOnce() -> W,
        rng: &mut impl Rng,
        fx: &mut Effects<W>,
    ) -> Result<Admit, ProxyError> {
        if self.gone == Some(Gone::Superseded) {
            return Err(self.gone_error());
        }
        if !self.serves(port) {
            return Err(ProxyError::UnknownFunction(self.display.clone()));
        }
        self.presence.arrive();
        if let Some(e) = self.startup_failure() {
            return Err(e);
        }
        let limits = self.limits();
        if self.queue.is_empty()
            && let Some(endpoint) = self.pick(rng)
        {
            self.presence.enter(arrived);
            return Ok(Admit::Go {
                endpoint: self.grant(endpoint, fx),
                limits,
            });
        }
        let cold = self.endpoints.routable().is_empty() && !self.cold;
        let pushed = if self.throttle.queue_full(&self.settings, self.queue.len()) {
            Err(Overflow::FunctionRequests)
        } else {
            self.queue
                .push(bytes(), cold, waiter(), arrived)
                .map_err(|(overflow, _)| overflow)
        };
        let id = match pushed {
            Ok(id) => id,
            Err(overflow) => {
                let queued = self.queue.len();
                return Err(self
                    .throttle
                    .refuse(&self.display, &self.settings, overflow, queued, arrived));
            }
        };
        self.presence.enter(arrived);
        fx.metrics.queue_depth += 1;
        self.maybe_demand(fx);
        if !self.endpoints.starting().is_empty() && !self.probing {
            self.probing = true;
            fx.probe = true;
        }
        Ok(Admit::Wait { id, limits })
    }

    /// The request on `endpoint` (arrived at `arrived`) never reached its pod. Frees the slot,
    /// marks the pod failed when it refused the connection (`pod_failed`), and admits the request
    /// again ahead of every waiter: to a pod with room at once, or to the front of the queue.
    #[allow(clippy::too_many_arguments)] // one transition: the request, the time, the rng and the effects
    pub fn retry(
        &mut self,
        endpoint: &Endpoint,
        pod_failed: bool,
        arrived: Instant,
        bytes: usize,
        waiter: impl FnOnce() -> W,
        now: Instant,
        rng: &mut impl Rng,
        fx: &mut Effects<W>,
    ) -> Result<Admit, ProxyError> {
        endpoint.finish();
        self.throttle.finished(now, false);
        fx.metrics.in_flight -= 1;
        if pod_failed && self.endpoints.mark_failed(endpoint.address) {
            fx.failed_pod = Some(endpoint.address);
        }
        if self.gone.is_some() {
            self.presence.leave(now);
            return Err(self.gone_error());
        }
        if let Some(e) = self.startup_failure() {
            self.presence.leave(now);
            return Err(e);
        }
        let limits = self.limits();
        // Still present: it moves from a pod back to the head of the line (or to another pod).
        if let Some(endpoint) = self.pick(rng) {
            return Ok(Admit::Go {
                endpoint: self.grant(endpoint, fx),
                limits,
            });
        }
        let id = self.queue.push_front(bytes, waiter(), arrived);
        fx.metrics.queue_depth += 1;
        self.maybe_demand(fx);
        self.want_probe(fx);
        Ok(Admit::Wait { id, limits })
    }

    /// Hands queued requests to endpoints with room, oldest first.
    pub(super) fn dispatch(&mut self, now: Instant, rng: &mut impl Rng, fx: &mut Effects<W>) {
        let limits = self.limits();
        while !self.queue.is_empty() {
            let Some(endpoint) = self.pick(rng) else { break };
            let Some(waiter) = self.queue.pop() else { break };
            fx.metrics.queue_depth -= 1;
            fx.metrics
                .waits
                .push((now.saturating_duration_since(waiter.enqueued), waiter.cold));
            let endpoint = self.grant(endpoint, fx);
            fx.grants.push(super::effects::Grant {
                waiter: waiter.notify,
                endpoint,
                arrived: waiter.enqueued,
                limits,
                cold: waiter.cold,
            });
        }
        self.end_episode_if_idle();
    }

    /// Stamps, once per cold episode, when a pod address the episode can wait for is first known
    /// (a starting pod's IP from the pod watch, or an endpoint): the moment from which forwarding
    /// is the activator's own work (probe and hand-over), and before which it was the address's way
    /// from the kubelet through the API server (#19's P3, split in `docs/benchmarks.md`).
    pub(super) fn note_address(&mut self, fx: &mut Effects<W>) {
        let known = !self.endpoints.starting().is_empty() || !self.endpoints.routable().is_empty();
        if self.cold && !self.address_noted && known {
            self.address_noted = true;
            fx.metrics.cold_address_known = true;
        }
    }

    pub(super) fn end_episode_if_idle(&mut self) {
        // A cold episode ends when a pod is routable, or when nobody waits any more (every waiter
        // timed out or left): the next request at zero sends a fresh demand.
        if !self.endpoints.routable().is_empty() || self.queue.is_empty() {
            self.cold = false;
        }
    }

    /// A request on `endpoint` that arrived at `arrived` was answered with `status` at `now`.
    pub fn release(
        &mut self,
        endpoint: &Endpoint,
        arrived: Instant,
        status: u16,
        now: Instant,
        rng: &mut impl Rng,
        fx: &mut Effects<W>,
    ) {
        endpoint.finish();
        self.throttle.finished(now, true);
        fx.metrics.in_flight -= 1;
        fx.metrics.responses.push(status);
        fx.metrics.duration = Some(now.saturating_duration_since(arrived));
        self.presence.leave(now);
        if !self.queue.is_empty() {
            self.dispatch(now, rng, fx);
        }
    }

    /// Frees the slot of a request on `endpoint` that was never sent, counting no response.
    pub fn give_back(&mut self, endpoint: &Endpoint, now: Instant, rng: &mut impl Rng, fx: &mut Effects<W>) {
        endpoint.finish();
        self.throttle.finished(now, false);
        fx.metrics.in_flight -= 1;
        self.presence.leave(now);
        self.dispatch(now, rng, fx);
    }

    /// The waiter `id` gave up (its deadline passed or its client went away).
    pub fn abandon(&mut self, id: u64, now: Instant, fx: &mut Effects<W>) {
        if self.queue.remove(id).is_some() {
            fx.metrics.queue_depth -= 1;
            self.presence.leave(now);
            self.end_episode_if_idle();
        }
    }

    /// Closes the stats period at `now`: `(report, queued)` when there is something to report.
    pub fn take_report(&mut self, now: Instant) -> Option<(PeriodReport, u64)> {
        let queued = self.queue.len() as u64;
        self.presence.report(now).map(|r| (r, queued))
    }

    /// Requests this activator has on the function's pods now.
    pub fn in_flight(&self) -> usize {
        self.throttle.in_flight()
    }

    /// Requests queued now.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Requests queued or in flight now.
    pub fn present(&self) -> u64 {
        self.presence.present()
    }

    /// Addresses routable now.
    pub fn routable(&self) -> Vec<SocketAddr> {
        self.endpoints.routable().iter().map(|e| e.address).collect()
    }

    /// Routable pods with at least one request in flight from here, and with none.
    pub fn instance_states(&self) -> (u64, u64) {
        let routable = self.endpoints.routable();
        let busy = routable.iter().filter(|e| e.in_flight() > 0).count() as u64;
        (busy, routable.len() as u64 - busy)
    }

    /// Whether a cold episode is open (demand was sent and no pod is routable yet).
    pub fn is_cold(&self) -> bool {
        self.cold
    }
}

/// The pods `queued` requests need at `concurrency` requests a pod (0: unlimited, one pod).
fn pods_for(queued: u64, concurrency: u32) -> u64 {
    match concurrency {
        0 => queued.min(1),
        c => queued.div_ceil(u64::from(c)),
    }
}
