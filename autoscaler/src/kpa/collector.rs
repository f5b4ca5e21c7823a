//! Per-function metric collection: reports from every activator replica summed into 1 s buckets,
//! with the last value of a silent replica carried forward for a bounded time.
//!
//! **Silent replicas.** Each replica reports a function once a second while it has traffic for it,
//! then one final report (normally zero) when it goes quiet. A replica whose newest report was
//! non-zero and which then misses seconds (it crashed, was partitioned, or its report was merely
//! late) is assumed to still carry that value for each missed second, up to `staleness` seconds
//! after that report. So a replica that stops reporting never makes a function look idle, for the
//! first `staleness` seconds of its silence, and after that it counts as zero. A second that is
//! still open when a decision runs gets the carried value provisionally; if the replica then reports
//! for that second, the report replaces it. So every second ends up with the same content whenever
//! decisions run, and the open second never looks emptier than it is. Two reports from one replica in the same second are averaged (Knative's
//! per-pod averaging within a bucket), so a late report followed by a prompt one is not counted twice.

use std::time::Duration;

use super::buckets::{Second, WindowBuckets};

#[derive(Clone, Debug)]
struct Replica {
    name: String,
    /// Second of the newest report.
    second: Second,
    sum: f64,
    count: u32,
    /// Newest second already accounted for (reported or filled).
    filled_through: Second,
    /// A carried value added to a second that had not closed yet, and that value.
    provisional: Option<(Second, f64)>,
}

impl Replica {
    fn value(&self) -> f64 {
        self.sum / f64::from(self.count.max(1))
    }
}

/// Stable and panic window buckets of one function and the state of each reporting replica.
#[derive(Clone, Debug)]
pub struct Collector {
    stable: WindowBuckets,
    panic: WindowBuckets,
    replicas: Vec<Replica>,
    staleness: u64,
    stable_secs: u64,
}

impl Collector {
    /// A collector for the given windows; silent replicas are carried forward for `staleness`.
    pub fn new(stable_window: Duration, panic_window: Duration, staleness: Duration) -> Self {
        Self {
            stable: WindowBuckets::new(stable_window.as_secs()),
            panic: WindowBuckets::new(panic_window.as_secs()),
            replicas: Vec::new(),
            staleness: staleness.as_secs(),
            stable_secs: stable_window.as_secs(),
        }
    }

    fn add(&mut self, second: Second, value: f64) {
        self.stable.record(second, value);
        self.panic.record(second, value);
    }

    /// Fills the missed seconds of replica `i` up to `through` (inclusive), within its staleness.
    /// A fill of the still-open second `open` is provisional: a report for it replaces it.
    fn fill(&mut self, i: usize, through: Second, open: Second) {
        let r = &mut self.replicas[i];
        if r.provisional.is_some_and(|(second, _)| second < open) {
            // That second has closed without a report: the carried value stays for good.
            r.provisional = None;
        }
        let value = r.value();
        let end = through.min(r.second + self.staleness);
        if value <= 0.0 || end <= r.filled_through {
            return;
        }
        let start = r.filled_through + 1;
        r.filled_through = end;
        if end == open {
            r.provisional = Some((open, value));
        }
        for second in start..=end {
            self.add(second, value);
        }
    }

    /// Records a report of `value` from `replica` at `now`.
    pub fn record(&mut self, now: Duration, replica: &str, value: f64) {
        let second = now.as_secs();
        let value = if value.is_finite() { value.max(0.0) } else { 0.0 };
        let Some(i) = self.replicas.iter().position(|r| r.name == replica) else {
            self.replicas.push(Replica {
                name: replica.to_string(),
                second,
                sum: value,
                count: 1,
                filled_through: second,
                provisional: None,
            });
            self.add(second, value);
            return;
        };
        if let Some((at, carried)) = self.replicas[i].provisional.take()
            && at == second
        {
            // The replica did report for this second after all: undo the carried value.
            self.add(at, -carried);
            self.replicas[i].filled_through = at.saturating_sub(1);
        }
        if second <= self.replicas[i].second {
            // Same second again: replace this replica's contribution by the average of its reports.
            let before = self.replicas[i].value();
            let r = &mut self.replicas[i];
            r.sum += value;
            r.count += 1;
            let after = r.value();
            let at = r.second;
            self.add(at, after - before);
            return;
        }
        self.fill(i, second - 1, second);
        let r = &mut self.replicas[i];
        r.second = second;
        r.sum = value;
        r.count = 1;
        r.filled_through = second;
        r.provisional = None;
        self.add(second, value);
    }

    /// Brings silent replicas up to `now`, the open second included (provisionally), and forgets
    /// replicas that have been silent for longer than a stable window.
    pub fn advance(&mut self, now: Duration) {
        let second = now.as_secs();
        for i in 0..self.replicas.len() {
            self.fill(i, second, second);
        }
        let horizon = self.stable_secs + self.staleness;
        self.replicas.retain(|r| r.second + horizon >= second);
    }

    /// The stable and panic window averages at `now` (call [`Collector::advance`] first).
    pub fn averages(&self, now: Duration) -> (f64, f64) {
        let second = now.as_secs();
        (
            self.stable.window_average(second),
            self.panic.window_average(second),
        )
    }

    /// Whether no report at all arrived during the last stable window.
    pub fn is_empty(&self, now: Duration) -> bool {
        self.stable.is_empty(now.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn collector() -> Collector {
        Collector::new(s(60), s(6), s(3))
    }

    #[test]
    fn replicas_are_summed() {
        let mut c = collector();
        c.record(s(100), "a", 10.0);
        c.record(s(100), "b", 5.0);
        c.advance(s(100));
        assert_eq!(c.averages(s(100)), (15.0, 15.0));
    }

    #[test]
    fn two_reports_of_one_replica_in_one_second_are_averaged() {
        let mut c = collector();
        c.record(Duration::from_millis(100_010), "a", 10.0);
        c.record(Duration::from_millis(100_990), "a", 20.0);
        assert_eq!(c.averages(s(100)), (15.0, 15.0));
    }

    #[test]
    fn silent_replica_is_carried_forward_for_staleness_only() {
        let mut c = collector();
        c.record(s(100), "a", 10.0);
        c.record(s(100), "b", 10.0);
        // Replica b keeps reporting, replica a goes silent after second 100.
        for t in 101..=110 {
            c.record(s(t), "b", 10.0);
            c.advance(s(t));
        }
        // Panic window = seconds 105..=110: a contributes nothing any more (carried 101..=103 only).
        assert_eq!(c.averages(s(110)).1, 10.0);
        // Stable window = 100..=110: 20 + 3×20 + 7×10 = 150 over 11 seconds.
        let expected = ((20.0 + 60.0 + 70.0) / 11.0 * 1e6_f64).floor() / 1e6;
        assert_eq!(c.averages(s(110)).0, expected);
    }

    #[test]
    fn a_final_zero_report_is_not_carried() {
        let mut c = collector();
        c.record(s(100), "a", 10.0);
        c.record(s(101), "a", 0.0);
        c.advance(s(104));
        // Seconds 100..=101 were written; 102..=104 are left out as a stale tail.
        assert_eq!(c.averages(s(104)).1, 5.0);
    }

    #[test]
    fn late_report_fills_the_gap_it_left() {
        let mut c = collector();
        c.record(Duration::from_millis(100_990), "a", 4.0);
        // The next report comes 1.1 s later, skipping second 101.
        c.record(Duration::from_millis(102_090), "a", 4.0);
        assert_eq!(c.averages(s(102)), (4.0, 4.0));
    }
}
