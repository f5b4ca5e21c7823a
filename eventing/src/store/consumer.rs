//! One durable pull consumer per broker Trigger on the JetStream store, kept in step with the
//! routing table, and the handling of each message: filter, one attempt, then ACK, NAK with the
//! back-off as delay, or the dead-letter sink and then ACK. In-progress acks keep a message while an
//! attempt (and a Function's cold start) or the dead-letter step runs.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime},
};

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
    message::AckKind,
};
use cloudevents::{AttributesReader, Event};
use futures::StreamExt;
use tokio::{
    sync::watch,
    task::{JoinHandle, JoinSet},
};

use super::{
    attempt::{self, Next},
    jetstream::JetStreamStore,
};
use crate::{
    delivery::{EventSender, encoding},
    metrics::{EventMetrics, TriggerLabels},
    reply::prepare_reply,
    router::Route,
};

/// How often the consumers are compared with the routing table.
pub const RESYNC: Duration = Duration::from_secs(1);

/// The consumer settings that follow from a Trigger; a change re-creates its consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    max_deliver: i64,
    ack_wait: Duration,
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

struct Shared<S> {
    store: Arc<JetStreamStore>,
    sender: Arc<S>,
    metrics: EventMetrics,
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

    /// Handles one message of `trigger`'s consumer.
    async fn handle(&self, trigger: &TriggerLabels, shape: Shape, message: jetstream::Message) {
        let message = Arc::new(message);
        let (delivered, published) = match message.info() {
            Ok(info) => (
                u32::try_from(info.delivered).unwrap_or(u32::MAX),
                SystemTime::from(info.published),
            ),
            Err(_) => (1, SystemTime::now()),
        };
        let event: Event = match serde_json::from_slice(&message.payload) {
            Ok(event) => event,
            Err(error) => {
                self.metrics.finished(trigger, "undeliverable", Duration::ZERO);
                tracing::error!(namespace = %trigger.namespace, trigger = %trigger.trigger, %error, "stored message is not a CloudEvent; dropped");
                ack(&message, AckKind::Term).await;
                return;
            }
        };
        // The consumer is removed with its Trigger; until then leave the message to JetStream.
        let Some(route) = self.store.routes().get(&trigger.namespace, &trigger.trigger) else {
            return;
        };
        if !route.filters.matches(&event) {
            ack(&message, AckKind::Ack).await;
            return;
        }
        let _progress = Progress::start(message.clone(), shape.ack_wait / 3);
        let retry = &route.delivery.retry;
        let next = if attempt::may_attempt(delivered, retry.retries) {
            match attempt::attempt(
                &*self.sender,
                &event,
                &route.subscriber,
                route.delivery.attempt_timeout,
            )
            .await
            {
                Ok(answer) => {
                    if let Some(reply) = encoding::reply_event(&answer) {
                        self.republish(trigger, &event, reply).await;
                    }
                    Next::Ack
                }
                Err(failure) => attempt::after_attempt(delivered, retry, Err(failure)),
            }
        } else {
            Next::DeadLetter(attempt::interrupted(delivered))
        };
        let elapsed = SystemTime::now().duration_since(published).unwrap_or_default();
        match next {
            Next::Ack => {
                ack(&message, AckKind::Ack).await;
                self.metrics.finished(trigger, "delivered", elapsed);
            }
            Next::Retry(delay) => {
                self.metrics.retried(trigger);
                tracing::debug!(namespace = %trigger.namespace, trigger = %trigger.trigger, id = %event.id(), delivered, ?delay, "delivery attempt failed; redelivery scheduled");
                ack(&message, AckKind::Nak(Some(delay))).await;
            }
            Next::DeadLetter(failure) => {
                let sent = attempt::dead_letter(
                    &*self.sender,
                    &event,
                    &route.subscriber,
                    &route.delivery,
                    &failure,
                )
                .await;
                let outcome = match &sent {
                    Ok(true) => "dead_lettered",
                    Ok(false) | Err(_) => "undeliverable",
                };
                if outcome == "undeliverable" {
                    tracing::error!(
                        namespace = %trigger.namespace, trigger = %trigger.trigger, id = %event.id(),
                        source = %event.source(), attempts = delivered, error = %failure.describe(),
                        dead_letter_error = sent.as_ref().err().map(|f| f.describe()),
                        "event could not be delivered and is lost"
                    );
                } else {
                    tracing::warn!(namespace = %trigger.namespace, trigger = %trigger.trigger, id = %event.id(), attempts = delivered, error = %failure.describe(), "event dead-lettered");
                }
                // Acknowledged only now: the dead-letter copy is stored (or there is none to store).
                ack(&message, AckKind::Ack).await;
                self.metrics.finished(trigger, outcome, elapsed);
            }
        }
    }

    async fn republish(
        &self,
        trigger: &TriggerLabels,
        cause: &Event,
        reply: Result<Event, zeroscale_common::signals::SignalError>,
    ) {
        let reply = match reply
            .map_err(|e| e.to_string())
            .and_then(|r| prepare_reply(cause, r).map_err(|e| e.to_string()))
        {
            Ok(reply) => reply,
            Err(error) => {
                self.metrics.dropped("invalid_reply");
                tracing::warn!(namespace = %trigger.namespace, trigger = %trigger.trigger, id = %cause.id(), %error, "reply dropped");
                return;
            }
        };
        if let Err(error) = self.store.store(&trigger.namespace, &reply).await {
            self.metrics.dropped("reply_overloaded");
            tracing::error!(namespace = %trigger.namespace, trigger = %trigger.trigger, %error, "reply could not be stored; lost");
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

async fn ack(message: &jetstream::Message, kind: AckKind) {
    let result = match kind {
        // Wait for the server's confirmation: an acknowledgement lost in transit would redeliver.
        AckKind::Ack => message.double_ack().await,
        other => message.ack_with(other).await,
    };
    if let Err(error) = result {
        tracing::warn!(%error, "cannot acknowledge a message; JetStream will redeliver it");
    }
}

/// Sends in-progress acks every `every` until dropped.
struct Progress(JoinHandle<()>);

impl Progress {
    fn start(message: Arc<jetstream::Message>, every: Duration) -> Self {
        let every = every.max(Duration::from_millis(100));
        Self(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if message.ack_with(AckKind::Progress).await.is_err() {
                    return;
                }
            }
        }))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.abort();
    }
}
