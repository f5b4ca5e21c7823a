//! What the activator applies to one revision's requests (concurrency, timeouts, protocol, port),
//! carried as labels on the revision's private Service so that an older revision keeps its own while
//! the Function's spec moves on.
//!
//! Why labels on the private Service: the EndpointSlice controller copies a Service's labels onto its
//! EndpointSlices, which the activator already watches to find a revision's pods; the settings arrive
//! with the addresses, through the same watch, with nothing else to list. They are immutable per
//! revision because the revision's name hashes every one of these fields
//! ([`crate::revision::RUNTIME_FIELDS`]): the same name always carries the same values. A revision
//! made before these labels existed has none; the activator then falls back to the Function's spec.
//! The operator puts the same labels on the revision's Deployment, where the autoscaler reads the
//! concurrency it scales the revision on.

use std::collections::BTreeMap;

use crate::FunctionSpec;
use crate::function::Protocol;

/// Label: most requests in flight per pod (`spec.concurrency`; 0 is unlimited).
pub const CONCURRENCY_LABEL: &str = "runtime.zeroscale.dev/concurrency";
/// Label: `spec.timeoutSeconds`.
pub const TIMEOUT_LABEL: &str = "runtime.zeroscale.dev/timeout-seconds";
/// Label: `spec.responseStartTimeoutSeconds`; absent when the spec leaves it to `timeoutSeconds`.
pub const RESPONSE_START_TIMEOUT_LABEL: &str = "runtime.zeroscale.dev/response-start-timeout-seconds";
/// Label: `spec.idleTimeoutSeconds` (0 is no limit).
pub const IDLE_TIMEOUT_LABEL: &str = "runtime.zeroscale.dev/idle-timeout-seconds";
/// Label: `spec.protocol` (`http1` or `h2c`).
pub const PROTOCOL_LABEL: &str = "runtime.zeroscale.dev/protocol";
/// Label: `spec.port`.
pub const PORT_LABEL: &str = "runtime.zeroscale.dev/port";

/// Why a revision's runtime labels could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeLabelError {
    /// A label holds something that is not a value of its field.
    #[error("label {label} has the value {value:?}, which is not a valid {what}")]
    Invalid {
        /// The label's key.
        label: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        what: &'static str,
    },
    /// Some of the labels are there but not this one (every revision carries all or none).
    #[error("label {0} is missing while other runtime labels are set")]
    Missing(&'static str),
}

/// The per-revision runtime settings, as in the spec the revision was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RevisionRuntime {
    /// `spec.concurrency`.
    pub concurrency: i32,
    /// `spec.timeoutSeconds`.
    pub timeout_seconds: i64,
    /// `spec.responseStartTimeoutSeconds`.
    pub response_start_timeout_seconds: Option<i64>,
    /// `spec.idleTimeoutSeconds`.
    pub idle_timeout_seconds: i64,
    /// `spec.protocol`.
    pub protocol: Protocol,
    /// `spec.port`.
    pub port: i32,
}

impl RevisionRuntime {
    /// The runtime settings of `spec`.
    pub fn of(spec: &FunctionSpec) -> Self {
        Self {
            concurrency: spec.concurrency,
            timeout_seconds: spec.timeout_seconds,
            response_start_timeout_seconds: spec.response_start_timeout_seconds,
            idle_timeout_seconds: spec.idle_timeout_seconds,
            protocol: spec.protocol,
            port: spec.port,
        }
    }

    /// `spec` with these settings in place of its own.
    pub fn apply_to(&self, spec: &mut FunctionSpec) {
        spec.concurrency = self.concurrency;
        spec.timeout_seconds = self.timeout_seconds;
        spec.response_start_timeout_seconds = self.response_start_timeout_seconds;
        spec.idle_timeout_seconds = self.idle_timeout_seconds;
        spec.protocol = self.protocol;
        spec.port = self.port;
    }

    /// The labels that carry these settings.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let protocol = match self.protocol {
            Protocol::Http1 => "http1",
            Protocol::H2c => "h2c",
        };
        let mut labels: BTreeMap<String, String> = [
            (CONCURRENCY_LABEL, self.concurrency.to_string()),
            (TIMEOUT_LABEL, self.timeout_seconds.to_string()),
            (IDLE_TIMEOUT_LABEL, self.idle_timeout_seconds.to_string()),
            (PROTOCOL_LABEL, protocol.to_string()),
            (PORT_LABEL, self.port.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(seconds) = self.response_start_timeout_seconds {
            labels.insert(RESPONSE_START_TIMEOUT_LABEL.into(), seconds.to_string());
        }
        labels
    }

    /// The settings `labels` carry: `Ok(None)` when they carry none (a revision from before these
    /// labels), an error naming the label when one is missing or malformed.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Result<Option<Self>, RuntimeLabelError> {
        let required = [
            CONCURRENCY_LABEL,
            TIMEOUT_LABEL,
            IDLE_TIMEOUT_LABEL,
            PROTOCOL_LABEL,
            PORT_LABEL,
        ];
        if !required
            .iter()
            .chain([&RESPONSE_START_TIMEOUT_LABEL])
            .any(|l| labels.contains_key(*l))
        {
            return Ok(None);
        }
        let text = |label: &'static str| {
            labels
                .get(label)
                .map(String::as_str)
                .ok_or(RuntimeLabelError::Missing(label))
        };
        let invalid = |label: &'static str, value: &str, what: &'static str| RuntimeLabelError::Invalid {
            label,
            value: value.to_string(),
            what,
        };
        let number = |label: &'static str, min: i64| -> Result<i64, RuntimeLabelError> {
            let value = text(label)?;
            value
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= min)
                .ok_or_else(|| invalid(label, value, "number of seconds or requests"))
        };
        let port = text(PORT_LABEL)?;
        let protocol = match text(PROTOCOL_LABEL)? {
            "http1" => Protocol::Http1,
            "h2c" => Protocol::H2c,
            other => return Err(invalid(PROTOCOL_LABEL, other, "protocol (http1 or h2c)")),
        };
        Ok(Some(Self {
            concurrency: {
                let value = text(CONCURRENCY_LABEL)?;
                value
                    .parse::<i32>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| invalid(CONCURRENCY_LABEL, value, "concurrency"))?
            },
            timeout_seconds: number(TIMEOUT_LABEL, 1)?,
            response_start_timeout_seconds: labels
                .contains_key(RESPONSE_START_TIMEOUT_LABEL)
                .then(|| number(RESPONSE_START_TIMEOUT_LABEL, 1))
                .transpose()?,
            idle_timeout_seconds: number(IDLE_TIMEOUT_LABEL, 0)?,
            protocol,
            port: port
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .map(i32::from)
                .ok_or_else(|| invalid(PORT_LABEL, port, "port (1-65535)"))?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FunctionSpec {
        serde_json::from_value(serde_json::json!({
            "image": "echo", "concurrency": 4, "timeoutSeconds": 30,
            "responseStartTimeoutSeconds": 5, "idleTimeoutSeconds": 7, "protocol": "h2c", "port": 9000,
        }))
        .expect("spec")
    }

    #[test]
    fn labels_round_trip_and_are_valid_label_values() {
        let runtime = RevisionRuntime::of(&spec());
        let labels = runtime.labels();
        assert_eq!(labels.get(PROTOCOL_LABEL).map(String::as_str), Some("h2c"));
        assert_eq!(labels.get(PORT_LABEL).map(String::as_str), Some("9000"));
        for (key, value) in &labels {
            let (_, name) = key.split_once('/').expect("prefixed");
            assert!(name.len() <= 63 && value.len() <= 63, "{key}={value}");
            assert!(value.chars().all(|c| c.is_ascii_alphanumeric()), "{key}={value}");
        }
        assert_eq!(RevisionRuntime::from_labels(&labels), Ok(Some(runtime)));
        let mut defaults = spec();
        defaults.response_start_timeout_seconds = None;
        let runtime = RevisionRuntime::of(&defaults);
        assert!(!runtime.labels().contains_key(RESPONSE_START_TIMEOUT_LABEL));
        assert_eq!(RevisionRuntime::from_labels(&runtime.labels()), Ok(Some(runtime)));
    }

    #[test]
    fn no_labels_is_none_and_apply_to_overrides_the_spec() {
        let other: BTreeMap<String, String> =
            [("zeroscale.dev/function".to_string(), "f".to_string())].into();
        assert_eq!(RevisionRuntime::from_labels(&other), Ok(None));
        let old = RevisionRuntime::of(&spec());
        let mut current: FunctionSpec =
            serde_json::from_value(serde_json::json!({ "image": "echo:2" })).expect("spec");
        old.apply_to(&mut current);
        assert_eq!(RevisionRuntime::of(&current), old);
        assert_eq!(current.image, "echo:2");
    }

    #[test]
    fn a_missing_or_malformed_label_is_named() {
        let labels = RevisionRuntime::of(&spec()).labels();
        let mut missing = labels.clone();
        missing.remove(TIMEOUT_LABEL);
        assert_eq!(
            RevisionRuntime::from_labels(&missing),
            Err(RuntimeLabelError::Missing(TIMEOUT_LABEL))
        );
        for (label, value) in [
            (PORT_LABEL, "0"),
            (PORT_LABEL, "70000"),
            (PROTOCOL_LABEL, "h3"),
            (CONCURRENCY_LABEL, "-1"),
            (TIMEOUT_LABEL, "0"),
            (IDLE_TIMEOUT_LABEL, "soon"),
        ] {
            let mut bad = labels.clone();
            bad.insert(label.into(), value.into());
            let error = RevisionRuntime::from_labels(&bad).expect_err(value);
            assert!(error.to_string().contains(label), "{error}");
        }
    }
}
