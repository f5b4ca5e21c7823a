//! The JetStream workers: one durable pull consumer per Function (`async_<namespace>_<function>`,
//! explicit acks), kept in step with the Functions known. JetStream's redelivery is the retry
//! schedule: a failed attempt is NAK'd with the back-off as delay and the attempt number is the
//! delivery count, so a crash between attempts neither loses the invocation nor resets its count.
//! A message is acknowledged only once its record reached the destination (or there is none).

use std::{collections::HashMap, sync::Arc, time::Duration, time::SystemTime};

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
    message::AckKind,
};
use cloudevents::Event;
use futures::StreamExt;
use tokio::{
    sync::watch,
    task::{JoinHandle, JoinSet},
};
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
};

/// How often the consumers are compared with the Functions known.
pub const RESYNC: Duration = Duration::from_secs(1);

/// The durable consumer name of `function`'s invocations.
pub fn consumer_name(function: &FunctionKey) -> String {
    format!("async_{}_{}", function.namespace, function.name.replace('.', "_"))
}

/// The consumer settings that follow from a policy; a change re-creates the consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    max_deliver: i64,
    ack_wait: Duration,
}

impl Shape {
    fn of(policy: &AsyncPolicy, cold_start_budget: Duration) -> Self {
        Self {
            max_deliver: attempt::max_deliver(policy.retry.retries),
            ack_wait: attempt::ack_wait(policy.attempt_timeout, cold_start_budget),
        }
    }
}

struct Shared<S> {
    store: Arc<JetStreamInvocations>,
    sender: Arc<S>,
    functions: AsyncFunctions,
}

/// The running workers; stop them with [`AsyncWorkers::shutdown`].
pub struct AsyncWorkers {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AsyncWorkers {
    /// Keeps one consumer per Function in `functions`, invoking through `sender`.
    pub fn start<S: InvocationSender>(
        store: Arc<JetStreamInvocations>,
        sender: Arc<S>,
        functions: AsyncFunctions,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            store,
            sender,
            functions,
        });
        Self {
            stop,
            task: tokio::spawn(supervise(shared, stopped)),
        }
    }

    /// Stops fetching and waits up to `drain` for invocations being run; JetStream redelivers the
    /// rest after their `AckWait`.
    pub async fn shutdown(self, drain: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(drain, &mut task).await.is_err() {
            tracing::warn!(
                ?drain,
                "async workers still busy after the drain; JetStream redelivers their invocations"
            );
            task.abort();
        }
    }
}

async fn supervise<S: InvocationSender>(shared: Arc<Shared<S>>, mut stopped: watch::Receiver<bool>) {
    let mut running: HashMap<FunctionKey, (Shape, JoinHandle<()>)> = HashMap::new();
    let budget = shared.store.events().config().cold_start_budget;
    loop {
        let functions = shared.functions.all();
        for (function, policy) in &functions {
            let shape = Shape::of(policy, budget);
            let current = running
                .get(function)
                .filter(|(s, task)| *s == shape && !task.is_finished());
            if current.is_none() {
                if let Some((_, old)) = running.remove(function) {
                    old.abort();
                }
                let task = tokio::spawn(consume(shared.clone(), function.clone(), shape, stopped.clone()));
                running.insert(function.clone(), (shape, task));
            }
        }
        // A deleted Function's consumer stops; its consumer and messages stay for the same name.
        running.retain(|key, (_, task)| {
            let keep = functions.iter().any(|(f, _)| f == key);
            if !keep {
                task.abort();
            }
            keep
        });
        tokio::select! {
            _ = tokio::time::sleep(RESYNC) => {}
            _ = stopped.changed() => break,
        }
    }
    for (_, (_, task)) in running {
        let _ = task.await;
    }
}

impl<S: InvocationSender> Shared<S> {
    async fn open(&self, function: &FunctionKey, shape: Shape) -> Result<pull::Stream, String> {
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
    async fn handle(&self, shape: Shape, message: jetstream::Message) {
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

/// Pulls `function`'s invocations until stopped, re-opening the consumer after errors (NATS down).
async fn consume<S: InvocationSender>(
    shared: Arc<Shared<S>>,
    function: FunctionKey,
    shape: Shape,
    mut stopped: watch::Receiver<bool>,
) {
    let mut handlers = JoinSet::new();
    'open: while !*stopped.borrow() {
        let mut messages = match shared.open(&function, shape).await {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%function, %error, "async worker not running; retrying");
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
                        let shared = shared.clone();
                        handlers.spawn(async move { shared.handle(shape, message).await });
                    }
                    Some(Err(error)) => {
                        tracing::debug!(%function, %error, "pull interrupted; re-opening the consumer");
                        continue 'open;
                    }
                    None => continue 'open,
                },
            }
        }
    }
    while handlers.join_next().await.is_some() {}
}
