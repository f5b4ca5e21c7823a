//! The usage tasks over the routing table: the reporter flushing every function's usage as records
//! every flush interval and once more at shutdown ([`crate::metering::reporter`]), and the sampler of
//! instance-seconds.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use zeroscale_crds::revision::split_revision_name;

use crate::{
    metering::{
        reporter::{Reporter, UsageSink},
        usage::Window,
    },
    peers::Peering,
    table::RoutingTable,
};

/// Every function's pending usage, as windows.
pub fn take_windows(table: &RoutingTable) -> Vec<Window> {
    let mut windows = Vec::new();
    for function in table.all() {
        // A routing entry per revision: its name is the revision's, its Function the prefix.
        let (name, own) = split_revision_name(&function.key().name);
        for (revision, totals) in function.take_usage() {
            windows.push(Window {
                namespace: function.key().namespace.clone(),
                function: name.to_string(),
                revision: revision.or_else(|| own.map(Arc::from)),
                totals,
            });
        }
    }
    windows
}

/// Flushes every `interval` until `stop`, then flushes once more and retries until `final_deadline`
/// after the stop.
pub async fn run<S: UsageSink>(
    mut reporter: Reporter<S>,
    table: Arc<RoutingTable>,
    interval: Duration,
    stop: CancellationToken,
    final_wait: Duration,
) {
    let mut tick = tokio::time::interval_at(Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                reporter.collect(take_windows(&table));
                reporter.send_pending().await;
            }
            () = stop.cancelled() => break,
        }
    }
    reporter.collect(take_windows(&table));
    if !reporter.drain(Instant::now() + final_wait).await {
        tracing::error!(
            pending = reporter.pending(),
            "shutting down with usage records the sink did not take"
        );
    }
}

/// Adds the time since the last sample to each function's busy and idle instance-seconds, once a
/// second until `stop`. Only the function's owning activator counts (every replica sees every pod).
pub async fn sample_instances(
    table: Arc<RoutingTable>,
    peers: Option<Arc<Peering>>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => break,
        }
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(last);
        last = now;
        for function in table.all() {
            if peers.as_ref().is_none_or(|p| p.owns(function.display())) {
                function.sample_instances(elapsed);
            }
        }
    }
}
