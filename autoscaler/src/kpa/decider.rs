//! Knative's KPA `Scale()`: desired pods from the stable and panic averages, rate limits, panic mode
//! and the scale-down delay. Bounds and scale-to-zero are applied afterwards by
//! [`super::scaler::FunctionScaler`], as Knative's PA reconciler does.

use std::time::Duration;

use super::{max_window::MaxTimeWindow, spec::DeciderSpec};

/// What one decision computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleResult {
    /// Pods wanted (before `[min, max]` and the scale-to-zero rules).
    pub desired: i32,
    /// Whether the decider is in panic mode after this decision.
    pub panic: bool,
}

/// Panic state and the scale-down delay window of one function.
#[derive(Clone, Debug)]
pub struct Decider {
    /// When the panic-window demand was last over the threshold; `None` when not panicking.
    panic_time: Option<Duration>,
    /// The most pods wanted since panic started; panic never goes below it.
    max_panic_pods: i32,
    delay_window: Option<MaxTimeWindow>,
}

/// Knative's decision interval; also the slot of the scale-down delay window.
pub const TICK_INTERVAL: Duration = Duration::from_secs(2);

impl Decider {
    /// A decider created at `now` for a function that has `ready` pods.
    ///
    /// A decider that starts while more than one pod is ready starts in panic mode holding the
    /// current count, exactly as Knative does: a restarted autoscaler has lost its history and must
    /// not scale down until a full stable window of fresh data has been seen.
    pub fn new(spec: &DeciderSpec, now: Duration, ready: i32) -> Self {
        let delay_window = (!spec.scale_down_delay.is_zero())
            .then(|| MaxTimeWindow::new(spec.scale_down_delay, TICK_INTERVAL));
        let panic = ready > 1;
        Self {
            panic_time: panic.then_some(now),
            max_panic_pods: ready.max(0),
            delay_window,
        }
    }

    /// Follows a change of the spec: only the delay window depends on it.
    pub fn update(&mut self, old: &DeciderSpec, new: &DeciderSpec) {
        if old.scale_down_delay != new.scale_down_delay {
            self.delay_window = (!new.scale_down_delay.is_zero())
                .then(|| MaxTimeWindow::new(new.scale_down_delay, TICK_INTERVAL));
        }
    }

    /// Whether the decider is panicking.
    pub fn in_panic(&self) -> bool {
        self.panic_time.is_some()
    }

    /// One decision at `now` from the observed stable and panic averages and the ready pods.
    pub fn scale(
        &mut self,
        spec: &DeciderSpec,
        now: Duration,
        observed_stable: f64,
        observed_panic: f64,
        ready: i32,
    ) -> ScaleResult {
        // With no ready pods Knative divides by one, so demand at zero can scale up.
        let ready_pods = f64::from(ready.max(1));
        // At least one more pod even when the rate times the pods rounds back to the pods.
        let max_scale_up = (spec.max_scale_up_rate * ready_pods).ceil();
        let max_scale_down = (ready_pods / spec.max_scale_down_rate).floor();
        let dspc = (observed_stable / spec.target_value).ceil();
        let dppc = (observed_panic / spec.target_value).ceil();
        let desired_stable = dspc.max(max_scale_down).min(max_scale_up) as i32;
        let desired_panic = dppc.max(max_scale_down).min(max_scale_up) as i32;

        let over_threshold = dppc / ready_pods >= spec.panic_threshold;
        match self.panic_time {
            _ if over_threshold => self.panic_time = Some(now),
            // Stop panicking once the surge has made its way into the stable window.
            Some(since) if since + spec.stable_window < now => {
                self.panic_time = None;
                self.max_panic_pods = 0;
            }
            _ => {}
        }

        let mut desired = desired_stable;
        if self.panic_time.is_some() {
            // The stable average can exceed the panic one; provision for the larger.
            desired = desired.max(desired_panic);
            // Never scale down in panic mode.
            self.max_panic_pods = self.max_panic_pods.max(desired);
            desired = self.max_panic_pods;
        }
        if let Some(window) = &mut self.delay_window {
            window.record(now, desired);
            desired = window.current();
        }
        ScaleResult {
            desired,
            panic: self.panic_time.is_some(),
        }
    }
}
