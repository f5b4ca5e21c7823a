//! Direct probing of starting pods while requests wait, so a pod is used as soon as it accepts
//! connections rather than when its EndpointSlice update arrives (which can lag by a second or more).
//!
//! The probe is a TCP connect to the pod's address every [`PROBE_INTERVAL`]: a function that listens
//! on its port is taken to serve (the default readiness probe of a Function is the same TCP check).
//! Each pod's attempts run on their own: an answer is acted on the moment its connect completes, never
//! after the round's slowest attempt, so a pod whose address does not answer yet (a SYN dropped while
//! its network is being set up) cannot hold back one that does.

use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use futures::{StreamExt, stream::FuturesUnordered};
use tokio::{net::TcpStream, time::Instant};

use crate::{
    function::{FunctionState, Wakeups},
    signal_sender::SignalSender,
};

/// How often starting pods are probed while requests wait for them. Short, because the time from a
/// pod being able to serve to the first buffered request reaching it (P3) is at most this plus the
/// hand-over; a refused connect to a pod that is not listening yet costs a few microseconds.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(2);

/// How often pods that refused a connection are probed while no request waits: they are routed
/// around meanwhile, so nothing is held up and a slower pace is enough.
pub const FAILED_PROBE_INTERVAL: Duration = Duration::from_millis(25);

/// The shortest time a single connect attempt is given before it counts as unanswered.
const MIN_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(10);

/// After how many intervals without an answer a pod's attempt gets a second one beside it.
const HEDGE_AFTER_INTERVALS: u32 = 2;

/// Probes `function`'s starting pods with TCP connects until none is left or nobody waits.
pub async fn probe_until_answered(function: Arc<FunctionState>, interval: Duration) {
    probe_with(function, interval, |address| async move {
        TcpStream::connect(address).await.map(drop)
    })
    .await;
}

/// Probes `function`'s starting pods with `connect` every `interval` (every
/// [`FAILED_PROBE_INTERVAL`] at most while nobody waits) until [`FunctionState::probe_targets`]
/// says to stop. Each attempt is bounded by four intervals (at least [`MIN_ATTEMPT_TIMEOUT`]). A pod
/// has one attempt in flight, and a second beside it once the first has gone unanswered for
/// [`HEDGE_AFTER_INTERVALS`] intervals; the pod is marked answering as soon as any attempt succeeds.
pub async fn probe_with<C, F>(function: Arc<FunctionState>, interval: Duration, connect: C)
where
    C: Fn(SocketAddr) -> F,
    F: Future<Output = io::Result<()>>,
{
    let attempt_timeout = (interval * 4).max(MIN_ATTEMPT_TIMEOUT);
    let hedge_after = interval * HEDGE_AFTER_INTERVALS;
    let mut attempts = FuturesUnordered::new();
    // Each attempt in flight: the pod's address and when the attempt started.
    let mut in_flight: Vec<(SocketAddr, Instant)> = Vec::new();
    // Targets of the last round: a pod new among them is logged once, at debug, so the time the
    // activator learned a starting pod's address (from its EndpointSlice) can be set beside the time
    // the pod answered: what lies between is the container's start, what lies before is the
    // EndpointSlice's way from the kubelet through the controller to us.
    let mut known: Vec<SocketAddr> = Vec::new();
    let mut next_round = Instant::now();
    loop {
        // A due round runs here, not when a timer fires: tokio's timers tick in whole milliseconds
        // and round a deadline up, so the first round (a new pod's address, requests waiting) would
        // otherwise wait up to a millisecond more, part of every cold start's ready → forward.
        let now = Instant::now();
        if now >= next_round {
            let Some(targets) = function.probe_targets() else {
                break;
            };
            for address in &targets {
                if !known.contains(address) {
                    tracing::debug!(function = function.display(), %address, "probing a starting pod");
                }
            }
            known.clone_from(&targets);
            for address in targets {
                let mut started = in_flight.iter().filter(|(a, _)| *a == address).map(|(_, at)| *at);
                match (started.next(), started.next()) {
                    (None, _) => {}
                    // A connect that neither succeeds nor fails is a SYN that went nowhere (the
                    // pod's network still being set up). Linux resends it only after a second, so
                    // a fresh connect finds the pod once it can answer, not when this one times out.
                    (Some(first), None) if now - first >= hedge_after => {}
                    _ => continue,
                }
                in_flight.push((address, now));
                let attempt = tokio::time::timeout(attempt_timeout, connect(address));
                attempts.push(async move { (address, now, matches!(attempt.await, Ok(Ok(())))) });
            }
            let period = if function.queued() > 0 {
                interval
            } else {
                interval.max(FAILED_PROBE_INTERVAL)
            };
            // From now, not from the planned time: a late round does not cause a catch-up burst.
            next_round = now + period;
        }
        tokio::select! {
            // Answers first: a pod that answered is routed to before anything else happens.
            biased;
            Some((address, started, answered)) = attempts.next(), if !attempts.is_empty() => {
                in_flight.retain(|attempt| *attempt != (address, started));
                if answered {
                    tracing::debug!(function = function.display(), %address, "starting pod answered a probe");
                    function.mark_answering(address);
                }
            }
            () = tokio::time::sleep_until(next_round) => {}
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

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
