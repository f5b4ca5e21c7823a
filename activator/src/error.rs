//! Every way a request can fail in the activator, and the one place where failures become HTTP
//! responses: a status code and a short plain-text body.

use std::io;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::{body::ResponseBody, headers::X_REQUEST_ID, host::HostError, upstream::UpstreamError};

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
        /// Which limit: `queue-max-requests`, `queue-max-bytes` or `buffer-memory-limit`.
        limit: &'static str,
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
            Self::StartupFailed { .. } | Self::QueueFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout(_) | Self::ResponseStartTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream { .. } | Self::Lost { .. } => StatusCode::BAD_GATEWAY,
            Self::RequestBody(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The `reason` label of `zeroscale_activator_rejections_total` when this error rejects a request
    /// that was buffered or about to be, or `None` for other errors.
    pub fn rejection_reason(&self) -> Option<&'static str> {
        match self {
            Self::QueueFull { limit, .. } => Some(limit),
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
            | Self::QueueFull { .. }
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

    /// The plain-text response for this error. It carries an [`ErrorReport`] that
    /// [`with_request_id`] turns into the final body (request id added) and a log line.
    pub fn into_response(self) -> Response<ResponseBody> {
        let status = self.status();
        let retry_after = matches!(self, Self::QueueFull { .. });
        let public = self.public_message();
        let mut response = Response::new(ResponseBody::text(Bytes::from(format!("{public}\n"))));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response.extensions_mut().insert(ErrorReport {
            public,
            detail: self.detail(),
        });
        response
    }
}

/// An error answer on its way out: the text for the client and the detail for the log.
#[derive(Clone, Debug)]
pub struct ErrorReport {
    /// The client's text, without the request id.
    pub public: String,
    /// The full error.
    pub detail: String,
}

/// Finishes an answer for the request `request_id`: an error answer written by the activator
/// ([`ProxyError::into_response`]) gets the id in its body and `x-request-id` header, and its detail
/// is logged with the same id. Other answers pass unchanged.
pub fn with_request_id(
    mut response: Response<ResponseBody>,
    request_id: &HeaderValue,
) -> Response<ResponseBody> {
    let Some(report) = response.extensions_mut().remove::<ErrorReport>() else {
        return response;
    };
    let id = request_id.to_str().unwrap_or_default();
    let status = response.status().as_u16();
    if response.status().is_server_error() {
        tracing::info!(request_id = id, status, error = %report.detail, "request failed");
    } else {
        tracing::debug!(request_id = id, status, error = %report.detail, "request refused");
    }
    *response.body_mut() = ResponseBody::text(Bytes::from(format!("{}\nrequest id: {id}\n", report.public)));
    response.headers_mut().insert(&X_REQUEST_ID, request_id.clone());
    response
}

/// At most 256 characters of a client-supplied host, so an answer never grows with the input.
fn clip(text: &str) -> &str {
    match text.char_indices().nth(256) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The kind of an upstream failure, in words that hold no address.
fn upstream_kind(error: &UpstreamError) -> &'static str {
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
        UpstreamError::H2c(_) => "the HTTP/2 exchange failed",
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod leak_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_the_spec() {
        assert_eq!(ProxyError::UnknownFunction("x".into()).status(), 404);
        assert_eq!(ProxyError::FunctionDeleted("x".into()).status(), 404);
        assert_eq!(ProxyError::Timeout("x".into()).status(), 504);
        assert_eq!(ProxyError::Host(HostError::Missing).status(), 400);
        let full = ProxyError::QueueFull {
            function: "ns/f".into(),
            limit: "queue-max-requests",
        };
        let response = full.into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let failed = ProxyError::StartupFailed {
            function: "ns/f".into(),
            reason: "ImagePullBackOff".into(),
            message: "no such image".into(),
        };
        assert!(failed.to_string().contains("ImagePullBackOff"));
        assert_eq!(failed.status(), 503);
    }
}
