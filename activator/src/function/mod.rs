//! One function as the activator tracks it: the pure state machine ([`core`]) behind one short
//! `std::sync::Mutex` that is never held across an `.await`, and the IO shell around it.
//!
//! Every entry point reads the clock and takes a random source *before* locking, runs one transition
//! of the core, and applies the [`effects`] it returned after unlocking: metric changes, waiters handed
//! a [`Lease`] or an error through their channels, and the [`Wakeups`] (demand signal, prober).
//! Endpoints come in through [`FunctionState::update`] (from Kubernetes or a static file) and through
//! [`FunctionState::mark_answering`] (from direct probing); requests through [`FunctionState::admit`].

mod apply;
pub mod core;
pub mod effects;
pub mod lease;
pub mod record;

#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod throttle_tests;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
};

use lease::Handed;
pub use lease::{Admission, Lease, Outcome, Ticket};
use record::{RecordSink, Recorder, RequestRecord};
use tokio::{sync::oneshot, time::Instant};
use zeroscale_common::signals::FunctionKey;

use self::{
    core::Core,
    effects::{Admit, Effects},
};
use crate::{
    endpoints::Endpoint,
    error::ProxyError,
    metering::{FunctionMeter, MeterConfig, ResourceDefaults, Resources, usage::UsageTotals},
    metrics::FunctionMetrics,
    queue::{BufferBudget, QueueLimits},
    settings::{EndpointInfo, FunctionSettings, Limits, Port},
    stats::PeriodReport,
};

/// IO the state machine asks for; implementations must not block (spawn instead).
pub trait Wakeups: Send + Sync + 'static {
    /// A request found the function with no ready pod: send `dev.zeroscale.demand` now.
    fn demand(&self, function: &Arc<FunctionState>, queued: u64);
    /// Requests wait and some pods are known but not ready: probe them until one answers.
    fn probe(&self, function: &Arc<FunctionState>);
}

/// Wakeups that do nothing: for a caller that drives demand and probing itself (tests running their
/// own prober, a state kept outside the activator's loops).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoWakeups;

impl Wakeups for NoWakeups {
    fn demand(&self, _: &Arc<FunctionState>, _: u64) {}
    fn probe(&self, _: &Arc<FunctionState>) {}
}

/// The record sink that meters each request on its function ([`FunctionState::meter`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct MeterSink;

impl RecordSink for MeterSink {
    fn record(&self, record: &RequestRecord<'_>) {
        if let Some(function) = record.function {
            function.meter(record);
        }
    }
}

/// What a function's requests are recorded and metered with (the same for every function).
#[derive(Clone, Debug)]
pub struct Hooks {
    /// Where request records go.
    pub recorder: Recorder,
    /// How each function's meter is built.
    pub meter: MeterConfig,
}

/// How a waiting request is handed its outcome.
type Waiter = oneshot::Sender<Handed>;

/// Makes a waiter's channel when the core queues the request (and only then: the warm path pays for
/// no channel), leaving the receiving end in `slot`.
fn waiter_channel(slot: &mut Option<oneshot::Receiver<Handed>>) -> impl FnOnce() -> Waiter + '_ {
    move || {
        let (sender, receiver) = oneshot::channel();
        *slot = Some(receiver);
        sender
    }
}

/// Everything the activator knows and tracks about one function.
pub struct FunctionState {
    key: FunctionKey,
    display: String,
    core: Mutex<Core<Waiter>>,
    // Apart from the core: metrics are updated after the core's lock is released.
    metrics: Mutex<FunctionMetrics>,
    wakeups: Arc<dyn Wakeups>,
    recorder: Recorder,
    // Apart from the core and the request metrics: records are metered after the response ended.
    meter: Mutex<FunctionMeter>,
    defaults: ResourceDefaults,
    // When the latest demand signal was sent (the cold-start anatomy's second stamp).
    demand_sent: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for FunctionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionState")
            .field("key", &self.display)
            .finish_non_exhaustive()
    }
}

/// A panic while holding a lock leaves plain data behind; keep serving rather than poisoning every
/// later request.
fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl FunctionState {
    /// A function with no endpoints yet.
    pub fn new(
        key: FunctionKey,
        settings: FunctionSettings,
        limits: QueueLimits,
        budget: BufferBudget,
        metrics: FunctionMetrics,
        wakeups: Arc<dyn Wakeups>,
    ) -> Arc<Self> {
        let meter = MeterConfig {
            families: Arc::default(),
            defaults: ResourceDefaults::default(),
            keep_usage: false,
        };
        let hooks = Hooks {
            recorder: Recorder::default(),
            meter,
        };
        Self::hooked(key, settings, limits, budget, metrics, wakeups, &hooks)
    }

    /// A function `namespace/name` for unit tests: default settings, room for 10 queued requests.
    #[cfg(test)]
    pub(crate) fn for_tests(namespace: &str, name: &str) -> Arc<Self> {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(crate::metrics::Metrics::register(&mut registry));
        let key = FunctionKey::new(namespace, name);
        let limits = QueueLimits {
            max_requests: 10,
            max_bytes: 1 << 20,
        };
        let budget = BufferBudget::new(1 << 20);
        let metrics = metrics.for_function(&key);
        Self::new(
            key,
            FunctionSettings::default(),
            limits,
            budget,
            metrics,
            Arc::new(NoWakeups),
        )
    }

    /// A function with no endpoints yet whose requests' records go to `hooks.recorder`, metered
    /// on a meter from `hooks.meter`.
    pub fn hooked(
        key: FunctionKey,
        settings: FunctionSettings,
        limits: QueueLimits,
        budget: BufferBudget,
        metrics: FunctionMetrics,
        wakeups: Arc<dyn Wakeups>,
        hooks: &Hooks,
    ) -> Arc<Self> {
        let mut meter = hooks.meter.for_function(&key);
        meter.resources = settings.declared.or(hooks.meter.defaults);
        let display = key.to_string();
        let core = Core::new(display.clone(), settings, limits, budget, Instant::now());
        Arc::new(Self {
            key,
            display,
            core: Mutex::new(core),
            metrics: Mutex::new(metrics),
            wakeups,
            recorder: hooks.recorder.clone(),
            meter: Mutex::new(meter),
            defaults: hooks.meter.defaults,
            demand_sent: Mutex::new(None),
        })
    }

    /// When the latest demand signal was sent for this function.
    pub fn demand_sent(&self) -> Option<Instant> {
        *relock(&self.demand_sent)
    }

    /// The Function object's uid, when it came from Kubernetes.
    pub fn uid(&self) -> Option<String> {
        self.lock().settings().uid.clone()
    }

    /// Meters one finished request of this function (see [`crate::metering`]).
    pub fn meter(&self, record: &RequestRecord<'_>) {
        let invocation = record.forwarded.map(|_| record.invocation());
        relock(&self.meter).record(record.revision, record.outcome.label(), record.cold, invocation);
    }

    /// Takes the usage not flushed yet, per revision.
    pub fn take_usage(&self) -> Vec<(Option<Arc<str>>, UsageTotals)> {
        relock(&self.meter).take_usage()
    }

    /// Adds `elapsed` to the busy or idle instance time of each routable pod, by whether this
    /// activator has a request in flight to it.
    pub fn sample_instances(&self, elapsed: std::time::Duration) {
        let (busy, idle) = self.lock().instance_states();
        if busy + idle == 0 {
            return;
        }
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        relock(&self.meter).instances(None, busy * ms, idle * ms);
    }

    /// What one pod of this function is billed for now.
    pub fn resources(&self) -> Resources {
        relock(&self.meter).resources
    }

    /// Where the records of this function's requests go.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Namespace and name.
    pub fn key(&self) -> &FunctionKey {
        &self.key
    }

    /// `<namespace>/<name>`, for messages.
    pub fn display(&self) -> &str {
        &self.display
    }

    fn lock(&self) -> MutexGuard<'_, Core<Waiter>> {
        relock(&self.core)
    }

    /// The function's limits, or `None` when it is not served on `port` (deleted, or cluster-local
    /// and asked for on the external port).
    pub fn limits_on(&self, port: Port) -> Option<Limits> {
        let core = self.lock();
        core.serves(port).then(|| core.limits())
    }

    /// Runs one transition of the core with a fresh effects list, then applies the effects.
    fn transition<R>(self: &Arc<Self>, step: impl FnOnce(&mut Core<Waiter>, &mut Effects<Waiter>) -> R) -> R {
        let mut fx = Effects::default();
        let result = step(&mut self.lock(), &mut fx);
        self.apply(fx);
        result
    }

    fn lease(self: &Arc<Self>, endpoint: Arc<Endpoint>, arrived: Instant, limits: Limits) -> Lease {
        Lease {
            function: Arc::clone(self),
            endpoint,
            arrived,
            limits,
            status: 502,
            cold: false,
            returned: false,
        }
    }

    fn admission(
        self: &Arc<Self>,
        admit: Admit,
        arrived: Instant,
        receiver: Option<oneshot::Receiver<Handed>>,
    ) -> Result<Admission, ProxyError> {
        match (admit, receiver) {
            (Admit::Go { endpoint, limits }, _) => Ok(Admission::Go(self.lease(endpoint, arrived, limits))),
            (Admit::Wait { id, limits }, Some(receiver)) => Ok(Admission::Wait(Ticket {
                function: Arc::clone(self),
                id,
                receiver,
                settled: false,
                timeout: limits.timeout,
            })),
            // The core queues a request only with the waiter it was given; without one the queue entry
            // would have no way to be answered, so the request is refused rather than parked forever.
            (Admit::Wait { id, .. }, None) => {
                self.abandon(id);
                Err(ProxyError::FunctionDeleted(self.display.clone()))
            }
        }
    }

    /// Admits a request that arrived at `arrived` on `port`, accounting `bytes()` if it has to wait
    /// (computed only then, to keep the warm path cheap).
    pub fn admit(
        self: &Arc<Self>,
        port: Port,
        bytes: impl FnOnce() -> usize,
        arrived: impl Into<Instant>,
    ) -> Result<Admission, ProxyError> {
        let arrived = arrived.into();
        let mut receiver = None;
        let waiter = waiter_channel(&mut receiver);
        let mut rng = rand::rng();
        let admit = self.transition(|core, fx| core.admit(port, arrived, bytes, waiter, &mut rng, fx))?;
        self.admission(admit, arrived, receiver)
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
        let arrived = lease.arrived;
        let now = Instant::now();
        let mut receiver = None;
        let waiter = waiter_channel(&mut receiver);
        let mut rng = rand::rng();
        let admit = self.transition(|core, fx| {
            core.retry(
                &lease.endpoint,
                pod_failed,
                arrived,
                bytes,
                waiter,
                now,
                &mut rng,
                fx,
            )
        });
        drop(lease);
        self.admission(admit?, arrived, receiver)
    }

    pub(crate) fn release(self: &Arc<Self>, endpoint: &Endpoint, arrived: Instant, status: u16) {
        let now = Instant::now();
        let mut rng = rand::rng();
        self.transition(|core, fx| core.release(endpoint, arrived, status, now, &mut rng, fx));
    }

    /// Frees the slot of a lease whose request was never sent, counting no response.
    pub(crate) fn give_back(self: &Arc<Self>, endpoint: &Endpoint) {
        let now = Instant::now();
        let mut rng = rand::rng();
        self.transition(|core, fx| core.give_back(endpoint, now, &mut rng, fx));
    }

    pub(crate) fn abandon(self: &Arc<Self>, id: u64) {
        let now = Instant::now();
        self.transition(|core, fx| core.abandon(id, now, fx));
    }

    /// Counts a response the activator produced itself (an error) for this function.
    pub fn record_error(&self, error: &ProxyError) {
        apply::count_error(&mut relock(&self.metrics), error);
    }

    /// Counts a request sent again because its pod went away (`zeroscale_activator_upstream_retries_total`).
    pub fn record_retry(&self, reason: &'static str) {
        relock(&self.metrics).count_retry(reason);
    }

    /// Counts a request lost because its pod went away (`zeroscale_activator_upstream_lost_total`).
    pub fn record_lost(&self, reason: &'static str) {
        relock(&self.metrics).count_lost(reason);
    }

    /// Replaces the function's settings and endpoints with what was last reported.
    pub fn update(self: &Arc<Self>, settings: FunctionSettings, endpoints: Vec<EndpointInfo>) {
        relock(&self.meter).resources = settings.declared.or(self.defaults);
        let now = Instant::now();
        let mut rng = rand::rng();
        self.transition(|core, fx| core.update(settings, endpoints, now, &mut rng, fx));
    }

    /// The function was deleted: waiting requests get 404, new ones too (until it is re-created).
    pub fn remove(self: &Arc<Self>) {
        let now = Instant::now();
        self.transition(|core, fx| core.remove(now, fx));
    }

    /// Another entry of the same function took this one's place: waiting requests are handed back
    /// to be routed again (see [`Core::supersede`]).
    pub fn supersede(self: &Arc<Self>) {
        let now = Instant::now();
        self.transition(|core, fx| core.supersede(now, fx));
    }

    /// Addresses to probe now, or `None` when probing should stop (nobody waits, or no pod is
    /// starting); stopping clears the probing flag so a later request starts a new prober.
    pub fn probe_targets(&self) -> Option<Vec<SocketAddr>> {
        self.lock().probe_targets()
    }

    /// A starting pod answered a probe: route to it now, before its EndpointSlice says ready.
    pub fn mark_answering(self: &Arc<Self>, address: SocketAddr) {
        let now = Instant::now();
        let mut rng = rand::rng();
        self.transition(|core, fx| core.mark_answering(address, now, &mut rng, fx));
    }

    /// Closes the stats period: `(report, queued)` when there is something to report.
    pub fn take_report(&self, now: Instant) -> Option<(PeriodReport, u64)> {
        self.lock().take_report(now)
    }

    /// Requests queued now.
    pub fn queued(&self) -> usize {
        self.lock().queued()
    }

    /// Requests queued or in flight now.
    pub fn present(&self) -> u64 {
        self.lock().present()
    }

    /// Addresses routable now.
    pub fn routable(&self) -> Vec<SocketAddr> {
        self.lock().routable()
    }
}
