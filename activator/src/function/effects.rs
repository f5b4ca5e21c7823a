//! What a transition of the per-function state machine ([`super::core::Core`]) asks the IO shell to
//! do once the state's lock is released.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::{endpoints::Endpoint, error::ProxyError, settings::Limits};

/// Where an admitted request goes.
#[derive(Debug)]
pub enum Admit {
    /// To `endpoint`, now; its slot is already counted.
    Go {
        /// The chosen pod.
        endpoint: Arc<Endpoint>,
        /// The function's timeouts and protocol as of the grant.
        limits: Limits,
    },
    /// Into the queue as waiter `id`.
    Wait {
        /// Identifies the waiter when it gives up.
        id: u64,
        /// The function's timeouts as of admission.
        limits: Limits,
    },
}

/// A waiter handed a pod by dispatch.
#[derive(Debug)]
pub struct Grant<W> {
    /// How to tell the waiter.
    pub waiter: W,
    /// The chosen pod; its slot is already counted.
    pub endpoint: Arc<Endpoint>,
    /// When the request arrived (its deadlines count from here).
    pub arrived: Instant,
    /// The function's timeouts and protocol as of the grant.
    pub limits: Limits,
    /// Whether the waiter started a cold episode.
    pub cold: bool,
}

/// Metric changes, applied by the shell outside the state's lock.
#[derive(Debug, Default)]
pub struct MetricChanges {
    /// Change of the queue depth gauge.
    pub queue_depth: i64,
    /// Change of the in-flight gauge.
    pub in_flight: i64,
    /// Cold episodes started.
    pub cold_starts: u64,
    /// The open cold episode's first pod address became known.
    pub cold_address_known: bool,
    /// Queue waits that ended with a pod, and whether the waiter started a cold episode.
    pub waits: Vec<(Duration, bool)>,
    /// Status codes of responses that finished.
    pub responses: Vec<u16>,
    /// Duration of the request that finished, from arrival.
    pub duration: Option<Duration>,
}

/// Everything a transition asks for; `W` is how a waiter is handed its outcome.
#[derive(Debug)]
pub struct Effects<W> {
    /// Waiters that got a pod.
    pub grants: Vec<Grant<W>>,
    /// Waiters that get an error (and count it as a response and maybe a rejection).
    pub failures: Vec<(W, ProxyError)>,
    /// Send `dev.zeroscale.demand` with this many requests queued.
    pub demand: Option<u64>,
    /// Start a prober.
    pub probe: bool,
    /// A pod that refused a connection is routed around until it answers a probe.
    pub failed_pod: Option<SocketAddr>,
    /// Metric changes.
    pub metrics: MetricChanges,
}

impl<W> Default for Effects<W> {
    fn default() -> Self {
        Self {
            grants: Vec::new(),
            failures: Vec::new(),
            demand: None,
            probe: false,
            failed_pod: None,
            metrics: MetricChanges::default(),
        }
    }
}
