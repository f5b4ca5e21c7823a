//! The idle HTTP/1.1 pools of every pod, keyed by [`Endpoint::id`]. An endpoint owns no pool: its pool
//! is created on first use and closed (with every idle connection in it) when the endpoint is retired
//! or dropped.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, Weak},
    task::Context,
};

use super::{IdlePool, PoolLimits, UpstreamConn};
use crate::endpoints::Endpoint;

type PoolMap = Mutex<HashMap<u64, Arc<IdlePool>>>;

/// Idle connections per endpoint.
#[derive(Clone, Debug, Default)]
pub struct Pools {
    pools: Arc<PoolMap>,
}

fn lock(pools: &PoolMap) -> MutexGuard<'_, HashMap<u64, Arc<IdlePool>>> {
    // Plain data: a panic elsewhere leaves nothing half-updated worth refusing to serve over.
    pools.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pools {
    /// The pool of `endpoint`, or `None` when it is retired (it keeps no connection). The first call
    /// for an endpoint creates its pool and a task that closes it when the endpoint is retired.
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

/// An HTTP/1.1 connection carrying a response, with the pool it goes back to once the response ended.
#[derive(Debug)]
pub struct PooledConn {
    conn: Box<UpstreamConn>,
    pool: Option<Arc<IdlePool>>,
    limits: PoolLimits,
}

impl PooledConn {
    pub(crate) fn new(conn: Box<UpstreamConn>, pool: Option<Arc<IdlePool>>, limits: PoolLimits) -> Self {
        Self { conn, pool, limits }
    }

    /// Polls the connection's IO, which feeds the response body.
    pub fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        self.conn.drive(cx)
    }

    /// Gives the connection back to its pool, unless its endpoint was `retired` meanwhile.
    pub fn checkin(self, retired: bool, cx: &mut Context<'_>) {
        if let Some(pool) = self.pool
            && !retired
        {
            pool.checkin(self.conn, cx, self.limits);
        }
    }
}
