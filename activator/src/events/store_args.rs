//! The event store's flags (`docs/eventing.md`, "Event stores"), flattened into the activator's
//! [`crate::args::Args`].

use std::time::Duration;

use zeroscale_eventing::store::{Backend, StoreConfig, jetstream::JetStreamConfig};

fn duration(value: &str) -> Result<Duration, String> {
    zeroscale_crds::duration::parse(value).map_err(|e| e.to_string())
}

/// Where accepted broker events are kept.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct EventStoreArgs {
    /// Event store: `memory` (this process; lost if it dies) or `jetstream` (NATS JetStream,
    /// `--nats-url`; 202 only once stored).
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_EVENT_STORE", default_value = "memory")]
    pub event_store: Backend,
    /// Window within which a second event with the same namespace, `source` and `id` is stored once.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_EVENT_DUPLICATE_WINDOW", default_value = "2m", value_parser = duration)]
    pub event_duplicate_window: Duration,
    /// Time a Function may take to wake, added to each JetStream consumer's `AckWait` beyond the
    /// Trigger's per-attempt timeout.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_EVENT_COLD_START_BUDGET", default_value = "2m", value_parser = duration)]
    pub event_cold_start_budget: Duration,
    /// NATS server URL(s), comma-separated (`--event-store jetstream`).
    #[arg(
        long,
        env = "ZEROSCALE_ACTIVATOR_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// JetStream stream holding the events.
    #[arg(
        long,
        env = "ZEROSCALE_ACTIVATOR_NATS_STREAM",
        default_value = "ZEROSCALE_EVENTS"
    )]
    pub nats_stream: String,
    /// Replicas of the stream: 1 with one NATS server, 3 with a cluster of three.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_NATS_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_replicas: u8,
    /// Largest body of an async invocation (`Prefer: respond-async`), in bytes; larger ones get 413.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_ASYNC_MAX_BODY_BYTES", default_value_t = zeroscale_eventing::store::DEFAULT_ASYNC_MAX_BODY)]
    pub async_max_body_bytes: usize,
}

impl EventStoreArgs {
    /// The store settings these flags say.
    pub fn config(&self) -> StoreConfig {
        StoreConfig {
            backend: self.event_store,
            duplicate_window: self.event_duplicate_window,
            jetstream: JetStreamConfig {
                url: self.nats_url.clone(),
                stream: self.nats_stream.clone(),
                replicas: usize::from(self.nats_replicas),
                duplicate_window: self.event_duplicate_window,
                cold_start_budget: self.event_cold_start_budget,
                ..JetStreamConfig::default()
            },
            async_max_body: self.async_max_body_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use zeroscale_eventing::store::DEFAULT_DUPLICATE_WINDOW;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        store: EventStoreArgs,
    }

    #[test]
    fn defaults_are_the_memory_store_with_a_two_minute_window() {
        let config = Cli::parse_from(["activator"]).store.config();
        assert_eq!(config.backend, Backend::Memory);
        assert_eq!(config.duplicate_window, DEFAULT_DUPLICATE_WINDOW);
        assert_eq!(config.jetstream.url, "nats://127.0.0.1:4222");
        assert_eq!(config.jetstream.replicas, 1);
    }

    #[test]
    fn jetstream_flags_reach_its_config_and_bad_values_are_named() {
        let cli = Cli::parse_from([
            "activator",
            "--event-store",
            "jetstream",
            "--nats-url",
            "nats://nats:4222",
            "--nats-replicas",
            "3",
            "--event-duplicate-window",
            "5m",
            "--event-cold-start-budget",
            "30s",
            "--async-max-body-bytes",
            "4096",
        ]);
        let config = cli.store.config();
        assert_eq!(config.backend, Backend::JetStream);
        assert_eq!(config.jetstream.url, "nats://nats:4222");
        assert_eq!(config.jetstream.replicas, 3);
        assert_eq!(config.jetstream.duplicate_window, Duration::from_secs(300));
        assert_eq!(config.jetstream.cold_start_budget, Duration::from_secs(30));
        assert_eq!(config.async_max_body, 4096);
        let error = Cli::try_parse_from(["activator", "--event-store", "kafka"])
            .err()
            .expect("refused");
        assert!(
            error.to_string().contains("unknown event store \"kafka\""),
            "{error}"
        );
    }
}
