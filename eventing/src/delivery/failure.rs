//! Why one attempt failed, and whether that is worth another attempt.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;

use super::sender::SendError;
use crate::retry::is_retryable;

/// The failure of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The subscriber answered with a status that is not 2xx.
    Status {
        /// The status.
        status: StatusCode,
        /// The start of the answer's body.
        body: Bytes,
    },
    /// No answer within the per-attempt timeout.
    Timeout(Duration),
    /// The connection or the exchange failed.
    Transport(String),
    /// The sender cannot reach the target at all.
    Unsupported(String),
    /// The event could not be encoded for HTTP.
    Encoding(String),
}

impl Failure {
    /// Whether another attempt may succeed: transport errors, timeouts and the retryable statuses
    /// ([`is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => is_retryable(*status),
            Failure::Timeout(_) | Failure::Transport(_) => true,
            Failure::Unsupported(_) | Failure::Encoding(_) => false,
        }
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Failure::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A one-line description for logs and the dead-letter `zeroscaleerrordata` extension: the
    /// answer's body when it has one, otherwise what happened.
    pub fn describe(&self) -> String {
        match self {
            Failure::Status { status, body } if body.is_empty() => format!("http status {status}"),
            Failure::Status { body, .. } => String::from_utf8_lossy(body).into_owned(),
            Failure::Timeout(after) => format!("no answer within {after:?}"),
            Failure::Transport(e) => e.clone(),
            Failure::Unsupported(target) => format!("cannot send to {target}"),
            Failure::Encoding(e) => format!("cannot encode the event: {e}"),
        }
    }
}

impl From<SendError> for Failure {
    fn from(error: SendError) -> Self {
        match error {
            SendError::Transport(e) => Failure::Transport(e),
            SendError::ReplyTooLarge { status, limit } => Failure::Status {
                status,
                body: Bytes::from(format!("answer body over {limit} bytes")),
            },
            SendError::Unsupported(target) => Failure::Unsupported(target),
        }
    }
}
