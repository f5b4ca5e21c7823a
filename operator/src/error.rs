//! Errors of a Function reconciliation, and [`chain`], which renders any error with its sources.
//!
//! Trigger reconciliations have their own enum, [`crate::trigger::error::TriggerError`].

use std::fmt;

use zeroscale_crds::function::{
    REASON_APPLY_FAILED, REASON_INVALID_SPEC, REASON_NOT_OWNED, REASON_ROUTES_FAILED,
};

use crate::validate::ValidationError;

/// The kind of a Function's child object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Child {
    /// The Deployment that runs the pods.
    Deployment,
    /// The private or the public Service.
    Service,
}

impl fmt::Display for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Child::Deployment => "Deployment",
            Child::Service => "Service",
        })
    }
}

/// Why a Function reconciliation failed; the controller retries with back-off.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// A child object could not be applied.
    #[error("cannot apply {kind} {name}")]
    Apply {
        /// Kind of the child.
        kind: Child,
        /// Name of the child.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A child could not be read before it was applied.
    #[error("cannot read {kind} {namespace}/{name}")]
    ReadChild {
        /// Kind of the child.
        kind: Child,
        /// Namespace of the child.
        namespace: String,
        /// Name of the child.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Objects the status is computed from could not be read.
    #[error("cannot read {what}")]
    Read {
        /// What was being read.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The status could not be written.
    #[error("cannot write the status of function {name}")]
    Status {
        /// The Function.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// An object with a child's name exists but another owner (or nobody) controls it; the operator
    /// does not take it over.
    #[error("{kind} {name} exists and is not controlled by this Function")]
    NotOwned {
        /// Kind of the object.
        kind: Child,
        /// Its name.
        name: String,
    },
    /// The spec is invalid (reported in the status; retried only when the Function changes).
    #[error("invalid spec")]
    InvalidSpec(#[source] ValidationError),
    /// A revision past `revisionHistoryLimit`, or a child from before revisions, could not be deleted.
    #[error("cannot delete {kind} {name}")]
    Delete {
        /// Kind of the child.
        kind: Child,
        /// Its name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

impl FunctionError {
    /// A short label for the `reason` of the error metric.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            FunctionError::Apply { .. } => "apply",
            FunctionError::Read { .. } | FunctionError::ReadChild { .. } => "read",
            FunctionError::Status { .. } => "status",
            FunctionError::NotOwned { .. } => "not_owned",
            FunctionError::InvalidSpec(_) => "invalid_spec",
            FunctionError::Delete { .. } => "delete",
        }
    }

    /// The reason of the condition this error sets in the status, and so of the `Ready` Event that
    /// follows: `NotOwned`; `RoutesFailed` or `ApplyFailed` when applying (or reading before applying)
    /// a Service or the Deployment failed; `InvalidSpec`. `None` for errors that are only retried.
    pub fn condition_reason(&self) -> Option<&'static str> {
        match self {
            FunctionError::NotOwned { .. } => Some(REASON_NOT_OWNED),
            FunctionError::Apply { kind, .. } | FunctionError::ReadChild { kind, .. } => Some(match kind {
                Child::Service => REASON_ROUTES_FAILED,
                Child::Deployment => REASON_APPLY_FAILED,
            }),
            FunctionError::InvalidSpec(_) => Some(REASON_INVALID_SPEC),
            FunctionError::Read { .. } | FunctionError::Status { .. } | FunctionError::Delete { .. } => None,
        }
    }
}

/// Renders an error and its sources on one line, for conditions, events and logs.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error() -> kube::Error {
        kube::Error::Api(
            serde_json::from_value(
                serde_json::json!({ "code": 500, "message": "boom", "status": "Failure" }),
            )
            .expect("status"),
        )
    }

    #[test]
    fn each_error_keeps_the_reason_it_reports() {
        let apply = |kind| FunctionError::Apply {
            kind,
            name: "f".into(),
            source: api_error(),
        };
        assert_eq!(apply(Child::Service).condition_reason(), Some("RoutesFailed"));
        assert_eq!(apply(Child::Deployment).condition_reason(), Some("ApplyFailed"));
        let read = FunctionError::ReadChild {
            kind: Child::Service,
            namespace: "ns".into(),
            name: "f".into(),
            source: api_error(),
        };
        assert_eq!(read.condition_reason(), Some("RoutesFailed"));
        assert_eq!(read.metric_reason(), "read");
        assert!(read.to_string().starts_with("cannot read Service ns/f"), "{read}");
        let not_owned = FunctionError::NotOwned {
            kind: Child::Deployment,
            name: "f".into(),
        };
        assert_eq!(not_owned.condition_reason(), Some("NotOwned"));
        assert_eq!(
            not_owned.to_string(),
            "Deployment f exists and is not controlled by this Function"
        );
        let invalid = FunctionError::InvalidSpec(ValidationError::EmptyImage);
        assert_eq!(invalid.condition_reason(), Some("InvalidSpec"));
        let status = FunctionError::Status {
            name: "f".into(),
            source: api_error(),
        };
        assert_eq!(status.condition_reason(), None);
        assert_eq!(status.metric_reason(), "status");
    }
}
