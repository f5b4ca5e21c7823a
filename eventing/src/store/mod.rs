//! Where accepted events live until every Trigger has them delivered: the pluggable event store.
//!
//! - [`memory`]: the embedded default. The in-memory [`crate::broker::Broker`], with a bounded window of
//!   recently accepted `source` + `id` pairs to drop a producer's retried publish. An accepted event is
//!   lost when the process holding it dies (`docs/eventing.md`, "What is guaranteed").
//! - [`jetstream`]: NATS JetStream. An event is accepted only once JetStream acknowledged it, and
//!   each broker Trigger reads it through its own durable pull consumer ([`consumer`]).
//!
//! The ingress depends on [`EventStore`] only.

pub mod attempt;
pub mod consumer;
pub mod dedup;
pub(crate) mod handler;
pub mod jetstream;
mod jetstream_backlog;
pub mod memory;
pub mod supervisor;

#[cfg(test)]
mod jetstream_tests;
#[cfg(test)]
mod memory_tests;
#[cfg(test)]
pub(crate) mod nats_server;

use std::{fmt, future::Future, pin::Pin, str::FromStr, time::Duration};

use cloudevents::{AttributesReader, Event};

use crate::broker::{Publish, PublishError};

/// A boxed future of a store operation (the ingress holds stores as trait objects).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Default time within which a second event with the same `source` and `id` is stored once
/// (JetStream's own default, and Knative's habit of retrying within a minute or two).
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Default largest body of an async invocation: 1 MiB.
pub const DEFAULT_ASYNC_MAX_BODY: usize = 1024 * 1024;

/// Accepts events for a namespace's broker and keeps them until delivered.
pub trait EventStore: Send + Sync + 'static {
    /// Stores `event` (of about `size` bytes) for `namespace`'s broker. Resolves `Ok` only once the
    /// store holds it, so the ingress may answer 202; a duplicate of an event stored within the
    /// duplicate window resolves `Ok` too and is not stored again.
    fn append<'a>(
        &'a self,
        namespace: &'a str,
        event: Event,
        size: usize,
    ) -> StoreFuture<'a, Result<(), PublishError>>;

    /// Whether `namespace` has a broker (a Trigger with a `broker` source); the ingress answers 404
    /// for the others.
    fn has_broker(&self, namespace: &str) -> bool;
}

/// Every in-memory publisher is a store whose "stored" means "in this process's memory".
impl<P: Publish> EventStore for P {
    fn append<'a>(
        &'a self,
        namespace: &'a str,
        event: Event,
        size: usize,
    ) -> StoreFuture<'a, Result<(), PublishError>> {
        Box::pin(std::future::ready(self.publish(namespace, event, size)))
    }

    fn has_broker(&self, namespace: &str) -> bool {
        Publish::has_broker(self, namespace)
    }
}

/// The store settings (`--event-store` and the flags of its backend).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// The backend.
    pub backend: Backend,
    /// Window of the memory backend's duplicate rule (JetStream's is in `jetstream`).
    pub duplicate_window: Duration,
    /// Settings of the JetStream backend, used when it is chosen.
    pub jetstream: jetstream::JetStreamConfig,
    /// Largest body of an async invocation (`--async-max-body-bytes`); larger ones get 413.
    pub async_max_body: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Memory,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            jetstream: jetstream::JetStreamConfig::default(),
            async_max_body: DEFAULT_ASYNC_MAX_BODY,
        }
    }
}

/// Which store holds accepted events (`--event-store`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// This process's memory.
    #[default]
    Memory,
    /// NATS JetStream.
    JetStream,
}

impl Backend {
    /// The name the flag and the chart use.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::JetStream => "jetstream",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An `--event-store` value that names no backend.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown event store {0:?}: expected memory or jetstream")]
pub struct UnknownBackend(String);

impl FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "memory" => Ok(Backend::Memory),
            "jetstream" => Ok(Backend::JetStream),
            other => Err(UnknownBackend(other.to_string())),
        }
    }
}

/// The key under which an event is de-duplicated: its namespace, `source` and `id` (JetStream's
/// `Nats-Msg-Id`). The namespace is part of it because the same event posted to two namespaces is
/// two events. Unambiguous: the namespace is a DNS label (no `:`), the source's length says where
/// the `id` starts; bytes outside printable ASCII, and `%`, are percent-encoded so the key is a
/// valid header value.
pub fn message_id(namespace: &str, event: &Event) -> String {
    let source = event.source().to_string();
    let raw = format!("{namespace}:{}:{source}{}", source.len(), event.id());
    let mut key = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_graphic() && byte != b'%' {
            key.push(char::from(byte));
        } else {
            key.push_str(&format!("%{byte:02X}"));
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use cloudevents::{EventBuilder, EventBuilderV10};

    use super::*;

    fn event(source: &str, id: &str) -> Event {
        EventBuilderV10::new()
            .id(id)
            .source(source)
            .ty("t")
            .build()
            .expect("valid event")
    }

    #[test]
    fn message_id_is_namespace_source_and_id() {
        assert_eq!(message_id("shop", &event("/orders", "1")), "shop:7:/orders1");
        assert_ne!(
            message_id("shop", &event("/a", "b1")),
            message_id("shop", &event("/ab", "1"))
        );
        assert_ne!(
            message_id("shop", &event("/a", "1")),
            message_id("bank", &event("/a", "1"))
        );
    }

    #[test]
    fn message_id_escapes_what_a_header_cannot_hold() {
        assert_eq!(
            message_id("shop", &event("/a", "x y%é")),
            "shop:2:/ax%20y%25%C3%A9"
        );
    }

    #[test]
    fn backend_names_round_trip_and_unknown_ones_are_named() {
        for backend in [Backend::Memory, Backend::JetStream] {
            assert_eq!(backend.name().parse::<Backend>(), Ok(backend));
        }
        let error = "kafka".parse::<Backend>().expect_err("unknown");
        assert_eq!(
            error.to_string(),
            "unknown event store \"kafka\": expected memory or jetstream"
        );
    }
}
