//! Fixed keep-alive: a pod stays after its last invocation for a fixed time, then goes away.
//!
//! One invocation per pod at a time (the simulator's capacity model). An invocation that finds an
//! idle pod runs on the one that became idle most recently. Otherwise a new pod is created at once
//! (`cold_start` until it is ready) and the invocation waits in a first-come, first-served queue for
//! the first pod to become free: the new one when it is ready (a cold start), or a busy one when it
//! finishes first (a queued invocation; the new pod then starts idle). Every waiting invocation
//! still gets its own new pod, so the pods created are those of the textbook model where each
//! invocation that finds no idle pod starts one.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque},
};

use super::{
    accounting::{Found, Start, Tally},
    workload::{Invocation, Micros},
};

const NEVER: Micros = Micros::MAX;

/// The pods and the waiting invocations of one function.
struct Pods {
    tally: Tally,
    keep_alive: Micros,
    /// End times of busy pods.
    busy: BinaryHeap<Reverse<Micros>>,
    /// Ready times of starting pods (non-decreasing: every pod starts in the same time).
    starting: VecDeque<Micros>,
    /// Idle pods by the time they became idle (oldest first).
    idle: VecDeque<Micros>,
    /// Waiting invocations with what each found on arrival.
    queue: VecDeque<(Invocation, Found)>,
}

impl Pods {
    /// A pod became free at `now`, `fresh` from starting: it serves the queue or goes idle.
    fn free(&mut self, now: Micros, fresh: bool) {
        match self.queue.pop_front() {
            Some((inv, found)) => {
                if fresh {
                    self.tally.cold(found);
                } else {
                    self.tally.invocation(Start::Queued);
                }
                self.serve(now, inv);
            }
            None => self.idle.push_back(now),
        }
    }

    fn serve(&mut self, now: Micros, inv: Invocation) {
        self.tally.served(now, now + inv.duration);
        self.busy.push(Reverse(now + inv.duration));
    }

    fn arrival(&mut self, now: Micros, inv: Invocation, cold_start: Micros) {
        while let Some(&since) = self.idle.front() {
            if since + self.keep_alive > now {
                break;
            }
            self.idle.pop_front();
            self.tally.pod_removed(since + self.keep_alive);
        }
        if self.idle.pop_back().is_some() {
            self.tally.invocation(Start::Warm);
            self.serve(now, inv);
        } else {
            let found = if !self.busy.is_empty() {
                Found::Busy
            } else if !self.starting.is_empty() {
                Found::Starting
            } else {
                self.tally.at_zero += 1;
                Found::Zero
            };
            self.tally.pod_created(now);
            self.starting.push_back(now + cold_start);
            self.queue.push_back((inv, found));
        }
    }
}

/// Runs `invocations` (sorted by arrival) under a keep-alive of `keep_alive`.
pub fn simulate(
    invocations: &[Invocation],
    keep_alive: Micros,
    cold_start: Micros,
    horizon: Micros,
) -> Tally {
    let mut pods = Pods {
        tally: Tally::new(horizon),
        keep_alive,
        busy: BinaryHeap::new(),
        starting: VecDeque::new(),
        idle: VecDeque::new(),
        queue: VecDeque::new(),
    };
    let mut next = invocations.iter().copied().peekable();
    loop {
        let arrival = next.peek().map_or(NEVER, |i| i.arrival);
        let ready = pods.starting.front().copied().unwrap_or(NEVER);
        let done = pods.busy.peek().map_or(NEVER, |r| r.0);
        let now = arrival.min(ready).min(done);
        if now == NEVER {
            break;
        }
        if now == done {
            pods.busy.pop();
            pods.free(now, false);
        } else if now == ready {
            pods.starting.pop_front();
            pods.free(now, true);
        } else if let Some(inv) = next.next() {
            pods.arrival(now, inv, cold_start);
        }
    }
    for since in std::mem::take(&mut pods.idle) {
        pods.tally.pod_removed(since + keep_alive);
    }
    pods.tally
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
        assert_eq!((t.invocations, t.cold_starts, t.queued), (3, 2, 0));
        // Pod 1: created at 0, idle from 11 s, gone at 71 s; pod 2: 100 s → 102 + 60 = 162 s.
        assert_eq!(t.total_pod_seconds(), 71.0 + 62.0);
        assert_eq!(t.idle_pod_seconds(), 71.0 + 62.0 - 3.0);
    }

    #[test]
    fn concurrent_invocations_need_their_own_pods() {
        let invs = [inv(0, 10), inv(1, 10), inv(2, 10)];
        let t = simulate(&invs, 60 * SECOND, SECOND, 1000 * SECOND);
        assert_eq!((t.cold_starts, t.queued), (3, 0));
        // The first found no pod; the others found every ready pod busy (the first is ready at
        // 1 s, before the second arrives).
        let c = t.cold_split;
        assert_eq!((c.from_zero, c.starting, c.scale_up), (1, 0, 2));
    }

    #[test]
    fn a_busy_pod_finishing_before_the_new_one_is_ready_takes_the_waiting_invocation() {
        // The second invocation finds the pod busy until 1.5 s; its own pod is ready at 2 s.
        let invs = [
            Invocation {
                arrival: 0,
                duration: SECOND / 2,
            },
            Invocation {
                arrival: SECOND,
                duration: SECOND,
            },
        ];
        let t = simulate(&invs, 60 * SECOND, SECOND, 1000 * SECOND);
        assert_eq!((t.invocations, t.cold_starts, t.queued), (2, 1, 1));
        // Two pods were still created: the first idle from 2.5 s, the second from 2 s.
        assert_eq!(t.total_pod_seconds(), 62.5 + 61.0);
    }

    #[test]
    fn the_day_ends_at_the_horizon() {
        let t = simulate(&[inv(0, 1)], 3600 * SECOND, 0, 100 * SECOND);
        assert_eq!(t.total_pod_seconds(), 100.0);
        assert_eq!(t.idle_pod_seconds(), 99.0);
    }
}
