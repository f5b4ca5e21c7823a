//! Time-weighted accounting of the requests inside the activator for one function, the source of the
//! per-second `dev.zeroscale.stats` signal.

use std::time::Duration;

use tokio::time::Instant;

/// One period's figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeriodReport {
    /// Length of the period.
    pub period: Duration,
    /// Average requests present (queued plus in flight) over the period.
    pub concurrency: f64,
    /// Requests that arrived in the period.
    pub requests: u64,
}

/// Integrates "requests present" over time.
#[derive(Debug)]
pub struct Presence {
    present: u64,
    // Request-seconds accumulated since the period started.
    area: f64,
    last_change: Instant,
    period_start: Instant,
    arrivals: u64,
    reported_active: bool,
}

impl Presence {
    /// Starts accounting at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            present: 0,
            area: 0.0,
            last_change: now,
            period_start: now,
            arrivals: 0,
            reported_active: false,
        }
    }

    fn advance(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last_change).as_secs_f64();
        self.area += self.present as f64 * dt;
        self.last_change = now.max(self.last_change);
    }

    /// Counts an arrival.
    pub fn arrive(&mut self) {
        self.arrivals += 1;
    }

    /// A request became present (queued or forwarded).
    pub fn enter(&mut self, now: Instant) {
        self.advance(now);
        self.present += 1;
    }

    /// A request left (answered, rejected or gone).
    pub fn leave(&mut self, now: Instant) {
        self.advance(now);
        self.present = self.present.saturating_sub(1);
    }

    /// Requests present now.
    pub fn present(&self) -> u64 {
        self.present
    }

    /// Closes the period at `now`. Returns its figures when something happened in it, or once more
    /// right after an active period so the receiver sees the drop to zero; `None` while quiet.
    pub fn report(&mut self, now: Instant) -> Option<PeriodReport> {
        self.advance(now);
        let period = now.saturating_duration_since(self.period_start);
        let active = self.arrivals > 0 || self.area > 0.0 || self.present > 0;
        if !active && !self.reported_active {
            self.period_start = now;
            return None;
        }
        let secs = period.as_secs_f64();
        let report = PeriodReport {
            period,
            concurrency: if secs > 0.0 {
                self.area / secs
            } else {
                self.present as f64
            },
            requests: self.arrivals,
        };
        self.reported_active = active;
        self.area = 0.0;
        self.arrivals = 0;
        self.period_start = now;
        Some(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_half_second_requests_make_one() {
        let t0 = Instant::now();
        let mut p = Presence::new(t0);
        p.arrive();
        p.enter(t0);
        p.leave(t0 + Duration::from_millis(500));
        p.arrive();
        p.enter(t0 + Duration::from_millis(500));
        p.leave(t0 + Duration::from_secs(1));
        let r = p.report(t0 + Duration::from_secs(1)).unwrap();
        assert!((r.concurrency - 1.0).abs() < 1e-9);
        assert_eq!(r.requests, 2);
        // One final report at zero, then silence.
        let r = p.report(t0 + Duration::from_secs(2)).unwrap();
        assert_eq!((r.concurrency, r.requests), (0.0, 0));
        assert_eq!(p.report(t0 + Duration::from_secs(3)), None);
    }

    #[test]
    fn long_waiters_count_across_periods() {
        let t0 = Instant::now();
        let mut p = Presence::new(t0);
        p.enter(t0);
        p.enter(t0);
        assert!((p.report(t0 + Duration::from_secs(1)).unwrap().concurrency - 2.0).abs() < 1e-9);
        assert!((p.report(t0 + Duration::from_secs(2)).unwrap().concurrency - 2.0).abs() < 1e-9);
    }
}
