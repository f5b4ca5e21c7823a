//! The idle HTTP/1.1 pools of every pod, keyed by [`Endpoint::id`]. An endpoint owns no pool: its pool
//! is created on first use and closed (with every idle connection in it) when the endpoint is retired
//! or dropped. While any pool exists, a sweeper closes the connections that went stale in them
//! ([`IdlePool::sweep`]) every [`SWEEP_INTERVAL`].

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
    sync::{
        Arc, Mutex, MutexGuard, Weak,
        atomic::{AtomicBool, Ordering},
    },
    task::Context,
    time::Duration,
};

use super::{IdlePool, PoolLimits, UpstreamConn, h1::RawConn};
use crate::endpoints::Endpoint;

type PoolMap = Mutex<ById>;

/// The pools by endpoint id.
type ById = HashMap<u64, Arc<IdlePool>, BuildHasherDefault<IdHasher>>;

/// Hashes keys the activator chooses itself: the endpoint ids the pools are keyed by (assigned in
/// sequence), and the peers' addresses (from the activator's own Service). No client can choose
/// colliding ones, so one multiplication spreads them over the table; SipHash's protection would
/// cost a request about 150 instructions for nothing.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHasher(u64);

/// 2^64 divided by the golden ratio: consecutive ids land far apart, high bits included.
const SPREAD: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(SPREAD);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(SPREAD);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// How often idle connections are checked for a close by the other side and for their idle timeout
/// (a checkout applies the timeout too). Connections to peer activators time out at half the peers'
/// header-read timeout, so this side closes them first (`peers::forward::peer_idle_timeout`).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(2);

/// Idle connections per endpoint.
#[derive(Clone, Debug)]
pub struct Pools {
    pools: Arc<PoolMap>,
    /// What the sweeper applies.
    limits: PoolLimits,
    /// Whether the sweeper task runs (started with the first pool, ends with the last `Pools`).
    sweeping: Arc<AtomicBool>,
}

fn lock(pools: &PoolMap) -> MutexGuard<'_, ById> {
    // Plain data: a panic elsewhere leaves nothing half-updated worth refusing to serve over.
    pools.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pools {
    /// No pool yet; the sweeper, once started, closes connections idle past `limits.idle_timeout`.
    pub fn new(limits: PoolLimits) -> Self {
        Self {
            pools: Arc::default(),
            limits,
            sweeping: Arc::default(),
        }
    }

    /// How long idle connections are kept and how many per endpoint.
    pub fn limits(&self) -> PoolLimits {
        self.limits
    }

    /// The pool of `endpoint`, or `None` when it is retired (it keeps no connection). The first call
    /// for an endpoint creates its pool and a task that closes it when the endpoint is retired; the
    /// first call of all starts the sweeper.
    pub fn of(&self, endpoint: &Endpoint) -> Option<Arc<IdlePool>> {
        if endpoint.is_retired() {
            return None;
        }
        let id = endpoint.id();
        let mut pools = lock(&self.pools);
        if let Some(pool) = pools.get(&id) {
            return Some(Arc::clone(pool));
        }
        let pool = Arc::new(IdlePool::default());
        pools.insert(id, Arc::clone(&pool));
        drop(pools);
        if !self.sweeping.swap(true, Ordering::Relaxed) {
            tokio::spawn(sweep_every(
                SWEEP_INTERVAL,
                Arc::downgrade(&self.pools),
                self.limits,
            ));
        }
        let retired = endpoint.retirement();
        let weak: Weak<PoolMap> = Arc::downgrade(&self.pools);
        tokio::spawn(async move {
            retired.await;
            if let Some(pools) = weak.upgrade() {
                let gone = lock(&pools).remove(&id);
                // Closing the idle connections (dropping them) happens outside the map's lock.
                if let Some(pool) = gone {
                    pool.clear();
                }
            }
        });
        Some(pool)
    }

    /// Closes the idle connections to `endpoint` (one of them broke: the pod is likely going away).
    pub fn clear(&self, endpoint: &Endpoint) {
        let pool = lock(&self.pools).get(&endpoint.id()).cloned();
        if let Some(pool) = pool {
            pool.clear();
        }
    }

    /// Idle connections to `endpoint` now.
    pub fn idle(&self, endpoint: &Endpoint) -> usize {
        let pool = lock(&self.pools).get(&endpoint.id()).cloned();
        pool.map_or(0, |p| p.idle())
    }
}

/// Sweeps every pool of `pools` each `interval` until the pools are dropped.
async fn sweep_every(interval: Duration, pools: Weak<PoolMap>, limits: PoolLimits) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(pools) = pools.upgrade() else { return };
        // Swept outside the map's lock: each pool takes its own.
        let each: Vec<Arc<IdlePool>> = lock(&pools).values().cloned().collect();
        drop(pools);
        let swept: usize = each.iter().map(|pool| pool.sweep(limits)).sum();
        if swept > 0 {
            tracing::debug!(swept, "closed idle upstream connections");
        }
    }
}

/// The way back to its pool of an HTTP/1.1 connection carrying a response: hyper's client on it when
/// the request's body was streamed (driven from the response body), else nothing more (the connection
/// is in the response body itself, [`super::h1::H1Body`]).
#[derive(Debug)]
pub struct PooledConn {
    hyper: Option<Box<UpstreamConn>>,
    pool: Option<Arc<IdlePool>>,
    limits: PoolLimits,
}

impl PooledConn {
    pub(crate) fn new(
        hyper: Option<Box<UpstreamConn>>,
        pool: Option<Arc<IdlePool>>,
        limits: PoolLimits,
    ) -> Self {
        Self { hyper, pool, limits }
    }

    /// Polls hyper's connection IO, if any, which feeds the response body.
    pub fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        self.hyper.as_mut().is_some_and(|conn| conn.drive(cx))
    }

    /// Gives the connection back to its pool (`raw`, taken from the ended body, or hyper's socket),
    /// unless its endpoint was `retired` meanwhile.
    pub fn checkin(self, raw: Option<Box<RawConn>>, retired: bool, cx: &mut Context<'_>) {
        let Some(pool) = self.pool.filter(|_| !retired) else {
            return;
        };
        let conn = match (raw, self.hyper) {
            (Some(raw), _) => Some(raw),
            (None, Some(hyper)) => hyper.into_raw(cx),
            (None, None) => None,
        };
        if let Some(conn) = conn {
            pool.checkin(conn, self.limits);
        }
    }
}
