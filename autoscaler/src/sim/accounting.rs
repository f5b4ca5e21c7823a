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

/// What an invocation that had to wait found when it arrived: why its cold start happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// No pod at all, starting or up: a keep-alive or pre-warm decision (from zero).
    Zero,
    /// Pods, but none ready yet: a pre-warm or scale-up that started too late for it.
    Starting,
    /// Ready pods, all busy: a scale-up (a pod beyond those up had to start).
    Busy,
}

/// Cold starts by what the invocation found on arrival (see [`Found`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ColdSplit {
    /// Found no pod at all.
    pub from_zero: u64,
    /// Found only starting pods.
    pub starting: u64,
    /// Found every ready pod busy.
    pub scale_up: u64,
}

impl ColdSplit {
    /// Counts one cold start of an invocation that found `found`.
    pub fn add(&mut self, found: Found) {
        *match found {
            Found::Zero => &mut self.from_zero,
            Found::Starting => &mut self.starting,
            Found::Busy => &mut self.scale_up,
        } += 1;
    }
}

/// Why the only pod of a function is up (for [`IdleSplit`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Holder {
    /// The KPA's rules: traffic was recent, or the function has no usable prediction.
    #[default]
    Kpa,
    /// The predictive policy's window kept the pod after traffic.
    KeepAlive,
    /// The predictive policy pre-warmed the pod; no invocation has arrived since.
    Prewarm,
}

/// Where the idle pod time of a KPA-driven function went, in µs (the `kpa` and `predictive`
/// policies fill it; `idle = kpa + keep_alive + prewarm + above_one`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleSplit {
    /// The only pod, idle, held by the KPA's rules (its window and grace after traffic).
    pub kpa: u128,
    /// The only pod, idle, held by the predictive policy's keep-alive window after traffic.
    pub keep_alive: u128,
    /// The only pod, pre-warmed by the predictive policy, waiting for an arrival.
    pub prewarm: u128,
    /// Idle pods beyond the first (none busy: all but one; some busy: every idle one).
    pub above_one: u128,
}

impl IdleSplit {
    /// Adds `from..to` during which `idle` pods (starting ones included) waited beside `busy` ones,
    /// the only pod held by `holder` when none is busy.
    pub fn add(&mut self, from: Micros, to: Micros, idle: usize, busy: usize, holder: Holder) {
        if to <= from || idle == 0 {
            return;
        }
        let span = u128::from(to - from);
        let single = usize::from(busy == 0);
        self.above_one += span * (idle - single) as u128;
        if single == 1 {
            *match holder {
                Holder::Kpa => &mut self.kpa,
                Holder::KeepAlive => &mut self.keep_alive,
                Holder::Prewarm => &mut self.prewarm,
            } += span;
        }
    }
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
    /// Invocations that arrived while the function had no pod at all, starting or up (the cold
    /// starts a keep-alive policy can avoid; the others wait for a second pod or more).
    pub at_zero: u64,
    /// Cold starts by what the invocation found on arrival (sums to `cold_starts`).
    pub cold_split: ColdSplit,
    /// Σ removal − Σ creation over pods, in µs (signed while pods are alive).
    pod_time: i128,
    /// Σ time pods spent running invocations, in µs.
    serving: u128,
    horizon: Micros,
    /// Where the idle time went; `None` for policies that do not split it.
    pub split: Option<IdleSplit>,
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

    /// A cold start of an invocation that found `found` on arrival.
    pub fn cold(&mut self, found: Found) {
        self.invocation(Start::Cold);
        self.cold_split.add(found);
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

    /// Adds `from..to` (cut at the horizon) to the idle split, starting it if needed.
    pub fn idle_split(&mut self, from: Micros, to: Micros, idle: usize, busy: usize, holder: Holder) {
        let to = to.min(self.horizon);
        self.split
            .get_or_insert_default()
            .add(from.min(to), to, idle, busy, holder);
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
