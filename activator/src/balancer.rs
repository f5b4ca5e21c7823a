//! Choosing a pod for a request: least loaded of two random choices, never past the per-pod
//! concurrency limit when one is set.

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
};

use http::uri::Authority;
use rand::Rng;

use crate::upstream::IdlePool;

/// One routable pod address and the requests in flight to it from this activator.
#[derive(Debug)]
pub struct Endpoint {
    /// Pod IP and port.
    pub address: SocketAddr,
    /// `ip:port` as a URI authority, built once so requests can reuse it.
    pub authority: Authority,
    in_flight: AtomicUsize,
    // Set once the pod left the routable set (terminating, gone, not ready, or failed).
    retired: AtomicBool,
    // Keep-alive connections to this pod; they close when the endpoint is gone and its last request
    // has finished.
    idle: IdlePool,
}

impl Endpoint {
    /// A new endpoint with nothing in flight.
    pub fn new(address: SocketAddr) -> Self {
        let authority = Authority::try_from(address.to_string().as_str())
            .unwrap_or_else(|_| Authority::from_static("invalid.invalid"));
        Self {
            address,
            authority,
            in_flight: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
            idle: IdlePool::default(),
        }
    }

    /// Idle HTTP/1.1 connections to this pod.
    pub fn idle(&self) -> &IdlePool {
        &self.idle
    }

    /// The pod left the routable set: a request that picked it and has not been sent yet goes
    /// elsewhere, and its idle connections close now (a terminating pod closes them itself soon, and
    /// a request written onto one then would be lost).
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
        self.idle.clear();
    }

    /// Whether [`Endpoint::retire`] was called.
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }

    /// Requests in flight to this endpoint.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request sent to it. Called with the function's lock held, so the check-then-increment
    /// in [`pick`] is not racy.
    pub fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request finished.
    pub fn finish(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    fn has_capacity(&self, limit: usize) -> bool {
        limit == 0 || self.in_flight() < limit
    }
}

/// Picks the index of an endpoint for one more request, or `None` when every endpoint is at `limit`
/// (0 = unlimited) or there is none.
pub fn pick<E: AsRef<Endpoint>>(endpoints: &[E], limit: usize, rng: &mut impl Rng) -> Option<usize> {
    match endpoints.len() {
        0 => None,
        1 => endpoints[0].as_ref().has_capacity(limit).then_some(0),
        n => {
            let a = rng.random_range(0..n);
            // A second, different index: offset by 1..n so it never equals `a`.
            let b = (a + rng.random_range(1..n)) % n;
            let (ea, eb) = (endpoints[a].as_ref(), endpoints[b].as_ref());
            let best = if eb.in_flight() < ea.in_flight() { b } else { a };
            if endpoints[best].as_ref().has_capacity(limit) {
                return Some(best);
            }
            // Both choices are full: fall back to the least loaded pod with room, if any.
            endpoints
                .iter()
                .enumerate()
                .filter(|(_, e)| e.as_ref().has_capacity(limit))
                .min_by_key(|(_, e)| e.as_ref().in_flight())
                .map(|(i, _)| i)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    fn endpoints(n: u16) -> Vec<Arc<Endpoint>> {
        (0..n)
            .map(|i| Arc::new(Endpoint::new(SocketAddr::from(([127, 0, 0, 1], 9000 + i)))))
            .collect()
    }

    #[test]
    fn respects_the_limit() {
        let eps = endpoints(3);
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..6 {
            let i = pick(&eps, 2, &mut rng).unwrap();
            eps[i].start();
        }
        assert!(eps.iter().all(|e| e.in_flight() == 2));
        assert_eq!(pick(&eps, 2, &mut rng), None);
        eps[1].finish();
        assert_eq!(pick(&eps, 2, &mut rng), Some(1));
    }

    #[test]
    fn spreads_evenly_without_limit() {
        let eps = endpoints(4);
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = [0usize; 4];
        for _ in 0..40_000 {
            counts[pick(&eps, 0, &mut rng).unwrap()] += 1;
        }
        for c in counts {
            assert!((9_000..=11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn prefers_the_less_loaded() {
        let eps = endpoints(2);
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..5 {
            eps[0].start();
        }
        for _ in 0..100 {
            assert_eq!(pick(&eps, 0, &mut rng), Some(1));
        }
    }
}
