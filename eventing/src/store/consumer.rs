//! One durable pull consumer per broker Trigger on the JetStream store, kept in step with the
//! routing table; each message is handled by [`super::handler`].

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
};

use super::{
    jetstream::JetStreamStore,
    supervisor::{PullSource, Shape, Supervisor},
};
use crate::{
    delivery::EventSender,
    metrics::{EventMetrics, TriggerLabels},
    router::Route,
};

pub use super::supervisor::RESYNC;

/// The consumer settings of `route`'s Trigger.
fn shape_of(route: &Route, cold_start_budget: Duration) -> Shape {
    Shape::new(
        route.delivery.retry.retries,
        route.delivery.attempt_timeout,
        cold_start_budget,
    )
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
pub struct Consumers(Supervisor);

impl Consumers {
    /// Starts keeping one consumer per broker Trigger of the store's routing table, delivering
    /// through `sender`.
    pub fn start<S: EventSender>(store: Arc<JetStreamStore>, sender: Arc<S>, metrics: EventMetrics) -> Self {
        Self(Supervisor::start(Arc::new(Shared {
            store,
            sender,
            metrics,
        })))
    }

    /// Stops fetching and waits up to `drain` for messages being handled; the rest are redelivered
    /// by JetStream after their `AckWait` (to this or another replica).
    pub async fn shutdown(self, drain: Duration) {
        self.0.shutdown(drain).await;
    }
}

/// One consumer per broker Trigger; a removed Trigger's consumer is deleted, or it would hold its
/// messages in the stream forever.
impl<S: EventSender> PullSource for Shared<S> {
    type Key = TriggerLabels;

    const WHAT: &'static str = "event consumers";

    fn wanted(&self) -> Vec<(TriggerLabels, Shape)> {
        let budget = self.store.config().cold_start_budget;
        self.store
            .routes()
            .broker_routes()
            .iter()
            .map(|route| (route.trigger.clone(), shape_of(route, budget)))
            .collect()
    }

    async fn open(&self, trigger: &TriggerLabels, shape: Shape) -> Result<pull::Stream, String> {
        self.open_consumer(trigger, shape).await
    }

    async fn handle(&self, trigger: &TriggerLabels, shape: Shape, message: jetstream::Message) {
        self.handle_message(trigger, shape, message).await;
    }

    async fn removed(&self, trigger: TriggerLabels) {
        if let Err(error) = self.delete_consumer(&trigger).await {
            tracing::warn!(namespace = %trigger.namespace, trigger = %trigger.trigger, %error, "cannot delete the consumer of a removed trigger");
        }
    }

    fn log_not_running(&self, trigger: &TriggerLabels, error: &str) {
        tracing::warn!(namespace = %trigger.namespace, trigger = %trigger.trigger, %error, "event consumer not running; retrying");
    }

    fn log_interrupted(&self, trigger: &TriggerLabels, error: &str) {
        tracing::debug!(namespace = %trigger.namespace, trigger = %trigger.trigger, %error, "pull interrupted; re-opening the consumer");
    }
}

impl<S: EventSender> Shared<S> {
    async fn open_consumer(&self, trigger: &TriggerLabels, shape: Shape) -> Result<pull::Stream, String> {
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
