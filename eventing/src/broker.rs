//! The in-memory broker: a bounded dispatch queue between acceptance and delivery, fan-out to the
//! matching Triggers, reply re-publishing, and draining on shutdown.
//!
//! Memory is bounded by a byte budget that every accepted event holds until all of its deliveries have
//! finished (retries and back-off included), plus a bound on the queue length. When either is
//! exhausted, [`Broker::publish`] refuses the event (the ingress answers 503 with `Retry-After`) rather
//! than accepting it and dropping it later.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use cloudevents::{AttributesReader, Event};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
    time::Instant,
};

use crate::{
    backlog::pending::{PendingEvent, PendingEvents},
    delivery::{Clock, Deliverer, EventSender, Outcome, TokioClock},
    metrics::EventMetrics,
    reply::prepare_reply,
    router::{Route, RoutingTable},
};

/// Limits of the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Events accepted but not yet fanned out.
    pub queue_capacity: usize,
    /// Bytes of accepted events whose deliveries have not finished.
    pub max_buffered_bytes: usize,
    /// How long a reply waits for room in the broker before it is dropped.
    pub reply_timeout: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
            max_buffered_bytes: 64 * 1024 * 1024,
            reply_timeout: Duration::from_secs(30),
        }
    }
}

/// Why an event was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublishError {
    /// The queue or the byte budget is full; try again later.
    #[error("broker is at capacity")]
    Full,
    /// The event alone is larger than the whole byte budget.
    #[error("event of {0} bytes is larger than the broker's buffer")]
    TooLarge(usize),
    /// The broker is shutting down.
    #[error("broker is shutting down")]
    ShuttingDown,
    /// The event store did not acknowledge the event (unreachable, or refused it).
    #[error("event store {store} unavailable: {reason}")]
    StoreUnavailable {
        /// The backend (`jetstream`).
        store: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// Accepts events for a namespace's broker. The ingress depends on this rather than on [`Broker`].
pub trait Publish: Send + Sync + 'static {
    /// Accepts `event` (of about `size` bytes) into `namespace`'s broker without waiting.
    fn publish(&self, namespace: &str, event: Event, size: usize) -> Result<(), PublishError>;

    /// Whether `namespace` has a broker (a Trigger with a `broker` source); the ingress answers 404
    /// for the others.
    fn has_broker(&self, namespace: &str) -> bool;
}

/// An accepted event's share of the byte budget; released when the last delivery finishes.
struct Held {
    _permit: OwnedSemaphorePermit,
    size: usize,
    in_flight: Arc<AtomicUsize>,
    metrics: EventMetrics,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.metrics.buffered(-(self.size as i64));
    }
}

/// An accepted event waiting to be fanned out.
struct Accepted {
    namespace: String,
    event: Event,
    /// Set for a schedule or Kubernetes source: deliver to this route only.
    only: Option<Arc<Route>>,
    held: Arc<Held>,
    /// When it was accepted (the start of its age in the Triggers' backlogs).
    accepted_at: Instant,
}

struct Shared<S, C> {
    routes: RoutingTable,
    deliverer: Deliverer<S, C>,
    queue: mpsc::Sender<Accepted>,
    budget: Arc<Semaphore>,
    config: BrokerConfig,
    closed: AtomicBool,
    in_flight: Arc<AtomicUsize>,
    metrics: EventMetrics,
    pending: Arc<PendingEvents>,
}

/// The broker. Cheap to clone; every clone is the same broker.
pub struct Broker<S, C = TokioClock> {
    shared: Arc<Shared<S, C>>,
}

impl<S, C> Clone for Broker<S, C> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<S: EventSender, C: Clock> Broker<S, C> {
    /// Starts a broker delivering through `deliverer` to the routes in `routes`; spawns its dispatcher
    /// on the current tokio runtime.
    pub fn start(
        routes: RoutingTable,
        deliverer: Deliverer<S, C>,
        config: BrokerConfig,
        metrics: EventMetrics,
    ) -> Self {
        let (queue, mut rx) = mpsc::channel(config.queue_capacity.max(1));
        let budget = Arc::new(Semaphore::new(budget_permits(&config) as usize));
        let shared = Arc::new(Shared {
            routes,
            deliverer,
            queue,
            budget,
            config,
            closed: AtomicBool::new(false),
            in_flight: Arc::new(AtomicUsize::new(0)),
            metrics,
            pending: Arc::default(),
        });
        let broker = Self { shared };
        let dispatcher = broker.clone();
        tokio::spawn(async move {
            while let Some(accepted) = rx.recv().await {
                dispatcher.fan_out(accepted);
            }
        });
        broker
    }

    /// Accepts an event from a schedule or Kubernetes source for `route` only, waiting for room
    /// (sources can wait; the ingress cannot).
    pub async fn publish_to(&self, route: Arc<Route>, event: Event, size: usize) -> Result<(), PublishError> {
        let namespace = route.trigger.namespace.clone();
        let accepted_at = Instant::now();
        let held = self.hold_wait(size, None).await?;
        self.enqueue_wait(Accepted {
            namespace,
            event,
            only: Some(route),
            held,
            accepted_at,
        })
        .await
    }

    /// The events each Trigger has not finished, for its backlog metrics.
    pub fn pending(&self) -> Arc<PendingEvents> {
        self.shared.pending.clone()
    }

    /// Events accepted whose deliveries have not all finished.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Stops accepting and waits up to `drain` for accepted events to finish delivery. Returns how many
    /// were still unfinished (and are lost when the process exits); they are counted as dropped with
    /// reason `shutdown`.
    pub async fn shutdown(&self, drain: Duration) -> usize {
        self.shared.closed.store(true, Ordering::Release);
        let total = budget_permits(&self.shared.config);
        // Holding the whole budget means every accepted event has released its share.
        let drained = tokio::time::timeout(drain, self.shared.budget.acquire_many(total)).await;
        let lost = if drained.is_ok() { 0 } else { self.in_flight() };
        for _ in 0..lost {
            self.shared.metrics.dropped("shutdown");
        }
        if lost > 0 {
            tracing::error!(
                lost,
                ?drain,
                "broker shut down with undelivered events; they are lost"
            );
        }
        lost
    }

    fn hold(&self, size: usize) -> Result<Arc<Held>, PublishError> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(PublishError::ShuttingDown);
        }
        let cost = permits(size, budget_permits(&shared.config))?;
        let permit = shared
            .budget
            .clone()
            .try_acquire_many_owned(cost)
            .map_err(|_| PublishError::Full)?;
        Ok(self.held(permit, size))
    }

    async fn hold_wait(&self, size: usize, timeout: Option<Duration>) -> Result<Arc<Held>, PublishError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(PublishError::ShuttingDown);
        }
        let cost = permits(size, budget_permits(&self.shared.config))?;
        let acquire = self.shared.budget.clone().acquire_many_owned(cost);
        let permit = match timeout {
            Some(t) => tokio::time::timeout(t, acquire)
                .await
                .map_err(|_| PublishError::Full)?,
            None => acquire.await,
        }
        .map_err(|_| PublishError::ShuttingDown)?;
        Ok(self.held(permit, size))
    }

    fn held(&self, permit: OwnedSemaphorePermit, size: usize) -> Arc<Held> {
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        self.shared.metrics.buffered(size as i64);
        let in_flight = self.shared.in_flight.clone();
        Arc::new(Held {
            _permit: permit,
            size,
            in_flight,
            metrics: self.shared.metrics.clone(),
        })
    }

    async fn enqueue_wait(&self, accepted: Accepted) -> Result<(), PublishError> {
        let namespace = accepted.namespace.clone();
        self.shared
            .queue
            .send(accepted)
            .await
            .map_err(|_| PublishError::ShuttingDown)?;
        self.shared.metrics.accepted(&namespace);
        Ok(())
    }

    fn fan_out(&self, accepted: Accepted) {
        let Accepted {
            namespace,
            event,
            only,
            held,
            accepted_at,
        } = accepted;
        let routes = match only {
            Some(route) if route.filters.matches(&event) => vec![route],
            Some(_) => Vec::new(),
            None => self.shared.routes.matching(&namespace, &event),
        };
        if routes.is_empty() {
            tracing::debug!(%namespace, id = %event.id(), ty = %event.ty(), "no trigger matches the event");
        }
        let event = Arc::new(event);
        for route in routes {
            let broker = self.clone();
            let (event, held) = (event.clone(), held.clone());
            let pending = self.shared.pending.enter(&route.trigger, accepted_at);
            tokio::spawn(async move { broker.deliver(route, event, held, pending).await });
        }
    }

    async fn deliver(&self, route: Arc<Route>, event: Arc<Event>, held: Arc<Held>, pending: PendingEvent) {
        let outcome = self
            .shared
            .deliverer
            .deliver(&route.trigger, &event, &route.subscriber, &route.delivery)
            .await;
        // Finished for this Trigger; a reply is a new event in the backlogs it fans out to.
        drop(pending);
        let Outcome::Delivered {
            reply: Some(reply), ..
        } = outcome
        else {
            return;
        };
        let namespace = &route.trigger.namespace;
        let reply = match prepare_reply(&event, *reply) {
            Ok(reply) => reply,
            Err(error) => {
                self.shared.metrics.dropped("ttl_exhausted");
                tracing::warn!(%namespace, trigger = %route.trigger.trigger, id = %event.id(), %error, "reply dropped");
                return;
            }
        };
        // Keep our own share until the reply holds its own, so a drain never sees a gap.
        let size = estimated_size(&reply);
        let result = match self.hold_wait(size, Some(self.shared.config.reply_timeout)).await {
            Ok(reply_held) => {
                let accepted = Accepted {
                    namespace: namespace.clone(),
                    event: reply,
                    only: None,
                    held: reply_held,
                    accepted_at: Instant::now(),
                };
                self.enqueue_wait(accepted).await
            }
            Err(e) => Err(e),
        };
        drop(held);
        if let Err(error) = result {
            self.shared.metrics.dropped("reply_overloaded");
            tracing::error!(%namespace, trigger = %route.trigger.trigger, %error, "reply could not be re-published; lost");
        }
    }
}

impl<S: EventSender, C: Clock> Publish for Broker<S, C> {
    fn has_broker(&self, namespace: &str) -> bool {
        self.shared.routes.has_broker(namespace)
    }

    fn publish(&self, namespace: &str, event: Event, size: usize) -> Result<(), PublishError> {
        let held = self.hold(size)?;
        let accepted = Accepted {
            namespace: namespace.to_string(),
            event,
            only: None,
            held,
            accepted_at: Instant::now(),
        };
        self.shared.queue.try_send(accepted).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => PublishError::Full,
            mpsc::error::TrySendError::Closed(_) => PublishError::ShuttingDown,
        })?;
        self.shared.metrics.accepted(namespace);
        Ok(())
    }
}

/// The byte budget as semaphore permits (a semaphore counts at most `u32::MAX` in one acquisition).
fn budget_permits(config: &BrokerConfig) -> u32 {
    let max = config.max_buffered_bytes.clamp(1, Semaphore::MAX_PERMITS);
    u32::try_from(max).unwrap_or(u32::MAX)
}

/// Permits for an event of `size` bytes (at least one, so empty events count too).
fn permits(size: usize, budget: u32) -> Result<u32, PublishError> {
    match u32::try_from(size.max(1)) {
        Ok(cost) if cost <= budget => Ok(cost),
        _ => Err(PublishError::TooLarge(size)),
    }
}

/// Approximate in-memory size of an event: its data plus a fixed allowance for attributes.
pub fn estimated_size(event: &Event) -> usize {
    let data = match event.data() {
        Some(cloudevents::Data::Binary(b)) => b.len(),
        Some(cloudevents::Data::String(s)) => s.len(),
        Some(cloudevents::Data::Json(v)) => v.to_string().len(),
        None => 0,
    };
    data + 512
}

#[cfg(test)]
#[path = "broker_tests.rs"]
mod tests;
