//! Zeroscale activator: the data plane that routes requests to functions, buffers them while a
//! function has no ready pod, wakes the function through the autoscaler, balances across pods within
//! their concurrency limits and reports what it sees. See `docs/activator.md`.
//!
//! The pure parts ([`host`], [`queue`], [`balancer`], [`stats`], [`function`], [`table`]) have no
//! network or Kubernetes IO; [`proxy`], [`server`], [`probe`], [`signal_sender`] and [`kube_watch`] are
//! the IO edges.

pub mod access_log;
pub mod anatomy;
pub mod args;
pub mod balancer;
pub mod body;
pub mod client_body;
pub mod endpoints;
pub mod error;
pub mod events;
pub mod forwarding;
pub mod function;
pub mod headers;
pub mod host;
pub mod invoke_async;
pub mod kube_watch;
pub mod lease;
pub mod metering;
pub mod metrics;
pub mod peers;
pub mod probe;
pub mod proxy;
pub mod queue;
pub mod respond;
pub mod revision_settings;
pub mod revision_stats;
pub mod rewrite;
pub mod server;
pub mod settings;
pub mod signal_sender;
pub mod split;
pub mod start;
pub mod starting_pods;
pub mod static_config;
pub mod stats;
pub mod table;
pub mod trace;
pub mod trace_ids;
pub mod upgrade;
pub mod upstream;
pub mod usage_report;

pub use args::Args;
pub use start::{Activator, ActivatorConfig, FunctionSource, StartError};
