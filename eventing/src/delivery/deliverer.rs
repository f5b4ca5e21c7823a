//! The delivery loop: attempt, classify, wait, retry; then the dead-letter sink.

use std::sync::Arc;

use cloudevents::{AttributesReader, Event};

use super::{
    clock::{Clock, TokioClock},
    config::DeliveryConfig,
    dead_letter, encoding,
    failure::Failure,
    sender::{Answer, EventSender, Outgoing, SendError},
    target::Target,
    trace::AttemptSpan,
};
use crate::{
    backlog::metrics::SubscriberLabels,
    metrics::{EventMetrics, TriggerLabels},
    retry::retry_after,
};

/// How one delivery ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The subscriber answered 2xx.
    Delivered {
        /// Attempts made, the successful one included.
        attempts: u32,
        /// The event the subscriber replied with, to be re-published (see [`crate::reply`]).
        reply: Option<Box<Event>>,
    },
    /// Every attempt failed; the dead-letter sink accepted the event.
    DeadLettered {
        /// Attempts made to the subscriber.
        attempts: u32,
        /// The last attempt's failure.
        failure: Failure,
    },
    /// Every attempt failed and there is no dead-letter sink, or it failed too: the event is lost
    /// (logged at error level and counted as `undeliverable`).
    Undeliverable {
        /// Attempts made to the subscriber.
        attempts: u32,
        /// The last attempt's failure.
        failure: Failure,
        /// The dead-letter sink's last failure, when there is a sink.
        dead_letter: Option<Failure>,
    },
}

impl Outcome {
    /// The label of `zeroscale_event_deliveries_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered { .. } => "delivered",
            Outcome::DeadLettered { .. } => "dead_lettered",
            Outcome::Undeliverable { .. } => "undeliverable",
        }
    }
}

/// Delivers events through an [`EventSender`], with the retry schedule of each Trigger.
#[derive(Debug)]
pub struct Deliverer<S, C = TokioClock> {
    sender: Arc<S>,
    clock: C,
    metrics: EventMetrics,
}

impl<S: EventSender> Deliverer<S> {
    /// A deliverer on the real clock.
    pub fn new(sender: Arc<S>, metrics: EventMetrics) -> Self {
        Self::with_clock(sender, TokioClock, metrics)
    }
}

impl<S: EventSender, C: Clock> Deliverer<S, C> {
    /// A deliverer whose back-off waits and `Retry-After` dates use `clock`.
    pub fn with_clock(sender: Arc<S>, clock: C, metrics: EventMetrics) -> Self {
        Self {
            sender,
            clock,
            metrics,
        }
    }

    /// Delivers `event` for `trigger` to `subscriber`, retrying and dead-lettering per `config`.
    pub async fn deliver(
        &self,
        trigger: &TriggerLabels,
        event: &Event,
        subscriber: &Target,
        config: &DeliveryConfig,
    ) -> Outcome {
        let started = tokio::time::Instant::now();
        let labels = SubscriberLabels::of(trigger, subscriber);
        let outcome = match self
            .attempts(trigger, Some(&labels), event.clone(), subscriber, config)
            .await
        {
            Ok((attempts, answer)) => Outcome::Delivered {
                attempts,
                reply: self.reply(trigger, event, answer),
            },
            Err((attempts, failure)) => {
                self.dead_letter(trigger, event, subscriber, config, attempts, failure)
                    .await
            }
        };
        self.metrics.finished(trigger, outcome.label(), started.elapsed());
        if let Outcome::DeadLettered { .. } = &outcome {
            self.metrics.triggers().dead_lettered(&labels);
        }
        if let Outcome::Undeliverable {
            attempts,
            failure,
            dead_letter,
        } = &outcome
        {
            tracing::error!(
                namespace = %trigger.namespace, trigger = %trigger.trigger, id = %event.id(),
                source = %event.source(), attempts, error = %failure.describe(),
                dead_letter_error = dead_letter.as_ref().map(Failure::describe),
                "event could not be delivered and is lost"
            );
        }
        outcome
    }

    async fn dead_letter(
        &self,
        trigger: &TriggerLabels,
        event: &Event,
        subscriber: &Target,
        config: &DeliveryConfig,
        attempts: u32,
        failure: Failure,
    ) -> Outcome {
        let Some(sink) = &config.dead_letter else {
            return Outcome::Undeliverable {
                attempts,
                failure,
                dead_letter: None,
            };
        };
        let mut annotated = event.clone();
        dead_letter::annotate(&mut annotated, subscriber, &failure);
        match self.attempts(trigger, None, annotated, sink, config).await {
            Ok(_) => {
                tracing::warn!(
                    namespace = %trigger.namespace, trigger = %trigger.trigger, id = %event.id(),
                    attempts, error = %failure.describe(), sink = %sink, "event dead-lettered"
                );
                Outcome::DeadLettered { attempts, failure }
            }
            Err((_, dead_letter)) => Outcome::Undeliverable {
                attempts,
                failure,
                dead_letter: Some(dead_letter),
            },
        }
    }

    /// Attempts until a 2xx answer, a final failure, or the retries are used up. `subscriber`: the
    /// labels to count redeliveries under when `target` is the Trigger's subscriber.
    async fn attempts(
        &self,
        trigger: &TriggerLabels,
        subscriber: Option<&SubscriberLabels>,
        event: Event,
        target: &Target,
        config: &DeliveryConfig,
    ) -> Result<(u32, Answer), (u32, Failure)> {
        let (headers, body) = encoding::encode(event).map_err(|e| (0, Failure::Encoding(e.to_string())))?;
        let request = Outgoing {
            target: target.clone(),
            headers,
            body,
        };
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut sending = request.clone();
            let span = AttemptSpan::start(target, attempt, &mut sending.headers);
            let sent = tokio::time::timeout(config.attempt_timeout, self.sender.send(sending)).await;
            span.finish_with(&sent);
            let (failure, asked) = match sent {
                Ok(Ok(answer)) if answer.status.is_success() => return Ok((attempt, answer)),
                Ok(Err(SendError::ReplyTooLarge { status, limit })) if status.is_success() => {
                    tracing::warn!(%target, limit, "reply body too large; delivered without reply");
                    return Ok((
                        attempt,
                        Answer {
                            status,
                            headers: Default::default(),
                            body: Default::default(),
                        },
                    ));
                }
                Ok(Ok(answer)) => {
                    let asked = retry_after(&answer.headers, self.clock.now());
                    let mut body = answer.body;
                    body.truncate(dead_letter::MAX_ERROR_DATA);
                    (
                        Failure::Status {
                            status: answer.status,
                            body,
                        },
                        asked,
                    )
                }
                Ok(Err(error)) => (Failure::from(error), None),
                Err(_) => (Failure::Timeout(config.attempt_timeout), None),
            };
            if !failure.is_retryable() || attempt > config.retry.retries {
                return Err((attempt, failure));
            }
            tracing::debug!(%target, attempt, error = %failure.describe(), "delivery attempt failed; retrying");
            self.metrics.retried(trigger);
            if let Some(labels) = subscriber {
                self.metrics.triggers().redelivered(labels);
            }
            self.clock.sleep(config.retry.wait_before(attempt, asked)).await;
        }
    }

    fn reply(&self, trigger: &TriggerLabels, cause: &Event, answer: Answer) -> Option<Box<Event>> {
        match encoding::reply_event(&answer)? {
            Ok(reply) => Some(Box::new(reply)),
            Err(error) => {
                // The delivery succeeded; only the reply is unusable. Counted, not retried.
                self.metrics.dropped("invalid_reply");
                tracing::warn!(
                    namespace = %trigger.namespace, trigger = %trigger.trigger, id = %cause.id(),
                    %error, "subscriber replied with a malformed event; reply dropped"
                );
                None
            }
        }
    }
}

#[cfg(test)]
#[path = "deliverer_tests.rs"]
mod tests;
