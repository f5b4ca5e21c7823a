//! Errors of one reconciliation (of a Function or a Trigger).

use crate::validate::ValidationError;

/// Why a reconciliation failed; the controller retries with back-off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A child object could not be applied.
    #[error("cannot apply {kind} {name}")]
    Apply {
        /// Kind of the child.
        kind: &'static str,
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
    /// A Trigger's status could not be written.
    #[error("cannot write the status of trigger {name}")]
    TriggerStatus {
        /// The Trigger.
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
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The spec is invalid (reported in the status; retried only when the Function changes).
    #[error("invalid spec")]
    InvalidSpec(#[source] ValidationError),
}

impl Error {
    /// A short label for the `reason` of the error metric.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            Error::Apply { .. } => "apply",
            Error::Read { .. } => "read",
            Error::Status { .. } | Error::TriggerStatus { .. } => "status",
            Error::NotOwned { .. } => "not_owned",
            Error::InvalidSpec(_) => "invalid_spec",
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
