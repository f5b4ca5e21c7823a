//! The JetStream workers: one durable pull consumer per Function (`async_<namespace>_<function>`,
//! explicit acks), kept in step with the Functions known. JetStream's redelivery is the retry
//! schedule: a failed attempt is NAK'd with the back-off as delay and the attempt number is the
//! delivery count, so a crash between attempts neither loses the invocation nor resets its count.
//! A message is acknowledged only once its record reached the destination (or there is none).

use std::{sync::Arc, time::Duration, time::SystemTime};

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
    message::AckKind,
};
use cloudevents::Event;
use zeroscale_common::signals::FunctionKey;

use super::{
    jetstream::JetStreamInvocations,
    outcome::{self, Next},
    policy::{AsyncFunctions, AsyncPolicy},
    request::Invocation,
    run::{self, InvocationSender},
};
use crate::store::{
    attempt,
    handler::{Progress, ack},
    supervisor::{PullSource, Shape, Supervisor},
};

pub use crate::store::supervisor::RESYNC;

/// The durable consumer name of `function`'s invocations.
pub fn consumer_name(function: &FunctionKey) -> String {
    format!("async_{}_{}", function.namespace, function.name.replace('.', "_"))
}

/// The consumer settings of `policy`.
fn shape_of(policy: &AsyncPolicy, cold_start_budget: Duration) -> Shape {
    Shape::new(policy.retry.retries, policy.attempt_timeout, cold_start_budget)
}

struct Shared<S> {
    store: Arc<JetStreamInvocations>,
    sender: Arc<S>,
    functions: AsyncFunctions,
}

/// The running workers; stop them with [`AsyncWorkers::shutdown`].
pub struct AsyncWorkers(Supervisor);

impl AsyncWorkers {
    /// Keeps one consumer per Function in `functions`, invoking through `sender`.
    pub fn start<S: InvocationSender>(
        store: Arc<JetStreamInvocations>,
        sender: Arc<S>,
        functions: AsyncFunctions,
    ) -> Self {
        Self(Supervisor::start(Arc::new(Shared {
            store,
            sender,
            functions,
        })))
    }

    /// Stops fetching and waits up to `drain` for invocations being run; JetStream redelivers the
    /// rest after their `AckWait`.
    pub async fn shutdown(self, drain: Duration) {
        self.0.shutdown(drain).await;
    }
}

/// One consumer per Function with async invocations. A deleted Function's consumer stops; its
/// consumer and messages stay for a Function of the same name.
impl<S: InvocationSender> PullSource for Shared<S> {
    type Key = FunctionKey;

    const WHAT: &'static str = "async workers";

    fn wanted(&self) -> Vec<(FunctionKey, Shape)> {
        let budget = self.store.events().config().cold_start_budget;
        self.functions
            .all()
            .iter()
            .map(|(function, policy)| (function.clone(), shape_of(policy, budget)))
            .collect()
    }

    async fn open(&self, function: &FunctionKey, shape: Shape) -> Result<pull::Stream, String> {
        self.open_consumer(function, shape).await
    }

    async fn handle(&self, _function: &FunctionKey, shape: Shape, message: jetstream::Message) {
        self.handle_message(shape, message).await;
    }

    async fn removed(&self, _function: FunctionKey) {}

    fn log_not_running(&self, function: &FunctionKey, error: &str) {
        tracing::warn!(%function, %error, "async worker not running; retrying");
    }

    fn log_interrupted(&self, function: &FunctionKey, error: &str) {
        tracing::debug!(%function, %error, "pull interrupted; re-opening the consumer");
    }
}

impl<S: InvocationSender> Shared<S> {
    async fn open_consumer(&self, function: &FunctionKey, shape: Shape) -> Result<pull::Stream, String> {
        let stream = self.store.ensure_stream().await.map_err(|e| e.to_string())?;
        let name = consumer_name(function);
        let config = pull::Config {
            durable_name: Some(name.clone()),
            description: Some(format!("zeroscale async invocations of {function}")),
            filter_subject: JetStreamInvocations::subject(function),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: shape.ack_wait,
            max_deliver: shape.max_deliver,
            max_ack_pending: self.store.events().config().max_ack_pending,
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

    /// Runs one delivery of an invocation: at most one attempt, then ACK after the record, or NAK.
    async fn handle_message(&self, shape: Shape, message: jetstream::Message) {
        let message = Arc::new(message);
        let delivered = message
            .info()
            .map(|i| u32::try_from(i.delivered).unwrap_or(u32::MAX))
            .unwrap_or(1);
        let invocation = match serde_json::from_slice::<Event>(&message.payload)
            .map_err(|e| e.to_string())
            .and_then(|e| Invocation::from_event(&e).map_err(|e| e.to_string()))
        {
            Ok(invocation) => invocation,
            Err(error) => {
                tracing::error!(%error, "stored async invocation unreadable; dropped");
                ack(&message, AckKind::Term).await;
                return;
            }
        };
        let policy = self.functions.get(&invocation.function);
        let _progress = Progress::start(message.clone(), shape.ack_wait / 3);
        let record = if outcome::expired(invocation.accepted, SystemTime::now(), &policy) {
            outcome::expired_record(delivered, None)
        } else if !attempt::may_attempt(delivered, policy.retry.retries) {
            // A crash interrupted the last attempt or the record: the real last answer is unknown.
            outcome::failed(delivered - 1, &attempt::interrupted(delivered))
        } else {
            let result = run::invoke_once(&*self.sender, &invocation, policy.attempt_timeout).await;
            match outcome::after_attempt(delivered, &policy, result) {
                Next::Done(record) => record,
                Next::Retry(delay) => {
                    tracing::debug!(id = %invocation.id, delivered, ?delay, "async attempt failed; redelivery scheduled");
                    ack(&message, AckKind::Nak(Some(delay))).await;
                    return;
                }
            }
        };
        let reported = run::report(&*self.sender, &invocation, &record, &policy).await;
        run::log_end(&invocation, &record, &reported);
        ack(&message, AckKind::Ack).await;
    }
}
