//! `status.rollout`: where the automated canary stands, persisted so an operator restart continues it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a rollout stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RolloutPhase {
    /// The new revision holds one of the steps and is being measured.
    #[default]
    Progressing,
    /// The new revision passed every step and is now the stable one.
    Promoted,
    /// The new revision breached a limit; all traffic went back to the stable revision.
    RolledBack,
}

/// The latest rollout of a Function (written by the operator only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The revision being rolled out (or last rolled out): the canary.
    pub revision: String,
    /// The revision that served before it: the rollback target, never garbage-collected while named here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<String>,
    /// `Progressing`, `Promoted` or `RolledBack`.
    #[serde(default)]
    pub phase: RolloutPhase,
    /// Index of the current step in `spec.rollout.steps` (0-based).
    #[serde(default)]
    pub step: i32,
    /// Percent of the latest revision's traffic the canary has now.
    #[serde(default)]
    pub percent: i32,
    /// When the current step began (RFC 3339); its window is measured from then.
    pub step_started_at: String,
    /// Requests to the canary counted in the current step's window so far.
    #[serde(default)]
    pub requests: i64,
    /// Of those, the failed ones (5xx from the function, or failed by the activator).
    #[serde(default)]
    pub errors: i64,
    /// The canary's 99th-percentile latency in the window, in milliseconds (upper bound of its
    /// histogram bucket), when it saw requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_latency_ms: Option<i64>,
    /// What happened last, in words (the breach and its figure after a rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
