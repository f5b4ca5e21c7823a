//! A small HTTP/1.1 client for tests (plain `http://` only, which is all the local cluster serves).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Default time limit of one request, including reading the body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors from an HTTP request.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request could not be built (bad URL, method or header).
    #[error("bad request: {0}")]
    Build(#[from] http::Error),
    /// Connecting or sending failed.
    #[error("request to {url} failed: {source}")]
    Send {
        /// The URL.
        url: String,
        /// What went wrong.
        source: hyper_util::client::legacy::Error,
    },
    /// Reading the body failed.
    #[error("reading the body from {url} failed: {source}")]
    Body {
        /// The URL.
        url: String,
        /// What went wrong.
        source: hyper::Error,
    },
    /// No complete answer in time.
    #[error("request to {url} timed out after {timeout:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The limit.
        timeout: Duration,
    },
}

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, as bytes.
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// `GET url` with [`DEFAULT_TIMEOUT`].
pub async fn http_get(url: &str) -> Result<HttpResponse, HttpError> {
    http_request(Method::GET, url, &[], Bytes::new(), DEFAULT_TIMEOUT).await
}

/// Sends one request (a fresh connection each time, so tests see every pod they target) and reads the
/// whole response within `timeout`.
pub async fn http_request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
    timeout: Duration,
) -> Result<HttpResponse, HttpError> {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(body.into()))?;
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let exchange = async {
        let response = client.request(request).await.map_err(|source| HttpError::Send {
            url: url.to_string(),
            source,
        })?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|source| HttpError::Body {
                url: url.to_string(),
                source,
            })?
            .to_bytes();
        Ok(HttpResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(HttpError::Timeout {
            url: url.to_string(),
            timeout,
        }),
    }
}
