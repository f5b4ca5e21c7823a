//! Choosing a pod for a request: least loaded of two random choices, never past the per-pod
//! concurrency limit when one is set.

use rand::Rng;

pub use crate::endpoints::Endpoint;

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
    use std::{net::SocketAddr, sync::Arc};

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
