//! The observed drain rate of one function (responses completed per second over a recent window),
//! and the `Retry-After` it implies for a request turned away: the seconds until the requests ahead
//! of it would drain at that rate.

use std::time::Duration;

use tokio::time::Instant;

/// How far back completions count towards the drain rate.
pub const DRAIN_WINDOW: Duration = Duration::from_secs(10);
/// The longest `Retry-After` the activator answers, in seconds; also the answer when nothing
/// completed during the last [`DRAIN_WINDOW`] (no rate observed, so no sooner time can be promised).
pub const MAX_RETRY_AFTER_SECS: u64 = 30;

const BUCKETS: usize = DRAIN_WINDOW.as_secs() as usize;

/// Completions per one-second bucket over the last [`DRAIN_WINDOW`].
#[derive(Debug)]
pub struct DrainRate {
    origin: Instant,
    /// `(second since origin, completions in it)`, one slot per second modulo the window.
    buckets: [(u64, u32); BUCKETS],
}

impl DrainRate {
    /// An empty history starting at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            origin: now,
            buckets: [(u64::MAX, 0); BUCKETS],
        }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs()
    }

    /// Records one response completed at `now`.
    pub fn complete(&mut self, now: Instant) {
        let second = self.second(now);
        let slot = &mut self.buckets[(second % BUCKETS as u64) as usize];
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 = slot.1.saturating_add(1);
    }

    /// Completions per second at `now`: those of the last window, over the time since the oldest
    /// second that saw one (at least one second), so a burst that began 2 s ago is not diluted over
    /// the whole window.
    pub fn rate(&self, now: Instant) -> f64 {
        let current = self.second(now);
        let recent = self
            .buckets
            .iter()
            .filter(|(second, count)| *count > 0 && *second <= current && current - second < BUCKETS as u64);
        let (mut total, mut oldest) = (0u64, current);
        for (second, count) in recent {
            total += u64::from(*count);
            oldest = oldest.min(*second);
        }
        if total == 0 {
            return 0.0;
        }
        // Whole seconds from the start of the oldest bucket to now, fractions of the current one
        // included.
        let span = now.saturating_duration_since(self.origin).as_secs_f64() - oldest as f64;
        total as f64 / span.max(1.0)
    }

    /// `Retry-After` in seconds for a request that would have `ahead` requests before it: the time
    /// for `ahead + 1` completions at the observed rate, rounded up, between 1 and
    /// [`MAX_RETRY_AFTER_SECS`]; the maximum when nothing completed recently.
    pub fn retry_after(&self, now: Instant, ahead: usize) -> u64 {
        let rate = self.rate(now);
        if rate <= 0.0 {
            return MAX_RETRY_AFTER_SECS;
        }
        let secs = ((ahead as f64 + 1.0) / rate).ceil();
        (secs as u64).clamp(1, MAX_RETRY_AFTER_SECS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn nothing_completed_means_the_longest_answer() {
        let t0 = Instant::now();
        let d = DrainRate::new(t0);
        assert_eq!(d.rate(at(t0, 5000)), 0.0);
        assert_eq!(d.retry_after(at(t0, 5000), 0), MAX_RETRY_AFTER_SECS);
    }

    #[test]
    fn retry_after_is_the_time_the_queue_ahead_takes_to_drain() {
        let t0 = Instant::now();
        let mut d = DrainRate::new(t0);
        // Five completions a second for ten seconds.
        for i in 0..50 {
            d.complete(at(t0, i * 200));
        }
        let now = at(t0, 10_000);
        assert!((d.rate(now) - 5.0).abs() < 0.01, "{}", d.rate(now));
        // 10 ahead + this one = 11 completions at 5/s: 2.2 s, rounded up.
        assert_eq!(d.retry_after(now, 10), 3);
        // Nobody ahead: at least one second.
        assert_eq!(d.retry_after(now, 0), 1);
        // A long queue is capped.
        assert_eq!(d.retry_after(now, 10_000), MAX_RETRY_AFTER_SECS);
    }

    #[test]
    fn a_recent_burst_is_not_diluted_and_old_completions_expire() {
        let t0 = Instant::now();
        let mut d = DrainRate::new(t0);
        for i in 0..20 {
            d.complete(at(t0, 100_000 + i * 100));
        }
        // 20 completions within the last two seconds: 10/s, not 2/s over the whole window.
        let now = at(t0, 102_000);
        assert!((d.rate(now) - 10.0).abs() < 0.01, "{}", d.rate(now));
        assert_eq!(d.retry_after(now, 29), 3);
        // Eleven seconds later they no longer count.
        assert_eq!(d.rate(at(t0, 113_000)), 0.0);
    }

    #[test]
    fn a_slower_drain_gives_a_later_answer() {
        let t0 = Instant::now();
        let mut fast = DrainRate::new(t0);
        let mut slow = DrainRate::new(t0);
        for i in 0..40 {
            fast.complete(at(t0, i * 250));
        }
        for i in 0..10 {
            slow.complete(at(t0, i * 1000));
        }
        let now = at(t0, 10_000);
        assert_eq!(fast.retry_after(now, 9), 3);
        assert_eq!(slow.retry_after(now, 9), 10);
    }
}
