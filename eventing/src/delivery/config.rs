//! A Trigger's `spec.delivery` resolved into what the deliverer needs.

use std::time::Duration;

use zeroscale_crds::{duration, trigger::DeliverySpec};

use super::target::{Target, TargetError};
use crate::{
    outbound::AllowedHosts,
    retry::{DEFAULT_MAX_BACKOFF, DEFAULT_RETRY_AFTER_MAX, RetryPolicy},
};

/// Component-wide delivery settings (flags of the component that delivers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryDefaults {
    /// Per-attempt deadline when a Trigger sets no `delivery.timeout`.
    pub attempt_timeout: Duration,
    /// Cap on one back-off wait.
    pub max_backoff: Duration,
    /// Cap on the wait a `Retry-After` header can impose.
    pub retry_after_max: Duration,
    /// Hosts a `uri` subscriber or dead-letter sink may point at ([`crate::outbound`]).
    pub allowed_hosts: AllowedHosts,
}

impl Default for DeliveryDefaults {
    fn default() -> Self {
        Self {
            attempt_timeout: Duration::from_secs(60),
            max_backoff: DEFAULT_MAX_BACKOFF,
            retry_after_max: DEFAULT_RETRY_AFTER_MAX,
            allowed_hosts: AllowedHosts::default(),
        }
    }
}

/// A `delivery` that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeliveryConfigError {
    /// `backoffDelay` or `timeout` does not parse.
    #[error("spec.delivery.{field}: {source}")]
    Duration {
        /// The field.
        field: &'static str,
        /// Why it does not parse.
        #[source]
        source: duration::DurationError,
    },
    /// `timeout` is zero.
    #[error("spec.delivery.timeout must be longer than 0s")]
    ZeroTimeout,
    /// `retries` is out of range.
    #[error("spec.delivery.retries must be between 0 and 100, got {0}")]
    Retries(i32),
    /// `deadLetterSink` does not resolve.
    #[error("spec.delivery.deadLetterSink: {0}")]
    DeadLetterSink(#[source] TargetError),
}

/// How one Trigger delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Retries and back-off.
    pub retry: RetryPolicy,
    /// Deadline of each attempt.
    pub attempt_timeout: Duration,
    /// Where events go after the last failed attempt.
    pub dead_letter: Option<Target>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            attempt_timeout: DeliveryDefaults::default().attempt_timeout,
            dead_letter: None,
        }
    }
}

impl DeliveryConfig {
    /// Resolves the `delivery` of a Trigger in `namespace`.
    pub fn from_spec(
        namespace: &str,
        spec: &DeliverySpec,
        defaults: &DeliveryDefaults,
    ) -> Result<Self, DeliveryConfigError> {
        let retries = u32::try_from(spec.retries)
            .ok()
            .filter(|r| *r <= 100)
            .ok_or(DeliveryConfigError::Retries(spec.retries))?;
        let delay = duration::parse(&spec.backoff_delay).map_err(|source| DeliveryConfigError::Duration {
            field: "backoffDelay",
            source,
        })?;
        let attempt_timeout = match &spec.timeout {
            Some(t) => duration::parse(t).map_err(|source| DeliveryConfigError::Duration {
                field: "timeout",
                source,
            })?,
            None => defaults.attempt_timeout,
        };
        if attempt_timeout.is_zero() {
            return Err(DeliveryConfigError::ZeroTimeout);
        }
        let dead_letter = spec
            .dead_letter_sink
            .as_ref()
            .map(|d| Target::resolve(namespace, d))
            .transpose()
            .map_err(DeliveryConfigError::DeadLetterSink)?;
        Ok(Self {
            retry: RetryPolicy {
                retries,
                backoff: spec.backoff_policy,
                delay,
                max_backoff: defaults.max_backoff,
                retry_after_max: defaults.retry_after_max,
            },
            attempt_timeout,
            dead_letter,
        })
    }
}

#[cfg(test)]
mod tests {
    use zeroscale_crds::trigger::{BackoffPolicy, Destination};

    use super::*;

    #[test]
    fn defaults_follow_knative_and_the_component_flags() {
        let config =
            DeliveryConfig::from_spec("ns", &DeliverySpec::default(), &DeliveryDefaults::default()).unwrap();
        assert_eq!(config.retry.retries, 3);
        assert_eq!(config.retry.backoff, BackoffPolicy::Exponential);
        assert_eq!(config.retry.delay, Duration::from_millis(200));
        assert_eq!(config.attempt_timeout, Duration::from_secs(60));
        assert_eq!(config.dead_letter, None);
    }

    #[test]
    fn reads_every_field() {
        let spec = DeliverySpec {
            retries: 5,
            backoff_policy: BackoffPolicy::Linear,
            backoff_delay: "1s".into(),
            timeout: Some("250ms".into()),
            dead_letter_sink: Some(Destination {
                function: Some("dlq".into()),
                uri: None,
            }),
        };
        let config = DeliveryConfig::from_spec("shop", &spec, &DeliveryDefaults::default()).unwrap();
        assert_eq!(config.retry.retries, 5);
        assert_eq!(config.retry.backoff(2), Duration::from_secs(2));
        assert_eq!(config.attempt_timeout, Duration::from_millis(250));
        assert_eq!(config.dead_letter.unwrap().address(), "http://dlq.shop.svc");
    }

    #[test]
    fn rejects_what_admission_would_have_rejected() {
        let d = DeliveryDefaults::default();
        let bad_delay = DeliverySpec {
            backoff_delay: "soon".into(),
            ..DeliverySpec::default()
        };
        assert!(matches!(
            DeliveryConfig::from_spec("ns", &bad_delay, &d),
            Err(DeliveryConfigError::Duration {
                field: "backoffDelay",
                ..
            })
        ));
        let zero = DeliverySpec {
            timeout: Some("0s".into()),
            ..DeliverySpec::default()
        };
        assert_eq!(
            DeliveryConfig::from_spec("ns", &zero, &d),
            Err(DeliveryConfigError::ZeroTimeout)
        );
        let retries = DeliverySpec {
            retries: -1,
            ..DeliverySpec::default()
        };
        assert_eq!(
            DeliveryConfig::from_spec("ns", &retries, &d),
            Err(DeliveryConfigError::Retries(-1))
        );
    }
}
