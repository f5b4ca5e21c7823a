//! The maximum over a sliding time window: Knative's `max.TimeWindow`, used by `scaleDownDelay`.

use std::collections::VecDeque;
use std::time::Duration;

/// Keeps the largest value recorded during the last `duration`, in slots of `granularity`.
///
/// A descending-maxima deque: a new value evicts every older value it is at least as large as,
/// because those can never be the maximum again; entries older than the window fall off the front.
#[derive(Clone, Debug)]
pub struct MaxTimeWindow {
    slots: u64,
    granularity_ms: u64,
    maxima: VecDeque<(u64, i32)>,
}

impl MaxTimeWindow {
    /// A window of `duration` in slots of `granularity` (Knative uses the 2 s tick interval).
    pub fn new(duration: Duration, granularity: Duration) -> Self {
        let granularity_ms = granularity.as_millis().max(1) as u64;
        let slots = (duration.as_millis() as u64).div_ceil(granularity_ms).max(1);
        Self {
            slots,
            granularity_ms,
            maxima: VecDeque::new(),
        }
    }

    /// Records `value` at time `now` (times must not go backwards).
    pub fn record(&mut self, now: Duration, value: i32) {
        // Knative indexes by whole seconds divided by the granularity in seconds.
        let index = (now.as_secs() * 1000) / self.granularity_ms;
        let mut value = value;
        while let Some(&(_, last)) = self.maxima.back() {
            if value < last {
                break;
            }
            self.maxima.pop_back();
        }
        while let Some(&(first, _)) = self.maxima.front() {
            if index - first.min(index) < self.slots {
                break;
            }
            self.maxima.pop_front();
        }
        if let Some(&(last_index, last)) = self.maxima.back()
            && last_index == index
        {
            value = value.max(last);
            self.maxima.pop_back();
        }
        self.maxima.push_back((index, value));
    }

    /// The largest value recorded in the window ending at the newest record.
    pub fn current(&self) -> i32 {
        self.maxima.front().map_or(0, |&(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn holds_the_peak_for_the_window() {
        let mut w = MaxTimeWindow::new(secs(300), secs(2));
        w.record(secs(2), 4);
        w.record(secs(300), 0);
        assert_eq!(w.current(), 4);
        w.record(secs(302), 0);
        assert_eq!(w.current(), 0);
    }

    #[test]
    fn gradual_descent() {
        // Knative TestAutoscalerScaleDownDelay/gradual.
        let mut w = MaxTimeWindow::new(secs(300), secs(2));
        w.record(secs(540), 4);
        w.record(secs(600), 3);
        assert_eq!(w.current(), 4);
        w.record(secs(660), 0);
        assert_eq!(w.current(), 4);
        w.record(secs(840), 0);
        assert_eq!(w.current(), 3);
        w.record(secs(900), 0);
        assert_eq!(w.current(), 0);
    }

    #[test]
    fn same_slot_keeps_the_larger() {
        let mut w = MaxTimeWindow::new(secs(10), secs(2));
        w.record(secs(4), 5);
        w.record(secs(5), 2);
        assert_eq!(w.current(), 5);
    }
}
