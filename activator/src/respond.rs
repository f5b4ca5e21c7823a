//! The one place where the activator's own failures become HTTP responses: a status code, a short
//! plain-text body naming the function and the failure, and a log line with the full detail under the
//! request's id.

use bytes::Bytes;
use http::{HeaderValue, Response, header};

use crate::{body::ResponseBody, error::ProxyError, headers::X_REQUEST_ID};

impl ProxyError {
    /// The plain-text response for this error. It carries an [`ErrorReport`] that
    /// [`with_request_id`] turns into the final body (request id added) and a log line.
    pub fn into_response(self) -> Response<ResponseBody> {
        let status = self.status();
        let retry_after = match &self {
            Self::QueueFull { retry_after, .. } | Self::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        let public = self.public_message();
        let mut response = Response::new(ResponseBody::text(Bytes::from(format!("{public}\n"))));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
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

#[cfg(test)]
#[path = "respond_tests.rs"]
mod leak_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostError;

    #[test]
    fn statuses_match_the_spec() {
        assert_eq!(ProxyError::UnknownFunction("x".into()).status(), 404);
        assert_eq!(ProxyError::FunctionDeleted("x".into()).status(), 404);
        assert_eq!(ProxyError::Timeout("x".into()).status(), 504);
        assert_eq!(ProxyError::Host(HostError::Missing).status(), 400);
        let full = ProxyError::QueueFull {
            function: "ns/f".into(),
            limit: "queue-max-requests",
            retry_after: 1,
        };
        let response = full.into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        // The header carries the computed drain time, not a constant.
        let throttled = ProxyError::Throttled {
            function: "ns/f".into(),
            limit: "maxConcurrency",
            retry_after: 7,
        };
        let response = throttled.into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        let failed = ProxyError::StartupFailed {
            function: "ns/f".into(),
            reason: "ImagePullBackOff".into(),
            message: "no such image".into(),
        };
        assert!(failed.to_string().contains("ImagePullBackOff"));
        assert_eq!(failed.status(), 503);
    }
}
