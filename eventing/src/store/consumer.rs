//! One durable pull consumer per broker Trigger on the JetStream store, kept in step with the
//! routing table; each message is handled by [`super::handler`].

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;
use tokio::{
    sync::watch,
    task::{JoinHandle, JoinSet},
};

use super::{attempt, jetstream::JetStreamStore};
use crate::{
    delivery::EventSender,
    metrics::{EventMetrics, TriggerLabels},
    router::Route,
};

/// How often the consumers are compared with the routing table.
pub const RESYNC: Duration = Duration::from_secs(1);

/// The consumer settings that follow from a Trigger; a change re-creates its consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Shape {
    max_deliver: i64,
    pub(super) ack_wait: Duration,
}

impl Shape {
    fn of(route: &Route, cold_start_budget: Duration) -> Self {
        Self {
            max_deliver: attempt::max_deliver(route.delivery.retry.retries),
            ack_wait: attempt::ack_wait(route.delivery.attempt_timeout, cold_start_budget),
        }
    }
}

/// The durable consumer name of a Trigger: `<namespace>_<name>` with the name's dots as `_` (neither
/// a namespace nor a Trigger name holds `_`, and a consumer name may not hold `.`).
pub fn consumer_name(trigger: &TriggerLabels) -> String {
    format!("{}_{}", trigger.namespace, trigger.trigger.replace('.', "_"))
}

pub(super) struct Shared<S> {
    pub(super) store: Arc<JetStreamStore>,
    pub(super) sender: Arc<S>,
    pub(super) metrics: EventMetrics,
}

/// The running consumers; stop them with [`Consumers::shutdown`].
pub struct Consumers {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Consumers {
    /// Starts keeping one consumer per broker Trigger of the store's routing table, delivering
    /// through `sender`.
    pub fn start<S: EventSender>(store: Arc<JetStreamStore>, sender: Arc<S>, metrics: EventMetrics) -> Self {
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            store,
            sender,
            metrics,
        });
        Self {
            stop,
            task: tokio::spawn(supervise(shared, stopped)),
        }
    }

    /// Stops fetching and waits up to `drain` for messages being handled; the rest are redelivered
    /// by JetStream after their `AckWait` (to this or another replica).
    pub async fn shutdown(self, drain: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(drain, &mut task).await.is_err() {
            tracing::warn!(
                ?drain,
                "event consumers still busy after the drain; JetStream redelivers their messages"
            );
            task.abort();
        }
    }
}

async fn supervise<S: EventSender>(shared: Arc<Shared<S>>, mut stopped: watch::Receiver<bool>) {
    let mut running: HashMap<(String, String), (Shape, JoinHandle<()>)> = HashMap::new();
    let budget = shared.store.config().cold_start_budget;
    loop {
        let routes = shared.store_routes();
        for route in &routes {
            let key = (route.trigger.namespace.clone(), route.trigger.trigger.clone());
            let shape = Shape::of(route, budget);
            let current = running
                .get(&key)
                .filter(|(s, task)| *s == shape && !task.is_finished());
            if current.is_none() {
                if let Some((_, old)) = running.remove(&key) {
                    old.abort();
                }
                let task = tokio::spawn(consume(
                    shared.clone(),
                    route.trigger.clone(),
                    shape,
                    stopped.clone(),
                ));
                running.insert(key, (shape, task));
            }
        }
        let gone: Vec<_> = running
            .keys()
            .filter(|(ns, name)| {
                !routes
                    .iter()
                    .any(|r| &r.trigger.namespace == ns && &r.trigger.trigger == name)
            })
            .cloned()
            .collect();
        for key in gone {
            if let Some((_, task)) = running.remove(&key) {
                task.abort();
            }
            // A deleted Trigger's consumer would hold its messages in the stream forever.
            let trigger = TriggerLabels {
                namespace: key.0,
                trigger: key.1,
            };
            if let Err(error) = shared.delete_consumer(&trigger).await {
                tracing::warn!(namespace = %trigger.namespace, trigger = %trigger.trigger, %error, "cannot delete the consumer of a removed trigger");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RESYNC) => {}
            _ = stopped.changed() => break,
        }
    }
    for (_, (_, task)) in running {
        let _ = task.await;
    }
}

impl<S: EventSender> Shared<S> {
    fn store_routes(&self) -> Vec<Arc<Route>> {
        self.store.routes().broker_routes()
    }

    async fn open(&self, trigger: &TriggerLabels, shape: Shape) -> Result<pull::Stream, String> {
        let stream = self.store.ensure_stream().await.map_err(|e| e.to_string())?;
        let name = consumer_name(trigger);
        let config = pull::Config {
            durable_name: Some(name.clone()),
            description: Some(format!(
                "zeroscale trigger {}/{}",
                trigger.namespace, trigger.trigger
            )),
            filter_subject: self.store.subject(&trigger.namespace),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: shape.ack_wait,
            max_deliver: shape.max_deliver,
            max_ack_pending: self.store.config().max_ack_pending,
            num_replicas: 0,
            ..Default::default()
        };
        let consumer = stream
            .create_consumer(config)
            .await
            .map_err(|e| format!("cannot create consumer {name}: {e}"))?;
        consumer
            .stream()
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| format!("cannot pull from consumer {name}: {e}"))
    }

    async fn delete_consumer(&self, trigger: &TriggerLabels) -> Result<(), String> {
        let stream = self.store.ensure_stream().await.map_err(|e| e.to_string())?;
        match stream.delete_consumer(&consumer_name(trigger)).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("not found") => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Pulls `trigger`'s messages until stopped, re-opening the consumer after errors (NATS down).
async fn consume<S: EventSender>(
    shared: Arc<Shared<S>>,
    trigger: TriggerLabels,
    shape: Shape,
    mut stopped: watch::Receiver<bool>,
) {
    let mut handlers = JoinSet::new();
    'open: while !*stopped.borrow() {
        let mut messages = match shared.open(&trigger, shape).await {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(namespace = %trigger.namespace, trigger = %trigger.trigger, %error, "event consumer not running; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(RESYNC) => continue,
                    _ = stopped.changed() => break,
                }
            }
        };
        loop {
            tokio::select! {
                _ = stopped.changed() => break 'open,
                Some(_) = handlers.join_next(), if !handlers.is_empty() => {}
                next = messages.next() => match next {
                    Some(Ok(message)) => {
                        let (shared, trigger) = (shared.clone(), trigger.clone());
                        handlers.spawn(async move { shared.handle(&trigger, shape, message).await });
                    }
                    Some(Err(error)) => {
                        tracing::debug!(namespace = %trigger.namespace, trigger = %trigger.trigger, %error, "pull interrupted; re-opening the consumer");
                        continue 'open;
                    }
                    None => continue 'open,
                },
            }
        }
    }
    while handlers.join_next().await.is_some() {}
}
