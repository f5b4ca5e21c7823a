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
        let Some(p) = &self.probed else { return true };
        if !p.ever_ok.load(Ordering::Acquire) {
            return false;
        }
        let last = Duration::from_millis(p.last_ok_ms.load(Ordering::Acquire));
        p.epoch.elapsed().saturating_sub(last) <= FRESH_FOR
    }
}
