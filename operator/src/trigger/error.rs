//! Errors of a Trigger reconciliation.
//!
//! None of them sets a condition: what is wrong with a Trigger's spec or with what it names is a
//! [`super::check::Problem`] in its status (reasons `TRIGGER_REASON_*`), not an error. These are the
//! failures of the API calls around it, retried with back-off.

/// Why a Trigger reconciliation failed; the controller retries with back-off.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The Trigger has no name or namespace (never true for objects read from the API server).
    #[error("the trigger has no {0}")]
    MissingMetadata(&'static str),
    /// A Function it names, or API discovery of the kind it watches, could not be read.
    #[error("cannot read {what}")]
    Read {
        /// What was being read.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The status could not be written.
    #[error("cannot write the status of trigger {name}")]
    Status {
        /// The Trigger.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

impl TriggerError {
    /// A short label for the `reason` of the error metric.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            TriggerError::MissingMetadata(_) => "invalid_spec",
            TriggerError::Read { .. } => "read",
            TriggerError::Status { .. } => "status",
        }
    }

    /// The reason of the condition this error sets: none (see the module's documentation), so a
    /// failed look-up never overwrites what the status last said.
    pub fn condition_reason(&self) -> Option<&'static str> {
        None
    }
}
