//! Time-bucketed sums with a window average: Knative's `TimedFloat64Buckets` (1 s granularity).
//!
//! Values recorded in the same second add up (that is how reports from several activator replicas
//! are summed). [`WindowBuckets::window_average`] follows Knative's `WindowAverage` exactly: the average
//! runs over the buckets since the first write (at most the window), gaps shorter than a window count
//! as zero, the trailing seconds without any write are left out, and after a whole window without a
//! write the average is zero and the next write starts a fresh partial window.

/// Seconds since the decider's epoch; one bucket per second.
pub type Second = u64;

/// A ring of per-second sums covering one window.
#[derive(Clone, Debug)]
pub struct WindowBuckets {
    buckets: Vec<f64>,
    /// First second of the current run of data (reset after a window without writes).
    first_write: Option<Second>,
    /// Newest second written so far.
    last_write: Second,
    /// Sum of every bucket in the ring.
    total: f64,
}

/// Knative floors averages to 6 decimal digits so that float noise left in the running total after
/// subtractions cannot keep a function looking busy.
fn floor_6(value: f64) -> f64 {
    (value * 1e6).floor() / 1e6
}

impl WindowBuckets {
    /// A ring for a window of `window_secs` seconds (at least one).
    pub fn new(window_secs: u64) -> Self {
        let len = usize::try_from(window_secs.max(1)).unwrap_or(usize::MAX);
        Self {
            buckets: vec![0.0; len],
            first_write: None,
            last_write: 0,
            total: 0.0,
        }
    }

    fn len(&self) -> u64 {
        self.buckets.len() as u64
    }

    fn slot(&self, second: Second) -> usize {
        // The modulo is below the ring length, which is a usize.
        (second % self.len()) as usize
    }

    /// Adds `value` to the bucket of `second`.
    ///
    /// Writes older than a window before the newest write are dropped; writes to an older second
    /// inside the window are added to that second (the silent-replica fill writes closed seconds).
    pub fn record(&mut self, second: Second, value: f64) {
        let Some(first) = self.first_write else {
            self.first_write = Some(second);
            self.last_write = second;
            let slot = self.slot(second);
            self.buckets[slot] = value;
            self.total = value;
            return;
        };
        if second + self.len() <= self.last_write {
            return;
        }
        if second < first {
            self.first_write = Some(second);
        }
        if second > self.last_write {
            if second - self.last_write >= self.len() {
                self.buckets.iter_mut().for_each(|b| *b = 0.0);
                self.total = 0.0;
                self.first_write = Some(second);
            } else {
                for s in self.last_write + 1..=second {
                    let slot = self.slot(s);
                    self.total -= self.buckets[slot];
                    self.buckets[slot] = 0.0;
                }
            }
            self.last_write = second;
        }
        let slot = self.slot(second);
        self.buckets[slot] += value;
        self.total += value;
    }

    /// Whether nothing was written for more than a window before `now` (Knative `IsEmpty`).
    pub fn is_empty(&self, now: Second) -> bool {
        self.first_write.is_none() || now.saturating_sub(self.last_write) > self.len()
    }

    /// The average per second over the window ending at `now` (Knative `WindowAverage`).
    pub fn window_average(&self, now: Second) -> f64 {
        let Some(first) = self.first_write else { return 0.0 };
        let valid = self.last_write - first + 1;
        if now <= self.last_write {
            return floor_6(self.total / valid.min(self.len()) as f64);
        }
        let gap = now - self.last_write;
        if gap >= self.len() {
            return 0.0;
        }
        let mut total = self.total;
        for s in self.last_write + 1..=now {
            total -= self.buckets[self.slot(s)];
        }
        floor_6(total / valid.min(self.len() - gap) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_over_partial_window_since_first_write() {
        let mut b = WindowBuckets::new(60);
        b.record(100, 10.0);
        b.record(101, 20.0);
        assert_eq!(b.window_average(101), 15.0);
    }

    #[test]
    fn same_second_values_sum() {
        let mut b = WindowBuckets::new(6);
        b.record(10, 1.5);
        b.record(10, 2.5);
        assert_eq!(b.window_average(10), 4.0);
    }

    #[test]
    fn gaps_count_as_zero_and_stale_tail_is_left_out() {
        let mut b = WindowBuckets::new(10);
        b.record(0, 10.0);
        b.record(4, 10.0);
        // Buckets 0..=4 are valid, 1..=3 are zero.
        assert_eq!(b.window_average(4), 4.0);
        // Two seconds later without writes: Knative divides by min(valid, len - gap) = 5.
        assert_eq!(b.window_average(6), 4.0);
        // After a full window without writes the average is zero.
        assert_eq!(b.window_average(14), 0.0);
        assert!(!b.is_empty(14));
        assert!(b.is_empty(15));
    }

    #[test]
    fn a_write_after_a_silent_window_starts_fresh() {
        let mut b = WindowBuckets::new(5);
        b.record(0, 100.0);
        b.record(20, 1.0);
        assert_eq!(b.window_average(20), 1.0);
    }

    #[test]
    fn old_values_roll_out_of_the_ring() {
        let mut b = WindowBuckets::new(3);
        for s in 0..3 {
            b.record(s, 3.0);
        }
        b.record(3, 0.0);
        b.record(4, 0.0);
        b.record(5, 0.0);
        assert_eq!(b.window_average(5), 0.0);
    }

    #[test]
    fn writes_to_closed_seconds_inside_the_window_count() {
        let mut b = WindowBuckets::new(10);
        b.record(5, 1.0);
        b.record(4, 1.0);
        assert_eq!(b.window_average(5), 1.0);
        // Older than a window before the newest write: dropped.
        b.record(30, 0.0);
        b.record(5, 50.0);
        assert_eq!(b.window_average(30), 0.0);
    }
}
