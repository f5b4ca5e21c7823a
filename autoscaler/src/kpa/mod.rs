//! The pure KPA decision core: no IO, no wall clock. Every function takes `now` as a [`Duration`]
//! since an arbitrary epoch, so the same code runs under the real clock, in virtual-clock tests and
//! in the trace simulator.
//!
//! [`Duration`]: std::time::Duration

pub mod buckets;
pub mod collector;
pub mod decider;
pub mod max_window;
pub mod multi;
pub mod predictive;
pub mod predictive_burst;
pub mod scaler;
pub mod schedule;
pub mod spec;

#[cfg(test)]
mod tests;

pub use decider::TICK_INTERVAL;
pub use multi::MultiScaler;
pub use predictive::{Advice, PredictiveParams, Predictor};
pub use scaler::{Decision, FunctionScaler, Observation, Reason};
pub use spec::{DeciderSpec, SpecError};
