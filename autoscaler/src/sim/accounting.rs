//! What a policy run measures for one function: cold starts, queued invocations and pod time.
//!
//! An invocation is **cold** when it waited for a pod to start: it was served by a pod that became
//! ready after the invocation arrived (or by none before the end of the day). It is **queued** when
//! it found no free ready pod but was served by a pod that was already up, once that pod finished
//! its invocation: a wait behind busy pods, not a cold start. Otherwise it is **warm**.
//!
//! A pod counts from its creation until its removal (or the end of the trace's day). It is
//! *serving* while it runs an invocation and *idle* otherwise, start-up time included (a starting
//! pod does no useful work yet). Time past the end of the day is not counted.

use super::workload::{Micros, SECOND};

/// How an invocation found its pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A free ready pod took it on arrival.
    Warm,
    /// It waited for a pod that was already up to finish another invocation.
    Queued,
    /// It waited for a pod to start.
    Cold,
}

/// Counters of one function under one policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Invocations seen.
    pub invocations: u64,
    /// Invocations served by a pod that became ready after they arrived.
    pub cold_starts: u64,
    /// Invocations that waited only for a busy pod to finish.
    pub queued: u64,
    /// Σ removal − Σ creation over pods, in µs (signed while pods are alive).
    pod_time: i128,
    /// Σ time pods spent running invocations, in µs.
    serving: u128,
    horizon: Micros,
}

impl Tally {
    /// Counters for a day ending at `horizon`.
    pub fn new(horizon: Micros) -> Self {
        Self {
            horizon,
            ..Self::default()
        }
    }

    /// An invocation started (or the day ended before it could) the way `start` says.
    pub fn invocation(&mut self, start: Start) {
        self.invocations += 1;
        match start {
            Start::Warm => {}
            Start::Queued => self.queued += 1,
            Start::Cold => self.cold_starts += 1,
        }
    }

    /// A pod was created at `at`.
    pub fn pod_created(&mut self, at: Micros) {
        self.pod_time -= i128::from(at.min(self.horizon));
    }

    /// A pod was removed at `at`.
    pub fn pod_removed(&mut self, at: Micros) {
        self.pod_time += i128::from(at.min(self.horizon));
    }

    /// A pod runs an invocation from `start` to `end`.
    pub fn served(&mut self, start: Micros, end: Micros) {
        let (start, end) = (start.min(self.horizon), end.min(self.horizon));
        self.serving += u128::from(end - start);
    }

    /// Pod-seconds in total (call once every pod has been removed).
    pub fn total_pod_seconds(&self) -> f64 {
        self.pod_time as f64 / SECOND as f64
    }

    /// Pod-seconds spent idle.
    pub fn idle_pod_seconds(&self) -> f64 {
        (self.pod_time - self.serving as i128) as f64 / SECOND as f64
    }
}
