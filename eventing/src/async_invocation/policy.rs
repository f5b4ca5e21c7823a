//! A Function's `spec.async` resolved into what the worker needs, and the table of them the
//! activator keeps from its Function watch.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use zeroscale_common::signals::FunctionKey;
use zeroscale_crds::{duration, function::AsyncSpec};

use crate::{
    delivery::{DeliveryDefaults, Target, TargetError},
    retry::RetryPolicy,
};

/// Added to a Function's `timeoutSeconds` for one attempt's deadline: the proxy path enforces the
/// function's own deadline, this only bounds a request that lost its way.
pub const ATTEMPT_MARGIN: Duration = Duration::from_secs(30);

/// A `spec.async` that cannot be used (admission rejects all of these; a stale object may not).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// A duration does not parse or is zero.
    #[error("spec.async.{field}: {reason}")]
    Duration {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// `retries` is out of range.
    #[error("spec.async.retries must be between 0 and 100, got {0}")]
    Retries(i32),
    /// A destination does not resolve.
    #[error("spec.async.{field}: {source}")]
    Destination {
        /// `onSuccess` or `onFailure`.
        field: &'static str,
        /// Why.
        #[source]
        source: TargetError,
    },
}

/// How one Function's async invocations run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsyncPolicy {
    /// Retries and back-off.
    pub retry: RetryPolicy,
    /// Oldest an invocation may be when an attempt starts.
    pub max_event_age: Duration,
    /// Deadline of one attempt (the function's timeout plus [`ATTEMPT_MARGIN`]).
    pub attempt_timeout: Duration,
    /// Receives `Success` records.
    pub on_success: Option<Target>,
    /// Receives `RetriesExhausted` and `EventAgeExceeded` records.
    pub on_failure: Option<Target>,
}

impl Default for AsyncPolicy {
    fn default() -> Self {
        Self::from_spec(
            "default",
            &AsyncSpec::default(),
            300,
            &DeliveryDefaults::default(),
        )
        .unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
}

impl AsyncPolicy {
    /// Resolves `spec` of a Function in `namespace` whose `timeoutSeconds` is `timeout_seconds`.
    pub fn from_spec(
        namespace: &str,
        spec: &AsyncSpec,
        timeout_seconds: i64,
        defaults: &DeliveryDefaults,
    ) -> Result<Self, PolicyError> {
        let retries = u32::try_from(spec.retries)
            .ok()
            .filter(|r| *r <= 100)
            .ok_or(PolicyError::Retries(spec.retries))?;
        let parse = |field: &'static str, value: &str| {
            duration::parse(value)
                .map_err(|e| PolicyError::Duration {
                    field,
                    reason: e.to_string(),
                })
                .and_then(|d| match d.is_zero() && field == "maxEventAge" {
                    true => Err(PolicyError::Duration {
                        field,
                        reason: "must be longer than 0s".into(),
                    }),
                    false => Ok(d),
                })
        };
        let destination = |field: &'static str, d: &Option<zeroscale_crds::trigger::Destination>| {
            d.as_ref()
                .map(|d| Target::resolve(namespace, d))
                .transpose()
                .map_err(|source| PolicyError::Destination { field, source })
        };
        Ok(Self {
            retry: RetryPolicy {
                retries,
                backoff: spec.backoff_policy,
                delay: parse("backoffDelay", &spec.backoff_delay)?,
                max_backoff: defaults.max_backoff,
                retry_after_max: defaults.retry_after_max,
            },
            max_event_age: parse("maxEventAge", &spec.max_event_age)?,
            attempt_timeout: Duration::from_secs(u64::try_from(timeout_seconds.max(1)).unwrap_or(300))
                + ATTEMPT_MARGIN,
            on_success: destination("onSuccess", &spec.on_success)?,
            on_failure: destination("onFailure", &spec.on_failure)?,
        })
    }
}

/// The policies of the Functions this activator knows; a Function missing from it runs with
/// [`AsyncPolicy::default`]. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct AsyncFunctions(Arc<RwLock<HashMap<FunctionKey, Arc<AsyncPolicy>>>>);

impl AsyncFunctions {
    /// Sets (or replaces) the policy of `function`.
    pub fn set(&self, function: FunctionKey, policy: AsyncPolicy) {
        self.write().insert(function, Arc::new(policy));
    }

    /// Registers `function` with the default policy unless it has one (an invocation of a function
    /// the watch has not reported yet still gets a worker).
    pub fn ensure(&self, function: &FunctionKey) {
        if !self.read().contains_key(function) {
            self.write()
                .entry(function.clone())
                .or_insert_with(|| Arc::new(AsyncPolicy::default()));
        }
    }

    /// Forgets a deleted Function.
    pub fn remove(&self, function: &FunctionKey) {
        self.write().remove(function);
    }

    /// The policy of `function` (the default when unknown).
    pub fn get(&self, function: &FunctionKey) -> Arc<AsyncPolicy> {
        self.read()
            .get(function)
            .cloned()
            .unwrap_or_else(|| Arc::new(AsyncPolicy::default()))
    }

    /// Every known Function with its policy.
    pub fn all(&self) -> Vec<(FunctionKey, Arc<AsyncPolicy>)> {
        self.read().iter().map(|(k, p)| (k.clone(), p.clone())).collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<FunctionKey, Arc<AsyncPolicy>>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<FunctionKey, Arc<AsyncPolicy>>> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use zeroscale_crds::trigger::Destination;

    use super::*;

    #[test]
    fn defaults_are_two_retries_six_hours_and_the_function_timeout() {
        let policy = AsyncPolicy::default();
        assert_eq!(policy.retry.retries, 2);
        assert_eq!(policy.max_event_age, Duration::from_secs(6 * 3600));
        assert_eq!(policy.attempt_timeout, Duration::from_secs(330));
        assert_eq!((policy.on_success, policy.on_failure), (None, None));
    }

    #[test]
    fn destinations_resolve_in_the_functions_namespace_and_bad_values_are_named() {
        let spec = AsyncSpec {
            on_success: Some(Destination {
                function: Some("done".into()),
                uri: None,
            }),
            ..AsyncSpec::default()
        };
        let policy = AsyncPolicy::from_spec("shop", &spec, 10, &DeliveryDefaults::default()).expect("valid");
        assert_eq!(policy.on_success.expect("set").address(), "http://done.shop.svc");
        let zero = AsyncSpec {
            max_event_age: "0s".into(),
            ..AsyncSpec::default()
        };
        assert_eq!(
            AsyncPolicy::from_spec("shop", &zero, 10, &DeliveryDefaults::default())
                .expect_err("zero age")
                .to_string(),
            "spec.async.maxEventAge: must be longer than 0s"
        );
        let both = AsyncSpec {
            on_failure: Some(Destination {
                function: Some("a".into()),
                uri: Some("http://b".into()),
            }),
            ..AsyncSpec::default()
        };
        assert!(matches!(
            AsyncPolicy::from_spec("shop", &both, 10, &DeliveryDefaults::default()),
            Err(PolicyError::Destination {
                field: "onFailure",
                ..
            })
        ));
    }

    #[test]
    fn an_unknown_function_gets_the_default_policy_until_it_is_set() {
        let table = AsyncFunctions::default();
        let key = FunctionKey::new("n", "f");
        table.ensure(&key);
        assert_eq!(*table.get(&key), AsyncPolicy::default());
        let mut custom = AsyncPolicy::default();
        custom.retry.retries = 0;
        table.set(key.clone(), custom.clone());
        table.ensure(&key);
        assert_eq!(*table.get(&key), custom);
        table.remove(&key);
        assert!(table.all().is_empty());
    }
}
