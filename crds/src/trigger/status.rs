//! A Trigger's status, its condition types and their reasons.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{MAX_LABEL_NAME_LENGTH, MAX_URI_LENGTH};

/// Condition type: the Trigger routes events (every other condition is true).
pub const TRIGGER_CONDITION_READY: &str = "Ready";
/// Condition type: the subscriber (and the dead-letter sink, when set) resolved to an address.
pub const TRIGGER_CONDITION_SUBSCRIBER_RESOLVED: &str = "SubscriberResolved";
/// Condition type: the source is valid and running (the schedule is armed, the watch has started).
pub const TRIGGER_CONDITION_SOURCE_READY: &str = "SourceReady";

/// Reason: every condition holds.
pub const TRIGGER_REASON_READY: &str = "Ready";
/// Reason: the subscriber and dead-letter sink resolved.
pub const TRIGGER_REASON_RESOLVED: &str = "Resolved";
/// Reason: the subscriber or dead-letter sink names a Function that does not exist.
pub const TRIGGER_REASON_FUNCTION_NOT_FOUND: &str = "FunctionNotFound";
/// Reason: the subscriber or dead-letter sink URI does not parse.
pub const TRIGGER_REASON_INVALID_URI: &str = "InvalidURI";
/// Reason: the subscriber or dead-letter sink URI names a host outside the outbound allow-list
/// (in-cluster Services and the chart's `eventing.allowedHosts`); the message names the host.
pub const TRIGGER_REASON_HOST_NOT_ALLOWED: &str = "HostNotAllowed";
/// Reason: the source is running.
pub const TRIGGER_REASON_SOURCE_RUNNING: &str = "SourceRunning";
/// Reason: the cron expression or time zone of a `schedule` source is invalid.
pub const TRIGGER_REASON_INVALID_SCHEDULE: &str = "InvalidSchedule";
/// Reason: a filter names an invalid attribute or is otherwise invalid.
pub const TRIGGER_REASON_INVALID_FILTER: &str = "InvalidFilter";
/// Reason: a `kubernetes` source names a kind the API server does not serve.
pub const TRIGGER_REASON_KIND_NOT_FOUND: &str = "KindNotFound";
/// Reason: a `kubernetes` source asks for something it may not watch (another namespace, Secrets).
pub const TRIGGER_REASON_SOURCE_NOT_ALLOWED: &str = "SourceNotAllowed";
/// Reason: a `kubernetes` source's watch failed (RBAC, label selector, API errors).
pub const TRIGGER_REASON_WATCH_FAILED: &str = "WatchFailed";
/// Reason: a `delivery` duration does not parse.
pub const TRIGGER_REASON_INVALID_DELIVERY: &str = "InvalidDelivery";

/// What the operator last observed and applied for a Trigger.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The source that is set (`broker`, `schedule` or `kubernetes`), for the SOURCE printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LABEL_NAME_LENGTH))]
    pub source_kind: Option<String>,
    /// The address events are delivered to, such as `http://hello.default.svc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_URI_LENGTH))]
    pub subscriber_uri: Option<String>,
    /// The address of the dead-letter sink, when one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_URI_LENGTH))]
    pub dead_letter_sink_uri: Option<String>,
    /// When a `schedule` source last fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// Conditions `Ready`, `SubscriberResolved` and `SourceReady`.
    #[serde(default)]
    #[schemars(transform = condition_bounds)]
    pub conditions: Vec<Condition>,
}

/// Most conditions in a Trigger's status (it writes three).
pub const MAX_TRIGGER_CONDITIONS: usize = 8;

/// The bounds `metav1.Condition` declares upstream (`type` 316, `reason` 1024, `message` 32768
/// characters; `status` is one of `True`, `False`, `Unknown`), which the generated `Condition` schema
/// lacks, and at most [`MAX_TRIGGER_CONDITIONS`] conditions.
fn condition_bounds(schema: &mut Schema) {
    schema.insert("maxItems".into(), MAX_TRIGGER_CONDITIONS.into());
    let Some(Value::Object(fields)) = schema
        .get_mut("items")
        .and_then(|items| items.get_mut("properties"))
    else {
        return;
    };
    for (field, max) in [
        ("type", 316),
        ("status", 16),
        ("reason", 1024),
        ("message", 32768),
    ] {
        if let Some(Value::Object(field)) = fields.get_mut(field) {
            field.insert("maxLength".into(), max.into());
        }
    }
}

impl TriggerStatus {
    /// The condition of type `type_`, if present.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}
