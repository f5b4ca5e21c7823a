//! Validate: the checks the operator makes before it builds anything (pure).
//!
//! Admission (OpenAPI bounds and CEL rules in the CRD) rejects almost every invalid Function first; these
//! checks cover what CEL does not (names the operator reserves, duplicate keys that would break
//! server-side apply) and protect the operator from objects stored before a stricter CRD was installed.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use zeroscale_crds::function::{
    MAX_NAME_LENGTH, ResolvedRollout, ResolvedScale, RolloutError, ScaleError, ScheduleError, parse_schedules,
};
use zeroscale_crds::revision::revision_name;
use zeroscale_crds::{Function, FunctionSpec};

/// Environment variables the operator sets on every function container.
pub const RESERVED_ENV: &[&str] = &[
    "PORT",
    "ZEROSCALE_FUNCTION",
    "ZEROSCALE_NAMESPACE",
    "ZEROSCALE_REVISION",
];

/// Why a Function cannot be reconciled as written.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValidationError {
    /// The Function has no name or namespace (never true for objects read from the API server).
    #[error("the function has no {0}")]
    MissingMetadata(&'static str),
    /// The name cannot name the children.
    #[error("metadata.name {0:?} must be a DNS-1035 label of at most {MAX_NAME_LENGTH} characters")]
    Name(String),
    /// `spec.image` is empty.
    #[error("spec.image must not be empty")]
    EmptyImage,
    /// A numeric field is out of its range.
    #[error("spec.{field} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// The field, as spelled in the API.
        field: &'static str,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
        /// The value as written.
        value: i64,
    },
    /// A timeout exceeds `timeoutSeconds`.
    #[error("spec.{0} must not exceed spec.timeoutSeconds")]
    AboveTimeout(&'static str),
    /// The user sets an environment variable the operator owns.
    #[error("spec.env must not set {0} (the operator sets it)")]
    ReservedEnv(String),
    /// Two environment variables share a name.
    #[error("spec.env sets {0} more than once")]
    DuplicateEnv(String),
    /// `spec.scale.target` is above `spec.concurrency`.
    #[error("spec.scale.target must not exceed spec.concurrency")]
    TargetAboveConcurrency,
    /// `spec.securityContext` leaves the restricted Pod Security Standard (the admission message).
    #[error("{0}")]
    SecurityContext(&'static str),
    /// `spec.scale` is invalid.
    #[error(transparent)]
    Scale(#[from] ScaleError),
    /// A `spec.scale.schedules` entry cannot run: a cron that does not parse, or a time zone the tz
    /// database does not know (admission checks only the name's shape).
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// `spec.rollout` is invalid.
    #[error(transparent)]
    Rollout(#[from] RolloutError),
    /// The revision name could not be computed (the spec does not serialise).
    #[error("cannot name the revision: {0}")]
    Revision(String),
}

fn is_dns_1035_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= MAX_NAME_LENGTH
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !name.ends_with('-')
}

fn range(field: &'static str, value: i64, min: i64, max: i64) -> Result<(), ValidationError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::OutOfRange {
            field,
            min,
            max,
            value,
        })
    }
}

/// A Function that passed [`validate`]: everything the later phases (build, apply, status) read, so
/// none of them looks at optional metadata again.
#[derive(Clone, Debug)]
pub struct ValidatedFunction<'a> {
    /// The object as read: its stored status (to compare with the next one) and its reference (for
    /// Events).
    pub function: &'a Function,
    /// `metadata.name`, a DNS-1035 label that names the children.
    pub name: &'a str,
    /// `metadata.namespace`, where the children live.
    pub namespace: &'a str,
    /// The checked spec.
    pub spec: &'a FunctionSpec,
    /// `spec.scale` with its defaults resolved.
    pub scale: ResolvedScale,
    /// The revision the spec makes, `<name>-<hash>`: the name of its Deployment and private Service.
    pub revision: String,
    /// `spec.rollout` checked and parsed; `None` when absent (the latest ready revision takes its
    /// traffic at once).
    pub rollout: Option<ResolvedRollout>,
    /// The controller owner reference of every child; `None` only for an object without a uid (never
    /// one read from the API server), whose children are then not garbage-collected with it.
    pub owner: Option<OwnerReference>,
}

impl ValidatedFunction<'_> {
    /// Replicas of a newly created Deployment: `scale.initial`, but at least one for a new revision
    /// of a Function that already has a ready one. Like Knative, a new revision must prove it can
    /// become ready before `latestRevision` traffic moves to it; with no pod it never could (a broken
    /// image would look as healthy as a good one). Once a pod was ready (recorded in
    /// `status.revisions[].ready`) the autoscaler may take it to zero.
    pub fn initial_replicas(&self) -> i32 {
        let initial = i32::try_from(self.scale.initial).unwrap_or(i32::MAX);
        if initial == 0 && self.has_another_ready_revision() {
            1
        } else {
            initial
        }
    }

    /// Whether a revision other than the current one has been ready (the status says so): the
    /// current one is then a new revision, not the Function's first.
    pub fn has_another_ready_revision(&self) -> bool {
        let Some(status) = self.function.status.as_ref() else {
            return false;
        };
        let other = |name: &str| name != self.revision;
        status.latest_ready_revision_name.as_deref().is_some_and(other)
            || status.revisions.iter().any(|r| r.ready && other(&r.name))
    }
}

/// The name and namespace of `function`, which every object read from the API server has.
pub fn identity(function: &Function) -> Result<(&str, &str), ValidationError> {
    let name = function
        .metadata
        .name
        .as_deref()
        .ok_or(ValidationError::MissingMetadata("name"))?;
    let namespace = function
        .metadata
        .namespace
        .as_deref()
        .ok_or(ValidationError::MissingMetadata("namespace"))?;
    Ok((name, namespace))
}

/// Checks a Function and resolves what the later phases need.
pub fn validate(function: &Function) -> Result<ValidatedFunction<'_>, ValidationError> {
    let (name, namespace) = identity(function)?;
    if !is_dns_1035_label(name) {
        return Err(ValidationError::Name(name.to_string()));
    }
    let scale = validate_spec(&function.spec)?;
    let revision =
        revision_name(name, &function.spec).map_err(|e| ValidationError::Revision(e.to_string()))?;
    let rollout = function.spec.rollout.as_ref().map(|r| r.resolve()).transpose()?;
    Ok(ValidatedFunction {
        function,
        name,
        namespace,
        spec: &function.spec,
        scale,
        revision,
        rollout,
        owner: function.controller_owner_ref(&()),
    })
}

/// Checks a Function's spec and resolves its scale settings.
pub fn validate_spec(spec: &FunctionSpec) -> Result<ResolvedScale, ValidationError> {
    if spec.image.trim().is_empty() {
        return Err(ValidationError::EmptyImage);
    }
    range("port", spec.port.into(), 1, 65535)?;
    range("concurrency", spec.concurrency.into(), 0, 1000)?;
    range("timeoutSeconds", spec.timeout_seconds, 1, 3600)?;
    range("idleTimeoutSeconds", spec.idle_timeout_seconds, 0, 3600)?;
    if let Some(start) = spec.response_start_timeout_seconds {
        range("responseStartTimeoutSeconds", start, 1, 3600)?;
        if start > spec.timeout_seconds {
            return Err(ValidationError::AboveTimeout("responseStartTimeoutSeconds"));
        }
    }
    if spec.idle_timeout_seconds > spec.timeout_seconds {
        return Err(ValidationError::AboveTimeout("idleTimeoutSeconds"));
    }
    if let Some(violation) = spec.security_context.as_ref().and_then(|s| s.violation()) {
        return Err(ValidationError::SecurityContext(violation));
    }
    let mut seen = BTreeSet::new();
    for var in spec.env.iter().flatten() {
        if RESERVED_ENV.contains(&var.name.as_str()) {
            return Err(ValidationError::ReservedEnv(var.name.clone()));
        }
        if !seen.insert(var.name.as_str()) {
            return Err(ValidationError::DuplicateEnv(var.name.clone()));
        }
    }
    if let Some(target) = spec.scale.target
        && spec.concurrency > 0
        && target > f64::from(spec.concurrency)
    {
        return Err(ValidationError::TargetAboveConcurrency);
    }
    parse_schedules(&spec.scale.schedules)?;
    Ok(spec.scale.resolved(spec.concurrency)?)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::EnvVar;
    use zeroscale_crds::ScaleSpec;

    use super::*;
    use crate::test_objects::function;

    fn env(name: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some("x".into()),
            ..EnvVar::default()
        }
    }

    #[test]
    fn a_minimal_function_is_valid() {
        let f = function("hello");
        let validated = validate(&f).expect("valid");
        assert_eq!(validated.scale.initial, 1);
        assert_eq!(validated.initial_replicas(), 1);
        assert_eq!((validated.name, validated.namespace), ("hello", "ns"));
        assert_eq!(validated.owner.map(|o| o.uid).as_deref(), Some("uid-1"));
    }

    #[test]
    fn a_new_revision_starts_with_one_pod_even_at_initial_zero() {
        let mut f = function("hello");
        f.spec.scale.initial = 0;
        assert_eq!(
            validate(&f).expect("valid").initial_replicas(),
            0,
            "the first revision"
        );
        let current = validate(&f).expect("valid").revision;
        // Its own readiness recorded: still the first (a re-create keeps `initial: 0`).
        f.status = Some(zeroscale_crds::FunctionStatus {
            latest_ready_revision_name: Some(current.clone()),
            ..Default::default()
        });
        assert_eq!(validate(&f).expect("valid").initial_replicas(), 0);
        // Another revision has served: this one must prove itself with a pod.
        f.status = Some(zeroscale_crds::FunctionStatus {
            revisions: vec![zeroscale_crds::function::RevisionStatus {
                name: "hello-0123456789".into(),
                ready: true,
                ..Default::default()
            }],
            ..Default::default()
        });
        let validated = validate(&f).expect("valid");
        assert!(validated.has_another_ready_revision());
        assert_eq!(validated.initial_replicas(), 1);
        f.status = Some(zeroscale_crds::FunctionStatus {
            latest_ready_revision_name: Some("hello-0123456789".into()),
            ..Default::default()
        });
        assert_eq!(validate(&f).expect("valid").initial_replicas(), 1);
        // An explicit initial scale above one is kept.
        f.spec.scale.initial = 3;
        assert_eq!(validate(&f).expect("valid").initial_replicas(), 3);
    }

    #[test]
    fn security_contexts_that_run_as_root_are_rejected_naming_the_field() {
        let mut f = function("f");
        f.spec.security_context =
            Some(serde_json::from_value(serde_json::json!({ "runAsUser": 0 })).expect("ctx"));
        let message = validate(&f).expect_err("root").to_string();
        assert!(message.starts_with("spec.securityContext.runAsUser"), "{message}");
        f.spec.security_context =
            Some(serde_json::from_value(serde_json::json!({ "runAsNonRoot": false })).expect("ctx"));
        let message = validate(&f).expect_err("root").to_string();
        assert!(
            message.starts_with("spec.securityContext.runAsNonRoot must be true"),
            "{message}"
        );
        f.spec.security_context = Some(
            serde_json::from_value(serde_json::json!({ "runAsUser": 1000, "readOnlyRootFilesystem": true }))
                .expect("ctx"),
        );
        assert!(validate(&f).is_ok());
    }

    #[test]
    fn names_that_cannot_name_a_service_are_rejected() {
        for name in ["1abc", "Hello", "a_b", "ends-", &"a".repeat(MAX_NAME_LENGTH + 1)] {
            assert!(
                matches!(validate(&function(name)), Err(ValidationError::Name(_))),
                "{name}"
            );
        }
        assert!(validate(&function(&"a".repeat(MAX_NAME_LENGTH))).is_ok());
    }

    #[test]
    fn bounds_name_the_field() {
        let mut f = function("f");
        f.spec.port = 0;
        assert_eq!(
            validate(&f).expect_err("port 0").to_string(),
            "spec.port must be between 1 and 65535, got 0"
        );
        let mut f = function("f");
        f.spec.concurrency = -1;
        assert!(
            validate(&f)
                .expect_err("negative")
                .to_string()
                .starts_with("spec.concurrency")
        );
        let mut f = function("f");
        f.spec.timeout_seconds = 3601;
        assert!(
            validate(&f)
                .expect_err("too long")
                .to_string()
                .starts_with("spec.timeoutSeconds")
        );
        let mut f = function("f");
        f.spec.response_start_timeout_seconds = Some(301);
        assert_eq!(
            validate(&f).err(),
            Some(ValidationError::AboveTimeout("responseStartTimeoutSeconds"))
        );
        let mut f = function("f");
        f.spec.image = " ".into();
        assert_eq!(validate(&f).err(), Some(ValidationError::EmptyImage));
    }

    #[test]
    fn reserved_and_duplicate_env_are_rejected() {
        let mut f = function("f");
        f.spec.env = Some(vec![env("PORT")]);
        assert_eq!(
            validate(&f).err(),
            Some(ValidationError::ReservedEnv("PORT".into()))
        );
        f.spec.env = Some(vec![env("A"), env("A")]);
        assert_eq!(
            validate(&f).err(),
            Some(ValidationError::DuplicateEnv("A".into()))
        );
    }

    #[test]
    fn scale_rules_apply() {
        let mut f = function("f");
        f.spec.concurrency = 5;
        f.spec.scale.target = Some(10.0);
        assert_eq!(validate(&f).err(), Some(ValidationError::TargetAboveConcurrency));
        let mut f = function("f");
        f.spec.scale = ScaleSpec {
            min: 2,
            max: 1,
            ..ScaleSpec::default()
        };
        assert!(
            validate(&f)
                .expect_err("min > max")
                .to_string()
                .contains("spec.scale.min")
        );
    }

    #[test]
    fn an_unknown_time_zone_is_named() {
        let mut f = function("f");
        f.spec.scale.schedules = vec![zeroscale_crds::function::ScaleSchedule {
            start: "0 8 * * *".into(),
            end: "0 18 * * *".into(),
            time_zone: Some("Europe/Atlantis".into()),
            min: 1,
        }];
        let message = validate(&f).expect_err("unknown zone").to_string();
        assert_eq!(
            message,
            "spec.scale.schedules[0].timeZone \"Europe/Atlantis\" is not a time zone of the tz database"
        );
        f.spec.scale.schedules[0].time_zone = Some("Europe/Berlin".into());
        assert!(validate(&f).is_ok());
    }
}
