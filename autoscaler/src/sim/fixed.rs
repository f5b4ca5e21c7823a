//! Fixed keep-alive: a pod stays after its last invocation for a fixed time, then goes away.
//!
//! One invocation per pod at a time (the simulator's capacity model). An invocation that finds an
//! idle pod runs on the one that became idle most recently; otherwise a new pod is created at once
//! and the invocation runs once the pod has started (`cold_start` later).

use std::{cmp::Reverse, collections::BinaryHeap, collections::VecDeque};

use super::{
    accounting::Tally,
    workload::{Invocation, Micros},
};

/// Runs `invocations` (sorted by arrival) under a keep-alive of `keep_alive`.
pub fn simulate(
    invocations: &[Invocation],
    keep_alive: Micros,
    cold_start: Micros,
    horizon: Micros,
) -> Tally {
    let mut tally = Tally::new(horizon);
    // End times of busy pods, and idle pods by the time they became idle (oldest first).
    let mut busy: BinaryHeap<Reverse<Micros>> = BinaryHeap::new();
    let mut idle: VecDeque<Micros> = VecDeque::new();
    for inv in invocations {
        let now = inv.arrival;
        while let Some(&Reverse(end)) = busy.peek() {
            if end > now {
                break;
            }
            busy.pop();
            idle.push_back(end);
        }
        while let Some(&since) = idle.front() {
            if since + keep_alive > now {
                break;
            }
            idle.pop_front();
            tally.pod_removed(since + keep_alive);
        }
        let start = if idle.pop_back().is_some() {
            tally.invocation(false);
            now
        } else {
            tally.invocation(true);
            tally.pod_created(now);
            now + cold_start
        };
        let end = start + inv.duration;
        tally.served(start, end);
        busy.push(Reverse(end));
    }
    for Reverse(end) in busy.into_sorted_vec().into_iter().rev() {
        tally.pod_removed(end + keep_alive);
    }
    for since in idle {
        tally.pod_removed(since + keep_alive);
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::workload::SECOND;

    fn inv(at_s: u64, dur_s: u64) -> Invocation {
        Invocation {
            arrival: at_s * SECOND,
            duration: dur_s * SECOND,
        }
    }

    #[test]
    fn reuse_within_keep_alive_and_cold_after() {
        let invs = [inv(0, 1), inv(10, 1), inv(100, 1)];
        let t = simulate(&invs, 60 * SECOND, SECOND, 1000 * SECOND);
        assert_eq!((t.invocations, t.cold_starts), (3, 2));
        // Pod 1: created at 0, idle from 11 s, gone at 71 s; pod 2: 100 s → 102 + 60 = 162 s.
        assert_eq!(t.total_pod_seconds(), 71.0 + 62.0);
        assert_eq!(t.idle_pod_seconds(), 71.0 + 62.0 - 3.0);
    }

    #[test]
    fn concurrent_invocations_need_their_own_pods() {
        let invs = [inv(0, 10), inv(1, 10), inv(2, 10)];
        let t = simulate(&invs, 60 * SECOND, SECOND, 1000 * SECOND);
        assert_eq!(t.cold_starts, 3);
    }

    #[test]
    fn the_day_ends_at_the_horizon() {
        let t = simulate(&[inv(0, 1)], 3600 * SECOND, 0, 100 * SECOND);
        assert_eq!(t.total_pod_seconds(), 100.0);
        assert_eq!(t.idle_pod_seconds(), 99.0);
    }
}
