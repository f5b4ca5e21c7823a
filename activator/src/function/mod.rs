//! The per-function state machine: routable endpoints, the wait queue, the cold-episode flag and the
//! time-weighted presence counter, all behind one short `std::sync::Mutex` that is never held across
//! an `.await`.
//!
//! Endpoints come in through [`FunctionState::update`] (from Kubernetes or a static file) and through
//! [`FunctionState::mark_answering`] (from direct probing). Requests come in through
//! [`FunctionState::admit`]. Side effects that need IO (the demand signal, starting a probe) go out
//! through the [`Wakeups`] hooks, called after the lock is released.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Instant,
};

use tokio::sync::oneshot;
use zeroscale_common::signals::FunctionKey;
use zeroscale_crds::function::Visibility;

pub mod lease;

pub use lease::{Admission, Lease, Outcome, Ticket};

use crate::{
    balancer,
    endpoints::{Endpoint, EndpointSet},
    error::ProxyError,
    metrics::FunctionMetrics,
    queue::{QueueLimits, WaitQueue},
    settings::{EndpointInfo, FunctionSettings, Limits, Port},
    stats::{PeriodReport, Presence},
};

/// IO the state machine asks for; implementations must not block (spawn instead).
pub trait Wakeups: Send + Sync + 'static {
    /// A request found the function with no ready pod: send `dev.zeroscale.demand` now.
    fn demand(&self, function: &Arc<FunctionState>, queued: u64);
    /// Requests wait and some pods are known but not ready: probe them until one answers.
    fn probe(&self, function: &Arc<FunctionState>);
}

struct Inner {
    settings: FunctionSettings,
    endpoints: EndpointSet,
    queue: WaitQueue<oneshot::Sender<Outcome>>,
    cold: bool,
    probing: bool,
    deleted: bool,
    presence: Presence,
    metrics: FunctionMetrics,
}

/// Whether a prober should run: requests wait and some pod is starting, or some pod refused a
/// connection and must answer a probe before it is routed to again.
fn probe_wanted(g: &Inner) -> bool {
    (!g.queue.is_empty() && !g.endpoints.starting().is_empty()) || !g.endpoints.failed().is_empty()
}

/// Everything the activator knows and tracks about one function.
pub struct FunctionState {
    key: FunctionKey,
    display: String,
    inner: Mutex<Inner>,
    wakeups: Arc<dyn Wakeups>,
}

impl std::fmt::Debug for FunctionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionState")
            .field("key", &self.display)
            .finish_non_exhaustive()
    }
}

impl FunctionState {
    /// A function with no endpoints yet.
    pub fn new(
        key: FunctionKey,
        settings: FunctionSettings,
        limits: QueueLimits,
        budget: crate::queue::BufferBudget,
        metrics: FunctionMetrics,
        wakeups: Arc<dyn Wakeups>,
    ) -> Arc<Self> {
        let display = key.to_string();
        Arc::new(Self {
            key,
            display,
            inner: Mutex::new(Inner {
                settings,
                endpoints: EndpointSet::default(),
                queue: WaitQueue::new(limits, budget),
                cold: false,
                probing: false,
                deleted: false,
                presence: Presence::new(Instant::now()),
                metrics,
            }),
            wakeups,
        })
    }

    /// Namespace and name.
    pub fn key(&self) -> &FunctionKey {
        &self.key
    }

    /// `<namespace>/<name>`, for messages.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The function's limits, or `None` when it is not served on `port` (deleted, or cluster-local
    /// and asked for on the external port).
    pub fn limits_on(&self, port: Port) -> Option<Limits> {
        let g = self.lock();
        let hidden = port == Port::External && g.settings.visibility == Visibility::ClusterLocal;
        (!g.deleted && !hidden).then(|| Limits::of(&g.settings))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving rather than poisoning
        // every later request.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a request that arrived at `arrived` on `port`, accounting `bytes()` if it has to wait
    /// (computed only then, to keep the warm path cheap).
    pub fn admit(
        self: &Arc<Self>,
        port: Port,
        bytes: impl FnOnce() -> usize,
        arrived: Instant,
    ) -> Result<Admission, ProxyError> {
        let mut demand = None;
        let mut probe = false;
        let admission = {
            let mut g = self.lock();
            if g.deleted || (port == Port::External && g.settings.visibility == Visibility::ClusterLocal) {
                return Err(ProxyError::UnknownFunction(self.display.clone()));
            }
            g.presence.arrive();
            if g.endpoints.routable().is_empty()
                && let Some(failure) = &g.settings.failure
            {
                return Err(self.startup_failed(failure.reason.clone(), failure.message.clone()));
            }
            let limit = g.settings.concurrency as usize;
            if g.queue.is_empty()
                && let Some(i) = balancer::pick(g.endpoints.routable(), limit, &mut rand::rng())
            {
                let endpoint = Arc::clone(&g.endpoints.routable()[i]);
                let limits = Limits::of(&g.settings);
                g.presence.enter(arrived);
                return Ok(Admission::Go(self.grant(&mut g, endpoint, arrived, limits)));
            }
            let cold = g.endpoints.routable().is_empty() && !g.cold;
            let (sender, receiver) = oneshot::channel();
            let limits = Limits::of(&g.settings);
            match g.queue.push(bytes(), cold, sender, arrived) {
                Err((overflow, _)) => {
                    return Err(ProxyError::QueueFull {
                        function: self.display.clone(),
                        limit: overflow.limit_name(),
                    });
                }
                Ok(id) => {
                    g.presence.enter(arrived);
                    g.metrics.queue_depth.inc();
                    if cold {
                        g.cold = true;
                        g.metrics.cold_starts.inc();
                        demand = Some(g.queue.len() as u64);
                    }
                    if !g.endpoints.starting().is_empty() && !g.probing {
                        g.probing = true;
                        probe = true;
                    }
                    Admission::Wait(Ticket {
                        function: Arc::clone(self),
                        id,
                        receiver,
                        settled: false,
                        limits,
                    })
                }
            }
        };
        if let Some(queued) = demand {
            self.wakeups.demand(self, queued);
        }
        if probe {
            self.wakeups.probe(self);
        }
        Ok(admission)
    }

    fn startup_failed(&self, reason: String, message: String) -> ProxyError {
        ProxyError::StartupFailed {
            function: self.display.clone(),
            reason,
            message,
        }
    }

    fn grant(
        self: &Arc<Self>,
        g: &mut Inner,
        endpoint: Arc<Endpoint>,
        arrived: Instant,
        limits: Limits,
    ) -> Lease {
        endpoint.start();
        g.metrics.in_flight.inc();
        Lease {
            function: Arc::clone(self),
            endpoint,
            arrived,
            limits,
            status: 502,
            returned: false,
        }
    }

    /// The request on `lease` never reached its pod. Gives the slot back (counting no response),
    /// marks the pod failed when it refused the connection (`pod_failed`), and admits the request
    /// again ahead of every waiter: to another pod with room at once, or to the front of the queue
    /// until a pod can take it. The request keeps its arrival time, so its deadline does not move.
    pub fn retry(
        self: &Arc<Self>,
        mut lease: Lease,
        pod_failed: bool,
        bytes: usize,
    ) -> Result<Admission, ProxyError> {
        lease.returned = true;
        lease.endpoint.finish();
        let arrived = lease.arrived;
        let mut demand = None;
        let mut probe = false;
        let admission = {
            let mut g = self.lock();
            g.metrics.in_flight.dec();
            if pod_failed && g.endpoints.mark_failed(lease.endpoint.address) {
                tracing::info!(function = %self.display, address = %lease.endpoint.address, "pod refused a connection: routing around it until it answers");
            }
            let now = Instant::now();
            if g.deleted {
                g.presence.leave(now);
                return Err(ProxyError::FunctionDeleted(self.display.clone()));
            }
            if g.endpoints.routable().is_empty()
                && let Some(failure) = g.settings.failure.clone()
            {
                g.presence.leave(now);
                return Err(self.startup_failed(failure.reason, failure.message));
            }
            let limits = Limits::of(&g.settings);
            let limit = g.settings.concurrency as usize;
            // Still present: it moves from a pod back to the head of the line (or to another pod).
            if let Some(i) = balancer::pick(g.endpoints.routable(), limit, &mut rand::rng()) {
                let endpoint = Arc::clone(&g.endpoints.routable()[i]);
                Admission::Go(self.grant(&mut g, endpoint, arrived, limits))
            } else {
                let (sender, receiver) = oneshot::channel();
                let id = g.queue.push_front(bytes, sender, arrived);
                g.metrics.queue_depth.inc();
                if g.endpoints.routable().is_empty() && !g.cold {
                    g.cold = true;
                    g.metrics.cold_starts.inc();
                    demand = Some(g.queue.len() as u64);
                }
                probe = self.needs_probe(&mut g);
                Admission::Wait(Ticket {
                    function: Arc::clone(self),
                    id,
                    receiver,
                    settled: false,
                    limits,
                })
            }
        };
        drop(lease);
        if let Some(queued) = demand {
            self.wakeups.demand(self, queued);
        }
        if probe {
            self.wakeups.probe(self);
        }
        Ok(admission)
    }

    /// Hands queued requests to endpoints with room, oldest first. Returns leases whose waiter had
    /// already gone; the caller drops them after unlocking (dropping one takes the lock).
    fn dispatch(self: &Arc<Self>, g: &mut Inner) -> Vec<Lease> {
        let mut undelivered = Vec::new();
        let limit = g.settings.concurrency as usize;
        let limits = Limits::of(&g.settings);
        let mut rng = rand::rng();
        let now = Instant::now();
        while !g.queue.is_empty() {
            let Some(i) = balancer::pick(g.endpoints.routable(), limit, &mut rng) else {
                break;
            };
            let Some(waiter) = g.queue.pop() else { break };
            g.metrics.queue_depth.dec();
            let waited = now.saturating_duration_since(waiter.enqueued).as_secs_f64();
            g.metrics.queue_wait.observe(waited);
            if waiter.cold {
                g.metrics.cold_start_duration.observe(waited);
            }
            let endpoint = Arc::clone(&g.endpoints.routable()[i]);
            let lease = self.grant(g, endpoint, waiter.enqueued, limits);
            if let Err(Ok(lease)) = waiter.notify.send(Ok(lease)) {
                undelivered.push(lease);
            }
        }
        self.end_episode_if_idle(g);
        undelivered
    }

    fn end_episode_if_idle(&self, g: &mut Inner) {
        // A cold episode ends when a pod is routable, or when nobody waits any more (every waiter
        // timed out or left): the next request at zero sends a fresh demand.
        if !g.endpoints.routable().is_empty() || g.queue.is_empty() {
            g.cold = false;
        }
    }

    pub(crate) fn release(self: &Arc<Self>, endpoint: &Endpoint, arrived: Instant, status: u16) {
        endpoint.finish();
        let now = Instant::now();
        let undelivered = {
            let mut g = self.lock();
            g.metrics.in_flight.dec();
            g.metrics.count_response(status);
            g.metrics
                .duration
                .observe(now.saturating_duration_since(arrived).as_secs_f64());
            g.presence.leave(now);
            if g.queue.is_empty() {
                Vec::new()
            } else {
                self.dispatch(&mut g)
            }
        };
        drop(undelivered);
    }

    /// Frees the slot of a lease whose request was never sent, counting no response.
    pub(crate) fn give_back(self: &Arc<Self>, endpoint: &Endpoint) {
        endpoint.finish();
        let undelivered = {
            let mut g = self.lock();
            g.metrics.in_flight.dec();
            g.presence.leave(Instant::now());
            self.dispatch(&mut g)
        };
        drop(undelivered);
    }

    pub(crate) fn abandon(&self, id: u64) {
        let mut g = self.lock();
        if g.queue.remove(id).is_some() {
            g.metrics.queue_depth.dec();
            g.presence.leave(Instant::now());
            self.end_episode_if_idle(&mut g);
        }
    }

    /// Counts a response the activator produced itself (an error) for this function.
    pub fn record_error(&self, error: &ProxyError) {
        let mut g = self.lock();
        g.metrics.count_response(error.status().as_u16());
        if let Some(reason) = error.rejection_reason() {
            g.metrics.count_rejection(reason);
        }
    }

    /// Counts a request sent again because its pod went away (`zeroscale_activator_upstream_retries_total`).
    pub fn record_retry(&self, reason: &'static str) {
        self.lock().metrics.count_retry(reason);
    }

    /// Counts a request lost because its pod went away (`zeroscale_activator_upstream_lost_total`).
    pub fn record_lost(&self, reason: &'static str) {
        self.lock().metrics.count_lost(reason);
    }

    /// Replaces the function's settings and endpoints with what was last reported.
    pub fn update(self: &Arc<Self>, settings: FunctionSettings, endpoints: Vec<EndpointInfo>) {
        let (undelivered, probe) = {
            let mut g = self.lock();
            g.settings = settings;
            g.endpoints.replace(endpoints);
            g.deleted = false;
            if g.endpoints.routable().is_empty()
                && let Some(failure) = g.settings.failure.clone()
            {
                self.fail_waiters(&mut g, || {
                    self.startup_failed(failure.reason.clone(), failure.message.clone())
                });
            }
            let undelivered = self.dispatch(&mut g);
            (undelivered, self.needs_probe(&mut g))
        };
        drop(undelivered);
        if probe {
            self.wakeups.probe(self);
        }
    }

    /// The function was deleted: waiting requests get 404, new ones too (until it is re-created).
    pub fn remove(self: &Arc<Self>) {
        let mut g = self.lock();
        g.deleted = true;
        g.endpoints.replace(Vec::new());
        let display = self.display.clone();
        self.fail_waiters(&mut g, || ProxyError::FunctionDeleted(display.clone()));
    }

    fn fail_waiters(&self, g: &mut Inner, error: impl Fn() -> ProxyError) {
        let now = Instant::now();
        for waiter in g.queue.drain() {
            g.metrics.queue_depth.dec();
            g.presence.leave(now);
            let e = error();
            g.metrics.count_response(e.status().as_u16());
            if let Some(reason) = e.rejection_reason() {
                g.metrics.count_rejection(reason);
            }
            // The waiter is settled by the error: its ticket will not try to leave the queue again.
            let _ = waiter.notify.send(Err(e));
        }
        g.cold = false;
    }

    fn needs_probe(&self, g: &mut Inner) -> bool {
        let needed = probe_wanted(g) && !g.probing;
        if needed {
            g.probing = true;
        }
        needed
    }

    /// Addresses to probe now, or `None` when probing should stop (nobody waits, or no pod is
    /// starting); stopping clears the probing flag so a later request starts a new prober.
    pub fn probe_targets(&self) -> Option<Vec<SocketAddr>> {
        let mut g = self.lock();
        if !probe_wanted(&g) || g.deleted {
            g.probing = false;
            return None;
        }
        if g.queue.is_empty() {
            // Nobody waits: only pods that refused a connection are probed, to route to them again.
            return Some(g.endpoints.failed().to_vec());
        }
        Some(g.endpoints.starting().to_vec())
    }

    /// A starting pod answered a probe: route to it now, before its EndpointSlice says ready.
    pub fn mark_answering(self: &Arc<Self>, address: SocketAddr) {
        let undelivered = {
            let mut g = self.lock();
            if !g.endpoints.mark_answering(address) {
                return;
            }
            self.dispatch(&mut g)
        };
        drop(undelivered);
    }

    /// Closes the stats period: `(report, queued)` when there is something to report.
    pub fn take_report(&self, now: Instant) -> Option<(PeriodReport, u64)> {
        let mut g = self.lock();
        let queued = g.queue.len() as u64;
        g.presence.report(now).map(|r| (r, queued))
    }

    /// Requests queued now.
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    /// Requests queued or in flight now.
    pub fn present(&self) -> u64 {
        self.lock().presence.present()
    }

    /// Addresses routable now.
    pub fn routable(&self) -> Vec<SocketAddr> {
        self.lock()
            .endpoints
            .routable()
            .iter()
            .map(|e| e.address)
            .collect()
    }
}
