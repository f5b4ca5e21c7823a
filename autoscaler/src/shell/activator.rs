//! Whether the activator can receive traffic: required before any scale to zero, because at zero
//! every request for the function goes through the activator. The probe asks the way such a request
//! would arrive: on a new connection to the Service (`HttpClient::unpooled`), so a replica draining
//! through a roll does not speak for the ready ones.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use super::{http::HttpClient, metrics::Metrics};

/// How often the readiness URL is probed.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// A success counts for this long, so one slow probe does not block scale to zero.
const FRESH_FOR: Duration = Duration::from_secs(3);

/// The latest verdict on the activator, shared with the decision loop.
#[derive(Clone, Debug)]
pub struct ActivatorReadiness {
    /// `None`: no URL configured, the activator is assumed able.
    probed: Option<Arc<Probed>>,
}

#[derive(Debug)]
struct Probed {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last successful probe.
    last_ok_ms: AtomicU64,
    ever_ok: AtomicBool,
}

impl ActivatorReadiness {
    /// Always able (no readiness URL).
    pub fn assumed() -> Self {
        Self { probed: None }
    }

    /// Probes `url` every second in the background; 200 means able.
    pub fn probe(url: String, client: HttpClient, metrics: Metrics) -> Self {
        let probed = Arc::new(Probed {
            epoch: Instant::now(),
            last_ok_ms: AtomicU64::new(0),
            ever_ok: AtomicBool::new(false),
        });
        let state = probed.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(PROBE_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut was_ok = None;
            loop {
                interval.tick().await;
                let ok = matches!(client.get(&url, PROBE_INTERVAL).await, Ok(status) if status.is_success());
                if ok {
                    state
                        .last_ok_ms
                        .store(state.epoch.elapsed().as_millis() as u64, Ordering::Release);
                    state.ever_ok.store(true, Ordering::Release);
                }
                metrics.activator_ready.set(i64::from(ok));
                metrics.activator_probes.inc();
                if !state.able() {
                    metrics.activator_unable_probes.inc();
                }
                if was_ok != Some(ok) {
                    tracing::info!(url = %url, able = ok, "activator readiness changed");
                    was_ok = Some(ok);
                }
            }
        });
        Self { probed: Some(probed) }
    }

    /// Whether the activator answered its readiness URL within the last few seconds.
    pub fn is_ready(&self) -> bool {
        self.probed.as_ref().is_none_or(|p| p.able())
    }
}

impl Probed {
    /// The verdict: a probe answered 200 within [`FRESH_FOR`].
    fn able(&self) -> bool {
        if !self.ever_ok.load(Ordering::Acquire) {
            return false;
        }
        let last = Duration::from_millis(self.last_ok_ms.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(last) <= FRESH_FOR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verdict whose clock started `ago` and last saw a 200 `last_ok` after that (or never).
    fn probed(ago: Duration, last_ok: Option<Duration>) -> Probed {
        Probed {
            epoch: Instant::now().checked_sub(ago).expect("a clock this far back"),
            last_ok_ms: AtomicU64::new(last_ok.map_or(0, |d| d.as_millis() as u64)),
            ever_ok: AtomicBool::new(last_ok.is_some()),
        }
    }

    #[test]
    fn able_only_within_three_seconds_of_a_200() {
        let secs = Duration::from_secs;
        assert!(!probed(secs(10), None).able(), "never answered");
        assert!(probed(secs(10), Some(secs(9))).able(), "1 s ago");
        assert!(!probed(secs(10), Some(secs(5))).able(), "5 s ago");
    }
}
