//! The in-flight request counter behind overlap detection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch: pods on one node share the clock, so a client can compute how
/// many requests overlapped across pods from the `started_us`/`answered_us` of their answers.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Counts requests being handled (health checks excluded).
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

/// One request being handled; decrements the counter when dropped (also when the client goes away).
#[derive(Debug)]
pub struct InFlightGuard {
    counter: Arc<AtomicUsize>,
    /// Requests in flight including this one, when it arrived.
    pub at_arrival: usize,
    /// When it arrived, in [`unix_micros`].
    pub started_us: u64,
}

impl InFlight {
    /// Registers a request.
    pub fn enter(&self) -> InFlightGuard {
        let before = self.0.fetch_add(1, Ordering::SeqCst);
        InFlightGuard {
            counter: self.0.clone(),
            at_arrival: before + 1,
            started_us: unix_micros(),
        }
    }

    /// Requests in flight now.
    pub fn current(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl InFlightGuard {
    /// Whether another request was in flight when this one arrived.
    pub fn overlapped(&self) -> bool {
        self.at_arrival > 1
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_overlap_and_releases() {
        let f = InFlight::default();
        let a = f.enter();
        assert!(!a.overlapped());
        let b = f.enter();
        assert!(b.overlapped());
        drop(a);
        drop(b);
        assert_eq!(f.current(), 0);
        assert!(!f.enter().overlapped());
    }
}
