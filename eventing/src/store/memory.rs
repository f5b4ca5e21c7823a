//! The memory backend: the in-memory [`Broker`] plus the same duplicate rule as JetStream's, over a
//! bounded window ([`DedupWindow`]).

use std::{
    sync::{Mutex, PoisonError},
    time::Duration,
};

use cloudevents::Event;
use tokio::time::Instant;

use super::{dedup::DedupWindow, message_id};
use crate::{
    broker::{Broker, Publish, PublishError},
    delivery::{Clock, EventSender},
    metrics::EventMetrics,
};

/// The memory store: what the embedded default has always done, plus duplicate suppression.
pub struct MemoryStore<S, C> {
    broker: Broker<S, C>,
    window: Mutex<DedupWindow>,
    metrics: EventMetrics,
}

impl<S: EventSender, C: Clock> MemoryStore<S, C> {
    /// Wraps `broker`, dropping events whose namespace, `source` and `id` were accepted within
    /// `duplicate_window` (remembering at most `capacity` of them).
    pub fn new(
        broker: Broker<S, C>,
        duplicate_window: Duration,
        capacity: usize,
        metrics: EventMetrics,
    ) -> Self {
        Self {
            broker,
            window: Mutex::new(DedupWindow::new(duplicate_window, capacity)),
            metrics,
        }
    }
}

impl<S: EventSender, C: Clock> Publish for MemoryStore<S, C> {
    fn publish(&self, namespace: &str, event: Event, size: usize) -> Result<(), PublishError> {
        let id = message_id(namespace, &event);
        // Held across the publish (which never waits) so two copies racing cannot both be refused
        // as duplicates of one that then fails.
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if window.check_and_record(&id, Instant::now()) {
            self.metrics.dropped("duplicate");
            tracing::debug!(%namespace, %id, "duplicate event within the window; accepted once");
            return Ok(());
        }
        let published = self.broker.publish(namespace, event, size);
        if published.is_err() {
            window.forget(&id);
        }
        published
    }

    fn has_broker(&self, namespace: &str) -> bool {
        self.broker.has_broker(namespace)
    }
}
