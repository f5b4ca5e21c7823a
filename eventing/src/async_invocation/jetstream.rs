//! The JetStream store of async invocations: the stream `ZEROSCALE_ASYNC` (file storage, work-queue
//! retention, so an invocation stays until its worker acknowledged it, whether or not a consumer
//! existed when it arrived), subject `zeroscale.async.<namespace>.<function>`, `Nats-Msg-Id` =
//! `<namespace>/<function>/<Idempotency-Key>` when the request has one. 202 only once JetStream
//! acknowledged the publish; 503 naming the store when NATS cannot be reached.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use async_nats::jetstream::{message::PublishMessage, stream};
use bytes::Bytes;
use cloudevents::{AttributesReader, Event};
use zeroscale_common::signals::FunctionKey;

use super::{
    request::Invocation,
    store::{Accepted, InvocationStore},
};
use crate::{
    broker::PublishError,
    store::{StoreFuture, jetstream::JetStreamStore},
};

/// Name of the stream holding async invocations.
pub const ASYNC_STREAM: &str = "ZEROSCALE_ASYNC";
/// Prefix of its subjects.
pub const ASYNC_SUBJECT_PREFIX: &str = "zeroscale.async";

/// The JetStream store of async invocations, sharing the event store's NATS connection and settings
/// (replicas, duplicate window).
pub struct JetStreamInvocations {
    events: Arc<JetStreamStore>,
    ready: AtomicBool,
}

impl JetStreamInvocations {
    /// Invocations kept over `events`' connection.
    pub fn new(events: Arc<JetStreamStore>) -> Self {
        Self {
            events,
            ready: AtomicBool::new(false),
        }
    }

    /// The event store this one shares a connection with.
    pub fn events(&self) -> &JetStreamStore {
        &self.events
    }

    /// The subject of `function`'s invocations.
    pub fn subject(function: &FunctionKey) -> String {
        format!("{ASYNC_SUBJECT_PREFIX}.{}.{}", function.namespace, function.name)
    }

    /// Creates the stream, or updates it to the settings.
    pub async fn ensure_stream(&self) -> Result<stream::Stream, PublishError> {
        let settings = self.events.config();
        let config = stream::Config {
            name: ASYNC_STREAM.into(),
            subjects: vec![format!("{ASYNC_SUBJECT_PREFIX}.>")],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            num_replicas: settings.replicas.max(1),
            duplicate_window: settings.duplicate_window,
            ..Default::default()
        };
        let context = self.events.context();
        context
            .create_or_update_stream(config)
            .await
            .map_err(|e| unavailable(format!("cannot create or update stream {ASYNC_STREAM}: {e}")))?;
        self.ready.store(true, Ordering::Release);
        context
            .get_stream(ASYNC_STREAM)
            .await
            .map_err(|e| unavailable(format!("cannot read stream {ASYNC_STREAM}: {e}")))
    }

    async fn store(&self, invocation: Invocation) -> Result<Accepted, PublishError> {
        if !self.events.is_connected() {
            return Err(unavailable(format!(
                "not connected to NATS at {}",
                self.events.config().url
            )));
        }
        if !self.ready.load(Ordering::Acquire) {
            self.ensure_stream().await?;
        }
        let payload = serde_json::to_vec(&invocation.to_event())
            .map_err(|e| unavailable(format!("cannot encode the invocation: {e}")))?;
        let mut message = PublishMessage::build().payload(Bytes::from(payload));
        if let Some(key) = invocation.dedup_key() {
            message = message.message_id(key);
        }
        let ack = self
            .events
            .context()
            .send_publish(Self::subject(&invocation.function), message)
            .await
            .map_err(|e| unavailable(format!("publish to NATS failed: {e}")))?
            .await
            .map_err(|e| {
                self.ready.store(false, Ordering::Release);
                unavailable(format!("JetStream did not acknowledge the invocation: {e}"))
            })?;
        if !ack.duplicate {
            return Ok(Accepted {
                id: invocation.id,
                duplicate: false,
            });
        }
        // The original's id, while it is still stored; once run and acknowledged it is gone.
        let original = match self.ensure_stream().await {
            Ok(stream) => stream
                .get_raw_message(ack.sequence)
                .await
                .ok()
                .and_then(|m| serde_json::from_slice::<Event>(&m.payload).ok())
                .map(|e| e.id().to_string()),
            Err(_) => None,
        };
        Ok(Accepted {
            id: original.unwrap_or(invocation.id),
            duplicate: true,
        })
    }
}

impl InvocationStore for JetStreamInvocations {
    fn append(&self, invocation: Invocation) -> StoreFuture<'_, Result<Accepted, PublishError>> {
        Box::pin(self.store(invocation))
    }

    fn name(&self) -> &'static str {
        crate::store::jetstream::STORE
    }
}

fn unavailable(reason: String) -> PublishError {
    PublishError::StoreUnavailable {
        store: crate::store::jetstream::STORE,
        reason,
    }
}
