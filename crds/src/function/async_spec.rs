//! `spec.async`: how a Function's asynchronous invocations (`Prefer: respond-async`) are retried, how
//! old they may grow, and where their results go (`docs/eventing.md`, "Asynchronous invocation").

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

use crate::trigger::{
    BackoffPolicy, DEFAULT_BACKOFF_DELAY, Destination, MAX_DURATION_LENGTH, add_rules, duration_rules,
};

/// Retries of an async invocation when `spec.async.retries` is not set (Lambda's default).
pub const DEFAULT_ASYNC_RETRIES: i32 = 2;
/// Most retries an async invocation may ask for.
pub const MAX_ASYNC_RETRIES: i32 = 100;
/// Age after which an async invocation is not run any more, when `spec.async.maxEventAge` is not set
/// (Lambda's default, six hours).
pub const DEFAULT_MAX_EVENT_AGE: &str = "6h";

/// How a Function's asynchronous invocations run. Every field has a default, so `async` may be omitted;
/// a Function without it still accepts `Prefer: respond-async` requests with these defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = async_rules)]
pub struct AsyncSpec {
    /// Retries after the first attempt (0–100, default 2). Connection failures, timeouts, 5xx and 429
    /// are retried; other answers are final.
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
    /// Oldest an invocation may be (counted from its acceptance) when an attempt starts, such as `1h`;
    /// default `6h`. An older one is not run and ends with the outcome `EventAgeExceeded`.
    #[serde(default = "default_max_event_age")]
    #[schemars(length(max = MAX_DURATION_LENGTH))]
    pub max_event_age: String,
    /// Receives a `dev.zeroscale.async.success` CloudEvent for every invocation the function answered
    /// with 2xx: a Function in this namespace or a URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<Destination>,
    /// Receives a `dev.zeroscale.async.failure` CloudEvent for every invocation that failed
    /// (`RetriesExhausted` or `EventAgeExceeded`): a Function in this namespace or a URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<Destination>,
}

impl Default for AsyncSpec {
    fn default() -> Self {
        Self {
            retries: DEFAULT_ASYNC_RETRIES,
            backoff_policy: BackoffPolicy::default(),
            backoff_delay: default_backoff_delay(),
            max_event_age: default_max_event_age(),
            on_success: None,
            on_failure: None,
        }
    }
}

fn default_retries() -> i32 {
    DEFAULT_ASYNC_RETRIES
}

fn default_backoff_delay() -> String {
    DEFAULT_BACKOFF_DELAY.to_string()
}

fn default_max_event_age() -> String {
    DEFAULT_MAX_EVENT_AGE.to_string()
}

fn async_rules(schema: &mut Schema) {
    add_rules(
        schema,
        duration_rules(
            "spec.async",
            "200ms, 5s or 1h",
            &["backoffDelay", "maxEventAge"],
            "maxEventAge",
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_omitted_async_spec_takes_every_default() {
        let spec: AsyncSpec = serde_json::from_str("{}").expect("empty spec");
        assert_eq!(spec, AsyncSpec::default());
        assert_eq!(spec.retries, 2);
        assert_eq!(spec.max_event_age, "6h");
    }

    #[test]
    fn destinations_are_the_trigger_destination_type() {
        let spec: AsyncSpec = serde_json::from_str(
            r#"{"retries":0,"maxEventAge":"1m","onSuccess":{"function":"done"},"onFailure":{"uri":"http://sink/x"}}"#,
        )
        .expect("full spec");
        assert_eq!(spec.retries, 0);
        assert_eq!(spec.on_success.and_then(|d| d.function).as_deref(), Some("done"));
        assert_eq!(
            spec.on_failure.and_then(|d| d.uri).as_deref(),
            Some("http://sink/x")
        );
    }

    #[test]
    fn the_schema_carries_the_duration_rules_with_messages_naming_the_field() {
        let schema = serde_json::to_string(&schemars::schema_for!(AsyncSpec)).expect("schema");
        assert!(
            schema.contains("spec.async.maxEventAge must be longer than 0s"),
            "{schema}"
        );
        assert!(
            schema.contains("spec.async.backoffDelay must be a duration"),
            "{schema}"
        );
    }
}
