//! Sets every Trigger's backlog gauges periodically: from the memory broker's [`PendingEvents`] and,
//! for broker Triggers on a durable store, from the store itself ([`StoreBacklog`]).

use std::{collections::HashSet, sync::Arc, time::Duration};

use tokio::{task::JoinHandle, time::Instant};

use super::{
    Backlog,
    metrics::{SubscriberLabels, TriggerMetrics},
    pending::PendingEvents,
};
use crate::{
    metrics::TriggerLabels,
    router::{RoutingTable, SourceKind},
    store::StoreFuture,
};

/// How often the gauges are sampled: a fraction of a usual scrape interval, and few enough store
/// requests (two per broker Trigger) not to matter.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// A durable store that can tell a broker Trigger's backlog from its own records.
pub trait StoreBacklog: Send + Sync + 'static {
    /// `trigger`'s events the store holds unacknowledged, and the age of the oldest.
    fn backlog<'a>(&'a self, trigger: &'a TriggerLabels) -> StoreFuture<'a, Result<Backlog, String>>;
}

/// The sampler; run it with [`Sampler::spawn`].
pub struct Sampler {
    routes: RoutingTable,
    pending: Arc<PendingEvents>,
    store: Option<Arc<dyn StoreBacklog>>,
    metrics: TriggerMetrics,
    reported: HashSet<SubscriberLabels>,
}

impl Sampler {
    /// A sampler of every route in `routes`; `store` is the durable store broker Triggers read
    /// from, if any.
    pub fn new(
        routes: RoutingTable,
        pending: Arc<PendingEvents>,
        store: Option<Arc<dyn StoreBacklog>>,
        metrics: TriggerMetrics,
    ) -> Self {
        Self {
            routes,
            pending,
            store,
            metrics,
            reported: HashSet::new(),
        }
    }

    /// Sets the gauges of every route once, and removes those of routes that are gone. A store that
    /// cannot answer leaves that Trigger's last figures in place (logged at debug level).
    pub async fn sample(&mut self) {
        let mut seen = HashSet::new();
        for route in self.routes.all() {
            let labels = SubscriberLabels::of(&route.trigger, &route.subscriber);
            let memory = self.pending.backlog(&route.trigger, Instant::now());
            let backlog = match (&self.store, route.source) {
                (Some(store), SourceKind::Broker) => match store.backlog(&route.trigger).await {
                    Ok(stored) => Some(memory.merge(stored)),
                    Err(error) => {
                        tracing::debug!(namespace = %route.trigger.namespace, trigger = %route.trigger.trigger, %error, "cannot read the trigger's backlog from the event store");
                        None
                    }
                },
                _ => Some(memory),
            };
            if let Some(backlog) = backlog {
                self.metrics.set_backlog(&labels, backlog);
            }
            seen.insert(labels);
        }
        for gone in self.reported.difference(&seen) {
            self.metrics.forget_backlog(gone);
        }
        self.reported = seen;
    }

    /// Samples every `every` until the task is aborted.
    pub fn spawn(mut self, every: Duration) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                self.sample().await;
                tokio::time::sleep(every).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use zeroscale_common::signals::FunctionKey;

    use super::*;
    use crate::{
        delivery::{DeliveryConfig, Target},
        filter::Filters,
        router::Route,
    };

    /// A store whose answer the test sets.
    struct FakeStore(Mutex<Result<Backlog, String>>);

    impl StoreBacklog for FakeStore {
        fn backlog<'a>(&'a self, _: &'a TriggerLabels) -> StoreFuture<'a, Result<Backlog, String>> {
            let answer = self.0.lock().expect("lock").clone();
            Box::pin(std::future::ready(answer))
        }
    }

    fn route(name: &str, source: SourceKind) -> Route {
        Route {
            trigger: TriggerLabels {
                namespace: "shop".into(),
                trigger: name.into(),
            },
            source,
            filters: Filters::default(),
            subscriber: Target::Function(FunctionKey::new("shop", "billing")),
            delivery: DeliveryConfig::default(),
        }
    }

    fn labels(name: &str) -> SubscriberLabels {
        let route = route(name, SourceKind::Broker);
        SubscriberLabels::of(&route.trigger, &route.subscriber)
    }

    #[tokio::test(start_paused = true)]
    async fn memory_and_store_backlogs_are_merged_for_broker_triggers_only() {
        let routes = RoutingTable::default();
        routes.upsert(route("orders", SourceKind::Broker));
        routes.upsert(route("tick", SourceKind::Schedule));
        let pending = Arc::new(PendingEvents::default());
        let store = Arc::new(FakeStore(Mutex::new(Ok(Backlog {
            depth: 40,
            oldest_age: Duration::from_secs(90),
        }))));
        let metrics = TriggerMetrics::default();
        let mut sampler = Sampler::new(
            routes.clone(),
            pending.clone(),
            Some(store.clone()),
            metrics.clone(),
        );
        let _reply = pending.enter(&route("orders", SourceKind::Broker).trigger, Instant::now());
        let _fire = pending.enter(&route("tick", SourceKind::Schedule).trigger, Instant::now());
        tokio::time::advance(Duration::from_secs(3)).await;
        sampler.sample().await;
        assert_eq!(
            metrics.backlog(&labels("orders")),
            Some(Backlog {
                depth: 41,
                oldest_age: Duration::from_secs(90)
            })
        );
        assert_eq!(
            metrics.backlog(&labels("tick")),
            Some(Backlog {
                depth: 1,
                oldest_age: Duration::from_secs(3)
            }),
            "a schedule Trigger's events are in memory only"
        );

        // A store that cannot answer keeps the last figures rather than reporting an empty queue.
        *store.0.lock().expect("lock") = Err("nats down".into());
        sampler.sample().await;
        assert_eq!(metrics.backlog(&labels("orders")).map(|b| b.depth), Some(41));

        routes.remove("shop", "orders");
        sampler.sample().await;
        assert_eq!(
            metrics.backlog(&labels("orders")),
            None,
            "a deleted trigger's series goes"
        );
        assert!(metrics.backlog(&labels("tick")).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_store_every_trigger_reads_the_memory_broker() {
        let routes = RoutingTable::default();
        routes.upsert(route("orders", SourceKind::Broker));
        let pending = Arc::new(PendingEvents::default());
        let metrics = TriggerMetrics::default();
        let task = Sampler::new(routes, pending.clone(), None, metrics.clone()).spawn(SAMPLE_INTERVAL);
        let held = pending.enter(&route("orders", SourceKind::Broker).trigger, Instant::now());
        tokio::time::sleep(SAMPLE_INTERVAL + Duration::from_millis(1)).await;
        assert_eq!(
            metrics.backlog(&labels("orders")),
            Some(Backlog {
                depth: 1,
                oldest_age: SAMPLE_INTERVAL
            })
        );
        drop(held);
        tokio::time::sleep(SAMPLE_INTERVAL).await;
        assert_eq!(metrics.backlog(&labels("orders")), Some(Backlog::default()));
        task.abort();
    }
}
