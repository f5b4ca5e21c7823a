//! `status.prediction`: the learned idle-time histogram of a `predictive` function, kept in the
//! Function's status so an autoscaler restart does not forget it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One non-empty bin of the idle-time histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IdleBin {
    /// Bin index: idle times of `[minute, minute + 1)` minutes.
    #[schemars(range(min = 0))]
    pub minute: u32,
    /// Idle times seen in the bin (decayed: every count halves when the total grows too large).
    pub count: u32,
}

/// The learned state of the predictive policy, compact enough for a status field (at most one entry
/// per minute of the histogram's range, only the non-empty bins).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prediction {
    /// Non-empty bins of the histogram of idle times between invocations, by minute.
    #[serde(default)]
    pub bins: Vec<IdleBin>,
    /// Idle times longer than the histogram's range.
    #[serde(default)]
    pub out_of_range: u32,
    /// Moving average of the out-of-range idle times in seconds (their forecast), 0 when none.
    #[serde(default)]
    pub forecast_seconds: f64,
    /// When the function last had traffic (RFC 3339), so a restart inside a gap still pre-warms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_time: Option<String>,
    /// Bursts after an idle gap seen, by the pods each needed (index = pods, index 0 unused): the
    /// pods a warm span keeps. Absent in a state written before bursts were learned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub burst_peaks: Vec<u32>,
}
