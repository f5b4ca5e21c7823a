//! The supervisor of a set of JetStream durable pull consumers, shared by the broker Triggers'
//! consumers ([`super::consumer`]) and the async invocation workers
//! ([`crate::async_invocation::jetstream_worker`]). A [`PullSource`] says which consumers are wanted,
//! how to open one and how to handle a message; the supervisor does the rest:
//! - every [`RESYNC`] it starts the consumers wanted and not running, re-creates one whose [`Shape`]
//!   changed or whose task ended, and stops the ones no longer wanted ([`PullSource::removed`] then
//!   cleans up after them);
//! - each consumer pulls until stopped, re-opening after errors (NATS down), one task per message;
//! - [`Supervisor::shutdown`] stops pulling and waits a bounded time for the messages being handled.

use std::{collections::HashMap, future::Future, hash::Hash, sync::Arc, time::Duration};

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use tokio::{
    sync::watch,
    task::{JoinHandle, JoinSet},
};

use super::attempt;

/// How often the consumers running are compared with the consumers wanted.
pub const RESYNC: Duration = Duration::from_secs(1);

/// The consumer settings that follow from a delivery policy; a change re-creates the consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// `MaxDeliver`: one delivery per attempt, plus the dead letter's.
    pub max_deliver: i64,
    /// `AckWait`: an attempt, the cold-start budget and a margin.
    pub ack_wait: Duration,
}

impl Shape {
    /// The shape for `retries` retries of attempts of at most `attempt_timeout`, with
    /// `cold_start_budget` for a function woken from zero.
    pub fn new(retries: u32, attempt_timeout: Duration, cold_start_budget: Duration) -> Self {
        Self {
            max_deliver: attempt::max_deliver(retries),
            ack_wait: attempt::ack_wait(attempt_timeout, cold_start_budget),
        }
    }
}

/// What a [`Supervisor`] consumes.
pub trait PullSource: Send + Sync + 'static {
    /// Names one consumer (a Trigger, a Function).
    type Key: Clone + Eq + Hash + Send + Sync + 'static;

    /// What the consumers are, in the plural, for the shutdown warning (e.g. `event consumers`).
    const WHAT: &'static str;

    /// The consumers wanted now, with their settings.
    fn wanted(&self) -> Vec<(Self::Key, Shape)>;

    /// Creates (or updates) `key`'s durable consumer and starts pulling from it.
    fn open(
        &self,
        key: &Self::Key,
        shape: Shape,
    ) -> impl Future<Output = Result<pull::Stream, String>> + Send;

    /// Handles one message of `key`'s consumer; its task is not waited for beyond the drain.
    fn handle(
        &self,
        key: &Self::Key,
        shape: Shape,
        message: jetstream::Message,
    ) -> impl Future<Output = ()> + Send;

    /// Runs once `key` is no longer wanted and its consumer task has been stopped.
    fn removed(&self, key: Self::Key) -> impl Future<Output = ()> + Send;

    /// Logs that `key`'s consumer cannot be opened; it is tried again after [`RESYNC`].
    fn log_not_running(&self, key: &Self::Key, error: &str);

    /// Logs that pulling from `key`'s consumer was interrupted; it is re-opened at once.
    fn log_interrupted(&self, key: &Self::Key, error: &str);
}

/// Running consumers; stop them with [`Supervisor::shutdown`].
pub struct Supervisor {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    what: &'static str,
}

impl Supervisor {
    /// Starts keeping `source`'s consumers in step with [`PullSource::wanted`].
    pub fn start<P: PullSource>(source: Arc<P>) -> Self {
        let (stop, stopped) = watch::channel(false);
        Self {
            stop,
            task: tokio::spawn(supervise(source, stopped)),
            what: P::WHAT,
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
                "{} still busy after the drain; JetStream redelivers their messages",
                self.what
            );
            task.abort();
        }
    }
}

async fn supervise<P: PullSource>(source: Arc<P>, mut stopped: watch::Receiver<bool>) {
    let mut running: HashMap<P::Key, (Shape, JoinHandle<()>)> = HashMap::new();
    loop {
        let wanted = source.wanted();
        for (key, shape) in &wanted {
            let current = running
                .get(key)
                .filter(|(s, task)| s == shape && !task.is_finished());
            if current.is_none() {
                if let Some((_, old)) = running.remove(key) {
                    old.abort();
                }
                let task = tokio::spawn(consume(source.clone(), key.clone(), *shape, stopped.clone()));
                running.insert(key.clone(), (*shape, task));
            }
        }
        let gone: Vec<_> = running
            .keys()
            .filter(|key| !wanted.iter().any(|(k, _)| k == *key))
            .cloned()
            .collect();
        for key in gone {
            if let Some((_, task)) = running.remove(&key) {
                task.abort();
            }
            source.removed(key).await;
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

/// Pulls `key`'s messages until stopped, re-opening the consumer after errors (NATS down).
async fn consume<P: PullSource>(
    source: Arc<P>,
    key: P::Key,
    shape: Shape,
    mut stopped: watch::Receiver<bool>,
) {
    let mut handlers = JoinSet::new();
    'open: while !*stopped.borrow() {
        let mut messages = match source.open(&key, shape).await {
            Ok(messages) => messages,
            Err(error) => {
                source.log_not_running(&key, &error);
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
                        let (source, key) = (source.clone(), key.clone());
                        handlers.spawn(async move { source.handle(&key, shape, message).await });
                    }
                    Some(Err(error)) => {
                        source.log_interrupted(&key, &error.to_string());
                        continue 'open;
                    }
                    None => continue 'open,
                },
            }
        }
    }
    while handlers.join_next().await.is_some() {}
}
