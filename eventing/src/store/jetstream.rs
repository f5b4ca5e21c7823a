//! The JetStream backend: accepted events are messages of one stream (`ZEROSCALE_EVENTS` by default,
//! file storage, interest retention), on the subject `<prefix>.<namespace>`, in structured mode
//! (the CloudEvent as JSON), with `Nats-Msg-Id` = [`super::message_id`]. The ingress answers 202
//! only once JetStream acknowledged the publish; when NATS cannot be reached it answers 503 naming the
//! store. Interest retention: a message stays until every broker Trigger of its namespace (each a
//! durable consumer, [`super::consumer`]) acknowledged it; one that no Trigger wants is dropped.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use async_nats::{
    connection::State,
    jetstream::{self, message::PublishMessage, stream},
};
use bytes::Bytes;
use cloudevents::Event;

use super::{DEFAULT_DUPLICATE_WINDOW, EventStore, StoreFuture, message_id};
use crate::{broker::PublishError, metrics::EventMetrics, router::RoutingTable};

/// The backend's name in errors and flags.
pub const STORE: &str = "jetstream";

/// Settings of the JetStream backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JetStreamConfig {
    /// NATS server URL(s), comma-separated (`--nats-url`).
    pub url: String,
    /// Stream name (`--nats-stream`).
    pub stream: String,
    /// Subject prefix; events of namespace `ns` go to `<prefix>.ns`.
    pub subject_prefix: String,
    /// Stream replicas (`--nats-replicas`): 1 for development, 3 for production.
    pub replicas: usize,
    /// Duplicate window (`--event-duplicate-window`).
    pub duplicate_window: Duration,
    /// How long a publish waits for JetStream's acknowledgement before the ingress answers 503.
    pub publish_timeout: Duration,
    /// Time a Function may take to wake, added to each consumer's `AckWait`
    /// (`--event-cold-start-budget`).
    pub cold_start_budget: Duration,
    /// Unacknowledged messages per Trigger (the consumer's `MaxAckPending`).
    pub max_ack_pending: i64,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            stream: "ZEROSCALE_EVENTS".into(),
            subject_prefix: "zeroscale.events".into(),
            replicas: 1,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            publish_timeout: Duration::from_secs(5),
            cold_start_budget: Duration::from_secs(120),
            max_ack_pending: 256,
        }
    }
}

/// Why the JetStream backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum JetStreamError {
    /// The URL is not a NATS address.
    #[error("invalid --nats-url {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The JetStream event store.
pub struct JetStreamStore {
    client: async_nats::Client,
    context: jetstream::Context,
    config: JetStreamConfig,
    routes: RoutingTable,
    metrics: EventMetrics,
    stream_ready: AtomicBool,
}

impl std::fmt::Debug for JetStreamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl JetStreamStore {
    /// Connects to NATS (in the background: an unreachable server is retried forever, and until it
    /// answers every publish gets 503) for the broker routes in `routes`.
    pub async fn connect(
        config: JetStreamConfig,
        routes: RoutingTable,
        metrics: EventMetrics,
    ) -> Result<Self, JetStreamError> {
        let client = async_nats::ConnectOptions::new()
            .name("zeroscale-activator")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .reconnect_delay_callback(|attempts| Duration::from_millis((attempts as u64 * 100).min(2000)))
            .connect(config.url.as_str())
            .await
            .map_err(|e| JetStreamError::Url {
                url: config.url.clone(),
                reason: e.to_string(),
            })?;
        let context = jetstream::ContextBuilder::new()
            .timeout(config.publish_timeout)
            .build(client.clone());
        Ok(Self {
            client,
            context,
            config,
            routes,
            metrics,
            stream_ready: AtomicBool::new(false),
        })
    }

    /// The JetStream context (requests time out after the publish timeout; asynchronous invocations
    /// keep their own stream through it).
    pub fn context(&self) -> &jetstream::Context {
        &self.context
    }

    /// Whether the client is connected to NATS now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// The settings.
    pub fn config(&self) -> &JetStreamConfig {
        &self.config
    }

    /// The routes whose broker Triggers have consumers.
    pub fn routes(&self) -> &RoutingTable {
        &self.routes
    }

    /// The subject of `namespace`'s events.
    pub fn subject(&self, namespace: &str) -> String {
        format!("{}.{namespace}", self.config.subject_prefix)
    }

    /// Creates the stream, or updates it to the settings (replicas, duplicate window).
    pub async fn ensure_stream(&self) -> Result<stream::Stream, PublishError> {
        let config = stream::Config {
            name: self.config.stream.clone(),
            subjects: vec![format!("{}.>", self.config.subject_prefix)],
            retention: stream::RetentionPolicy::Interest,
            storage: stream::StorageType::File,
            num_replicas: self.config.replicas.max(1),
            duplicate_window: self.config.duplicate_window,
            ..Default::default()
        };
        self.context.create_or_update_stream(config).await.map_err(|e| {
            unavailable(format!(
                "cannot create or update stream {}: {e}",
                self.config.stream
            ))
        })?;
        self.stream_ready.store(true, Ordering::Release);
        self.context
            .get_stream(&self.config.stream)
            .await
            .map_err(|e| unavailable(format!("cannot read stream {}: {e}", self.config.stream)))
    }

    /// Stores `event` for `namespace` and waits for JetStream's acknowledgement; `Ok(true)` when it
    /// was a duplicate within the window (stored once, earlier).
    pub async fn store(&self, namespace: &str, event: &Event) -> Result<bool, PublishError> {
        if self.client.connection_state() != State::Connected {
            return Err(unavailable(format!(
                "not connected to NATS at {}",
                self.config.url
            )));
        }
        if !self.stream_ready.load(Ordering::Acquire) {
            self.ensure_stream().await?;
        }
        let payload =
            serde_json::to_vec(event).map_err(|e| unavailable(format!("cannot encode the event: {e}")))?;
        let ack = self
            .context
            .send_publish(
                self.subject(namespace),
                PublishMessage::build()
                    .payload(Bytes::from(payload))
                    .message_id(message_id(namespace, event)),
            )
            .await
            .map_err(|e| unavailable(format!("publish to NATS at {} failed: {e}", self.config.url)))?
            .await
            .map_err(|e| {
                // A lost stream (a server restarted without its store) is created again next time.
                self.stream_ready.store(false, Ordering::Release);
                unavailable(format!("JetStream did not acknowledge the event: {e}"))
            })?;
        Ok(ack.duplicate)
    }
}

impl EventStore for JetStreamStore {
    fn append<'a>(
        &'a self,
        namespace: &'a str,
        event: Event,
        _size: usize,
    ) -> StoreFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            if self.store(namespace, &event).await? {
                self.metrics.dropped("duplicate");
            } else {
                self.metrics.accepted(namespace);
            }
            Ok(())
        })
    }

    fn has_broker(&self, namespace: &str) -> bool {
        self.routes.has_broker(namespace)
    }
}

fn unavailable(reason: String) -> PublishError {
    PublishError::StoreUnavailable { store: STORE, reason }
}
