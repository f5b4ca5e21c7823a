//! Where a Trigger delivers (`subscriber`, `deadLetterSink`) and how it retries (`delivery`).

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

use super::{
    MAX_DURATION_LENGTH, MAX_LABEL_NAME_LENGTH, MAX_URI_LENGTH, add_rules, cel_rule, duration_rules,
    exactly_one,
};

/// Retries after the first attempt when `delivery.retries` is not set (Knative's default).
pub const DEFAULT_RETRIES: i32 = 3;
/// Most retries a Trigger may ask for.
pub const MAX_RETRIES: i32 = 100;
/// Back-off delay when `delivery.backoffDelay` is not set (Knative's default, `PT0.2S`).
pub const DEFAULT_BACKOFF_DELAY: &str = "200ms";

/// Where events go: a Function in the Trigger's namespace or a URI. Exactly one field is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = destination_rules)]
pub struct Destination {
    /// Name of a Function in the Trigger's namespace. Delivery goes through the activator, so the
    /// event wakes the function when it is at zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_LABEL_NAME_LENGTH), transform = function_name_rule)]
    pub function: Option<String>,
    /// Absolute `http` or `https` URI that receives the events with `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_URI_LENGTH))]
    pub uri: Option<String>,
}

fn destination_rules(schema: &mut Schema) {
    add_rules(
        schema,
        [
            cel_rule(
                exactly_one(&["function", "uri"]),
                "a destination (spec.subscriber, spec.delivery.deadLetterSink) must set exactly one of function or uri",
            ),
            cel_rule(
                "!has(self.uri) || (isURL(self.uri) && url(self.uri).getScheme() in ['http', 'https'] && url(self.uri).getHostname() != '')",
                "a destination's uri must be an absolute http or https URL",
            ),
        ],
    );
}

/// The name check sits on the `function` string itself rather than on the destination: `function` is a
/// CEL reserved word (the typed field is `self.__function__`), and the API server prices `self.function`
/// on the object as an unbounded string, which put a regex over it far beyond the cost budget.
fn function_name_rule(schema: &mut Schema) {
    add_rules(
        schema,
        [cel_rule(
            "self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
            "a destination's function must be the name of a Function (a DNS-1035 label)",
        )],
    );
}

/// How a Trigger retries. Every field has a default, so `delivery` may be omitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = delivery_rules)]
pub struct DeliverySpec {
    /// Retries after the first attempt (0–100, default 3). Transport errors, timeouts, 5xx, 404, 408,
    /// 409 and 429 are retried; other responses are final.
    #[serde(default = "default_retries")]
    #[schemars(range(min = 0, max = 100))]
    pub retries: i32,
    /// How the delay grows between retries: `exponential` (delay × 2^n for retry n, default) or
    /// `linear` (delay × n). A `Retry-After` response header can only lengthen the wait.
    #[serde(default)]
    pub backoff_policy: BackoffPolicy,
    /// Base delay between retries, such as `200ms` (the default) or `1s`.
    #[serde(default = "default_backoff_delay")]
    #[schemars(length(max = MAX_DURATION_LENGTH))]
    pub backoff_delay: String,
    /// Deadline of each attempt, such as `30s`; default 60s. Time a Function spends starting from zero counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_DURATION_LENGTH))]
    pub timeout: Option<String>,
    /// Receives, after the last retry, the event that could not be delivered, with extensions naming the
    /// destination, the last status code and the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink: Option<Destination>,
}

impl Default for DeliverySpec {
    fn default() -> Self {
        Self {
            retries: DEFAULT_RETRIES,
            backoff_policy: BackoffPolicy::default(),
            backoff_delay: default_backoff_delay(),
            timeout: None,
            dead_letter_sink: None,
        }
    }
}

fn default_retries() -> i32 {
    DEFAULT_RETRIES
}

fn default_backoff_delay() -> String {
    DEFAULT_BACKOFF_DELAY.to_string()
}

fn delivery_rules(schema: &mut Schema) {
    add_rules(
        schema,
        duration_rules(
            "spec.delivery",
            "200ms, 5s or 1m",
            &["backoffDelay", "timeout"],
            "timeout",
        ),
    );
}

/// How the delay between retries grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackoffPolicy {
    /// Retry `n` (counting from 1) waits `backoffDelay × 2^n`: 400ms, 800ms, 1.6s with the default delay.
    #[default]
    Exponential,
    /// Retry `n` (counting from 1) waits `backoffDelay × n`: 200ms, 400ms, 600ms with the default delay.
    Linear,
}
