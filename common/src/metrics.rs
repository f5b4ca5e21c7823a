//! Metric label sets shared by the components, so a function is labelled the same way everywhere.

use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::{encoding::EncodeLabelSet, metrics::gauge::Gauge};

use crate::signals::FunctionKey;

/// A gauge holding seconds as a float, such as a wall-clock stamp.
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// Wall-clock now in seconds since the Unix epoch. Stamps in this unit can be lined up across processes
/// on one node (`bench/coldstart` does), which monotonic clocks cannot.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `namespace` and `function` labels of a metric about one function (SPEC §8).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionLabels {
    /// Namespace of the Function.
    pub namespace: String,
    /// Name of the Function.
    pub function: String,
}

impl From<&FunctionKey> for FunctionLabels {
    fn from(key: &FunctionKey) -> Self {
        Self {
            namespace: key.namespace.clone(),
            function: key.name.clone(),
        }
    }
}
