//! Direct probing of starting pods while requests wait, so a pod is used as soon as it accepts
//! connections rather than when its EndpointSlice update arrives (which can lag by a second or more).
//!
//! The probe is a TCP connect to the pod's address every [`PROBE_INTERVAL`]: a function that listens
//! on its port is taken to serve (the default readiness probe of a Function is the same TCP check).

use std::{sync::Arc, time::Duration};

use tokio::net::TcpStream;

use crate::{
    function::{FunctionState, Wakeups},
    signal_sender::SignalSender,
};

/// How often starting pods are probed while requests wait.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(25);

/// Probes `function`'s starting pods until none is left or nobody waits.
pub async fn probe_until_answered(function: Arc<FunctionState>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(targets) = function.probe_targets() else {
            break;
        };
        let probes = targets.into_iter().map(|address| async move {
            let answered = tokio::time::timeout(interval * 4, TcpStream::connect(address)).await;
            (address, matches!(answered, Ok(Ok(_))))
        });
        for (address, answered) in futures::future::join_all(probes).await {
            if answered {
                tracing::debug!(function = function.display(), %address, "starting pod answered a probe");
                function.mark_answering(address);
            }
        }
    }
}

/// The activator's [`Wakeups`]: demand through the signal sender, probes on spawned tasks.
#[derive(Debug)]
pub struct ActivatorWakeups {
    signals: Arc<SignalSender>,
    probe_interval: Duration,
}

impl ActivatorWakeups {
    /// Wakeups sending demand through `signals` and probing every `probe_interval`.
    pub fn new(signals: Arc<SignalSender>, probe_interval: Duration) -> Self {
        Self {
            signals,
            probe_interval,
        }
    }
}

impl Wakeups for ActivatorWakeups {
    fn demand(&self, function: &Arc<FunctionState>, queued: u64) {
        self.signals.send_demand(function.key().clone(), queued);
    }

    fn probe(&self, function: &Arc<FunctionState>) {
        tokio::spawn(probe_until_answered(Arc::clone(function), self.probe_interval));
    }
}
