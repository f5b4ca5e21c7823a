//! Every way a request can fail in the activator, with its status code and the words the client and
//! the log get for it. [`crate::respond`] turns these into responses.

use std::io;

use http::StatusCode;

use crate::{
    host::HostError,
    upstream::{UpstreamError, h1::H1Error},
};

/// Why the activator answers a request itself instead of with a pod's response.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The `Host` is missing or malformed.
    #[error("{0}")]
    Host(#[from] HostError),
    /// No function is known for the host (or it is cluster-local and the request came in externally).
    #[error("no function for host {0:?}")]
    UnknownFunction(String),
    /// The function was deleted while the request waited.
    #[error("function {0} was deleted")]
    FunctionDeleted(String),
    /// The routing-table entry the request waited in was replaced by another of the same Function (its
    /// first revision took over from the Function's own entry, or a revision stopped being routed
    /// to). The proxy routes the request again ([`crate::proxy`]); a client only sees this when
    /// routing kept changing under it.
    #[error("function {0} changed its revisions while the request waited")]
    Rerouted(String),
    /// The function cannot start; the reason comes from its `Ready` condition.
    #[error("function {function} failed to start: {reason}: {message}")]
    StartupFailed {
        /// `<namespace>/<name>`.
        function: String,
        /// Condition reason.
        reason: String,
        /// Condition message.
        message: String,
    },
    /// The function's queue or the global buffer is full.
    #[error("too many requests waiting for function {function} ({limit})")]
    QueueFull {
        /// `<namespace>/<name>`.
        function: String,
        /// Which limit: `maxQueued`, `queue-max-requests`, `queue-max-bytes` or `buffer-memory-limit`.
        limit: &'static str,
        /// Seconds until the requests ahead would drain at the observed rate.
        retry_after: u64,
    },
    /// The function's `maxConcurrency` is reached and its queue is full, or its namespace's share of
    /// the buffer is used up.
    #[error("too many requests for function {function} ({limit}); retry after {retry_after}s")]
    Throttled {
        /// `<namespace>/<name>`.
        function: String,
        /// Which limit: `maxConcurrency` or `namespace-buffer-memory-limit`.
        limit: &'static str,
        /// Seconds until the requests ahead would drain at the observed rate.
        retry_after: u64,
    },
    /// `timeoutSeconds` passed, queue time included, before the pod answered.
    #[error("function {0} did not answer within its timeout")]
    Timeout(String),
    /// `responseStartTimeoutSeconds` passed before the response head.
    #[error("function {0} did not start its response in time")]
    ResponseStartTimeout(String),
    /// The pod could not be reached or broke the connection before the response head.
    #[error("cannot reach function {function}: {source}")]
    Upstream {
        /// `<namespace>/<name>`.
        function: String,
        /// What went wrong on the way to the pod.
        #[source]
        source: UpstreamError,
    },
    /// The pod went away after the request reached it and before it answered, and the request could
    /// not be sent again (not idempotent, or its body was streamed).
    #[error("function {function} lost the request: {kind}")]
    Lost {
        /// `<namespace>/<name>`.
        function: String,
        /// What happened, in words that name no address.
        kind: &'static str,
    },
    /// The client's request body could not be read (it went away, or sent less than announced).
    #[error("the request body for function {0} could not be read")]
    RequestBody(String),
}

impl ProxyError {
    /// The status code this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Host(_) => StatusCode::BAD_REQUEST,
            Self::UnknownFunction(_) | Self::FunctionDeleted(_) => StatusCode::NOT_FOUND,
            Self::StartupFailed { .. } | Self::QueueFull { .. } | Self::Rerouted(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout(_) | Self::ResponseStartTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream { .. } | Self::Lost { .. } => StatusCode::BAD_GATEWAY,
            Self::RequestBody(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The `reason` label of `zeroscale_activator_rejections_total` when this error rejects a request
    /// that was buffered or about to be, or `None` for other errors.
    pub fn rejection_reason(&self) -> Option<&'static str> {
        match self {
            Self::QueueFull { limit, .. } | Self::Throttled { limit, .. } => Some(limit),
            Self::Timeout(_) => Some("timeout"),
            Self::StartupFailed { .. } => Some("startup-failed"),
            Self::FunctionDeleted(_) => Some("deleted"),
            _ => None,
        }
    }

    /// What the client is told: the function and the kind of failure. Never a pod address, a pod
    /// name or an error's source chain; those go to the log line carrying the same request id.
    pub fn public_message(&self) -> String {
        match self {
            Self::Host(HostError::Invalid(host)) => format!("invalid host {:?}", clip(host)),
            Self::UnknownFunction(host) => format!("no function for host {:?}", clip(host)),
            Self::StartupFailed { function, reason, .. } => {
                format!("function {function} failed to start: {reason}")
            }
            Self::Upstream { function, source } => {
                format!("cannot reach function {function}: {}", upstream_kind(source))
            }
            Self::Host(HostError::Missing)
            | Self::FunctionDeleted(_)
            | Self::Rerouted(_)
            | Self::QueueFull { .. }
            | Self::Throttled { .. }
            | Self::Timeout(_)
            | Self::ResponseStartTimeout(_)
            | Self::Lost { .. }
            | Self::RequestBody(_) => self.to_string(),
        }
    }

    /// Everything known about the failure, source chain included, for the log.
    pub fn detail(&self) -> String {
        let mut detail = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !detail.ends_with(&text) {
                detail.push_str(": ");
                detail.push_str(&text);
            }
            source = cause.source();
        }
        detail
    }
}

/// At most 256 characters of a client-supplied host, so an answer never grows with the input.
pub(crate) fn clip(text: &str) -> &str {
    match text.char_indices().nth(256) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The kind of an upstream failure, in words that hold no address.
pub(crate) fn upstream_kind(error: &UpstreamError) -> &'static str {
    match error {
        UpstreamError::Connect { source, .. } => match source.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused",
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => "connection reset",
            io::ErrorKind::TimedOut => "connect timed out",
            _ => "cannot connect",
        },
        UpstreamError::ConnectTimeout(_) => "connect timed out",
        UpstreamError::Http(e) if e.is_incomplete_message() => {
            "the connection closed before the response began"
        }
        UpstreamError::Http(e) if e.is_timeout() => "timed out",
        UpstreamError::Http(e) if e.is_parse() => "invalid response",
        UpstreamError::Http(_) => "the connection failed",
        UpstreamError::H1(H1Error::Closed | H1Error::Incomplete) => {
            "the connection closed before the response began"
        }
        UpstreamError::H1(H1Error::Head(_) | H1Error::Chunk(_)) => "invalid response",
        UpstreamError::H1(H1Error::Write(_) | H1Error::Read(_)) => "the connection failed",
        UpstreamError::H2c(_) => "the HTTP/2 exchange failed",
    }
}
