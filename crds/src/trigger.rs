//! The `Trigger` custom resource (`zeroscale.dev/v1alpha1`): routes CloudEvents from a source (the
//! namespace's broker, a schedule, or changes of Kubernetes objects) through filters to a subscriber,
//! with retries and a dead-letter sink.
//!
//! Every field's `///` doc becomes its schema description. "Exactly one of" choices, duration syntax and
//! the cron shape are CEL `x-kubernetes-validations` whose messages name the field, so the API server
//! rejects an invalid Trigger at admission. What CEL cannot check (cron semantics, time-zone names,
//! filter attribute names) the operator checks and reports on the `Ready` condition.

mod delivery;
mod filters;
mod status;

use kube::CustomResource;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use delivery::{
    BackoffPolicy, DEFAULT_BACKOFF_DELAY, DEFAULT_RETRIES, DeliverySpec, Destination, MAX_RETRIES,
};
pub use filters::{
    FilterNode, LeafFilter, MAX_CESQL_LENGTH, MAX_FILTER_DEPTH, MAX_FILTER_VALUE_LENGTH, MAX_FILTERS,
    NestedFilter1, NestedFilter2, TriggerFilter,
};
pub use status::*;

/// Durations in a Trigger, in the syntax the API server's CEL `duration()` accepts and
/// [`crate::duration::parse`] parses: one or more `<integer><unit>` with units `ns`, `us`, `ms`, `s`, `m`, `h`.
pub const TRIGGER_DURATION_PATTERN: &str = "^([0-9]+(ns|us|ms|s|m|h))+$";

/// Shape of a cron expression accepted at admission: five whitespace-separated fields, or a macro such
/// as `@hourly`. The fields themselves are parsed by the component that runs the schedule.
pub const CRON_PATTERN: &str = r"^\s*(@(yearly|annually|monthly|weekly|daily|hourly)|\S+(\s+\S+){4})\s*$";

// Bounds of every string in a Trigger. The API server estimates the cost of a CEL rule from the largest
// value a field may hold, so an unbounded string makes a rule over it too expensive to admit.

/// Longest `cron` expression.
pub const MAX_CRON_LENGTH: usize = 128;
/// Longest `timeZone` (IANA names are at most about 32 characters).
pub const MAX_TIME_ZONE_LENGTH: usize = 64;
/// Longest `data` of a `schedule` source, in characters.
pub const MAX_SCHEDULE_DATA_LENGTH: usize = 65536;
/// Longest `contentType` (RFC 6838 allows 127 characters each for type and subtype).
pub const MAX_CONTENT_TYPE_LENGTH: usize = 256;
/// Longest `apiVersion`: a DNS-1123 subdomain group, `/`, and a DNS-1035 label version.
pub const MAX_API_VERSION_LENGTH: usize = 253 + 1 + 63;
/// Longest Kubernetes name that is a DNS label: a `kind`, a namespace, a Function.
pub const MAX_LABEL_NAME_LENGTH: usize = 63;
/// Longest `labelSelector`.
pub const MAX_LABEL_SELECTOR_LENGTH: usize = 4096;
/// Longest URI: a destination's `uri` and the addresses in the status.
pub const MAX_URI_LENGTH: usize = 2048;
/// Longest duration (`backoffDelay`, `timeout`).
pub const MAX_DURATION_LENGTH: usize = 64;

/// Routes CloudEvents from one source, through filters, to a subscriber.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "zeroscale.dev",
    version = "v1alpha1",
    kind = "Trigger",
    namespaced,
    category = "zeroscale",
    status = "TriggerStatus",
    printcolumn = r#"{"name":"SOURCE","type":"string","jsonPath":".status.sourceKind"}"#,
    printcolumn = r#"{"name":"SUBSCRIBER","type":"string","jsonPath":".status.subscriberUri"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"REASON","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TriggerSpec {
    /// Where the events come from: exactly one of `broker`, `schedule` or `kubernetes`.
    pub source: TriggerSource,
    /// CloudEvents Subscriptions API filters; an event is delivered when every filter matches. Empty
    /// delivers every event of the source. Nesting of `all`, `any` and `not` is limited to four levels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_FILTERS))]
    pub filters: Vec<TriggerFilter>,
    /// Who receives the events: a Function in the Trigger's namespace or a URI.
    pub subscriber: Destination,
    /// Retries, back-off, per-attempt timeout and the dead-letter sink.
    #[serde(default)]
    pub delivery: DeliverySpec,
}

/// The source of a Trigger's events. Exactly one field is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = source_rules)]
pub struct TriggerSource {
    /// Events POSTed to the broker ingress of the Trigger's namespace (`POST /<namespace>` on the
    /// activator's broker port). Written as `broker: {}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerSource>,
    /// An event on a cron schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSource>,
    /// An event for every add, update and delete of Kubernetes objects of one kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesSource>,
}

impl TriggerSource {
    /// The name of the source that is set (`broker`, `schedule`, `kubernetes`), for status and logs.
    pub fn kind(&self) -> Option<&'static str> {
        match (&self.broker, &self.schedule, &self.kubernetes) {
            (Some(_), None, None) => Some("broker"),
            (None, Some(_), None) => Some("schedule"),
            (None, None, Some(_)) => Some("kubernetes"),
            _ => None,
        }
    }
}

/// Events POSTed to the namespace's broker ingress. Has no fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BrokerSource {}

/// An event on a cron schedule (Knative `PingSource`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schedule_rules)]
pub struct ScheduleSource {
    /// Five-field cron expression (minute hour day-of-month month day-of-week), such as `*/5 * * * *`,
    /// or a macro such as `@hourly`.
    #[schemars(length(max = MAX_CRON_LENGTH))]
    pub cron: String,
    /// IANA time zone the cron expression is read in, such as `Europe/Paris`; default `UTC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_TIME_ZONE_LENGTH))]
    pub time_zone: Option<String>,
    /// Data of every event, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SCHEDULE_DATA_LENGTH))]
    pub data: Option<String>,
    /// Media type of `data` (the event's `datacontenttype`); default `application/json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_CONTENT_TYPE_LENGTH))]
    pub content_type: Option<String>,
}

/// Add, update and delete of Kubernetes objects of one kind, as CloudEvents whose data is the object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesSource {
    /// API version of the objects, such as `v1` or `apps/v1`.
    #[schemars(length(min = 1, max = MAX_API_VERSION_LENGTH))]
    pub api_version: String,
    /// Kind of the objects, such as `ConfigMap`.
    #[schemars(length(min = 1, max = MAX_LABEL_NAME_LENGTH))]
    pub kind: String,
    /// Namespace to watch; default (and, for now, the only one allowed) the Trigger's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LABEL_NAME_LENGTH))]
    pub namespace: Option<String>,
    /// Label selector in the `kubectl -l` syntax, such as `app=web,tier!=cache`; default every object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LABEL_SELECTOR_LENGTH))]
    pub label_selector: Option<String>,
}

/// A CEL rule with the message the API server returns when it fails.
pub(crate) fn cel_rule(rule: impl Into<String>, message: impl Into<String>) -> Value {
    json!({ "rule": rule.into(), "message": message.into() })
}

/// The CEL rules of an object's duration fields (`spec.delivery`, `spec.async`, at `path`): each of
/// `fields`, when set, matches [`TRIGGER_DURATION_PATTERN`] (the message gives `examples`), and
/// `positive`, when set and well-formed, is longer than 0s.
pub(crate) fn duration_rules(path: &str, examples: &str, fields: &[&str], positive: &str) -> Vec<Value> {
    let mut rules: Vec<Value> = fields
        .iter()
        .map(|field| {
            cel_rule(
                format!("!has(self.{field}) || self.{field}.matches('{TRIGGER_DURATION_PATTERN}')"),
                format!("{path}.{field} must be a duration such as {examples} (units ns, us, ms, s, m, h)"),
            )
        })
        .collect();
    rules.push(cel_rule(
        format!(
            "!has(self.{positive}) || !self.{positive}.matches('{TRIGGER_DURATION_PATTERN}') || duration(self.{positive}) > duration('0s')"
        ),
        format!("{path}.{positive} must be longer than 0s"),
    ));
    rules
}

/// Appends CEL rules to a schema's `x-kubernetes-validations`.
pub(crate) fn add_rules(schema: &mut Schema, rules: impl IntoIterator<Item = Value>) {
    let mut all = match schema.get("x-kubernetes-validations") {
        Some(Value::Array(existing)) => existing.clone(),
        _ => Vec::new(),
    };
    all.extend(rules);
    schema.insert("x-kubernetes-validations".into(), Value::Array(all));
}

/// `[has(self.a), has(self.b)].filter(x, x).size() == 1`: exactly one of the fields is set.
pub(crate) fn exactly_one(fields: &[&str]) -> String {
    let has: Vec<String> = fields.iter().map(|f| format!("has(self.{f})")).collect();
    format!("[{}].filter(x, x).size() == 1", has.join(", "))
}

fn source_rules(schema: &mut Schema) {
    add_rules(
        schema,
        [cel_rule(
            exactly_one(&["broker", "schedule", "kubernetes"]),
            "spec.source must set exactly one of broker, schedule or kubernetes",
        )],
    );
}

fn schedule_rules(schema: &mut Schema) {
    add_rules(
        schema,
        [cel_rule(
            format!("self.cron.matches('{}')", CRON_PATTERN.replace('\\', "\\\\")),
            "spec.source.schedule.cron must be a five-field cron expression such as '*/5 * * * *' or a macro such as '@hourly'",
        )],
    );
}

#[cfg(test)]
mod tests;
