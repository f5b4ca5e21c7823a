//! Every way a request can fail in the activator, and the one place where failures become HTTP
//! responses: a status code and a short plain-text body.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::{body::ResponseBody, host::HostError};

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
        source: crate::upstream::UpstreamError,
    },
    /// The pod went away after the request reached it and before it answered, and the request could
    /// not be sent again (not idempotent, or its body was streamed).
    #[error("function {function} lost the request: {kind} (request id {request_id})")]
    Lost {
        /// `<namespace>/<name>`.
        function: String,
        /// What happened, in words that name no address.
        kind: &'static str,
        /// The request's `X-Request-Id`, to find the log line.
        request_id: String,
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

    /// The plain-text response for this error.
    pub fn into_response(self) -> Response<ResponseBody> {
        let status = self.status();
        let retry_after = matches!(self, Self::QueueFull { .. });
        let mut response = Response::new(ResponseBody::text(Bytes::from(format!("{self}\n"))));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

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
