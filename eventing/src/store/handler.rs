//! The handling of one stored message for one Trigger: filter, one attempt, then ACK, NAK with the
//! back-off as delay, or the dead-letter sink and then ACK. In-progress acks keep the message while
//! the attempt (a Function's cold start included) or the dead-letter step runs.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use async_nats::jetstream::{self, message::AckKind};
use cloudevents::{AttributesReader, Event};
use tokio::task::JoinHandle;

use super::{
    attempt::{self, Next},
    consumer::Shared,
    supervisor::Shape,
};
use crate::{
    backlog::metrics::SubscriberLabels,
    delivery::{EventSender, encoding},
    metrics::TriggerLabels,
    reply::prepare_reply,
};

impl<S: EventSender> Shared<S> {
    /// Handles one message of `trigger`'s consumer.
    pub(super) async fn handle_message(
        &self,
        trigger: &TriggerLabels,
        shape: Shape,
        message: jetstream::Message,
    ) {
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
        let labels = SubscriberLabels::of(trigger, &route.subscriber);
        if delivered > 1 {
            // A NAK'd retry, or JetStream's redelivery after an expired AckWait (a crash).
            self.metrics.triggers().redelivered(&labels);
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
                if outcome == "dead_lettered" {
                    self.metrics.triggers().dead_lettered(&labels);
                }
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

/// Tells JetStream `kind` about `message`; a plain ack waits for the server's confirmation.
pub(crate) async fn ack(message: &jetstream::Message, kind: AckKind) {
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
pub(crate) struct Progress(JoinHandle<()>);

impl Progress {
    /// Starts acking `message` as in progress every `every` (at least 100 ms).
    pub(crate) fn start(message: Arc<jetstream::Message>, every: Duration) -> Self {
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
