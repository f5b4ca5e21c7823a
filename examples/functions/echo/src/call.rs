//! `/call?url=<http-url>`: a tiny in-pod client, so end-to-end tests can prove that one function reaches
//! another by its in-cluster name (`http://<fn>.<ns>.svc`, Knative's `TestSvcToSvcViaActivator`).
//!
//! The answer is `200` with JSON `{"url", "status", "body"}` (the callee's status and body, the body as
//! JSON when it parses) once the callee answered, whatever its status; `502` with a plain-text reason
//! when the call itself failed; `400` when `url` is missing or not `http://`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Response, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::handler::Body;

/// Longest a call may take: long enough for the callee's cold start.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors of a `/call` request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallError {
    /// No `url` parameter.
    #[error("missing url parameter")]
    MissingUrl,
    /// The URL is not a plain `http://` URL (or is badly escaped).
    #[error("not an http:// url: {0:?}")]
    BadUrl(String),
}

/// The `url` parameter of the query string, percent-decoded; only `http://` URLs are accepted.
pub fn target_url(query: Option<&str>) -> Result<String, CallError> {
    let raw = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("url="))
        .ok_or(CallError::MissingUrl)?;
    let url = percent_decode(raw).ok_or_else(|| CallError::BadUrl(raw.to_string()))?;
    let valid =
        url.strip_prefix("http://").is_some_and(|rest| !rest.is_empty()) && url.parse::<hyper::Uri>().is_ok();
    if valid {
        Ok(url)
    } else {
        Err(CallError::BadUrl(url))
    }
}

/// Decodes `%XX` escapes (and `+` as a space); `None` for a bad escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                let hex = std::str::from_utf8(&hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
            }
            b'+' => out.push(b' '),
            _ => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

fn plain(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    response
}

/// Handles `/call`: `GET url` and reports what came back.
pub async fn call(query: Option<&str>) -> Response<Body> {
    let url = match target_url(query) {
        Ok(url) => url,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let exchange = async {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
        let response = client.get(uri).await.map_err(|e| format!("{e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the body: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    let (status, body) = match tokio::time::timeout(CALL_TIMEOUT, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return plain(StatusCode::BAD_GATEWAY, format!("call to {url} failed: {e}\n")),
        Err(_) => {
            let reason = format!("call to {url} timed out after {CALL_TIMEOUT:?}\n");
            return plain(StatusCode::BAD_GATEWAY, reason);
        }
    };
    let body = serde_json::from_slice::<serde_json::Value>(&body)
        .unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)));
    let doc = json!({ "url": url, "status": status, "body": body });
    let mut response = Response::new(Full::new(Bytes::from(format!("{doc}\n"))).boxed());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_decodes_the_url() {
        assert_eq!(
            target_url(Some("x=1&url=http://b.ns.svc/p?q")),
            Ok("http://b.ns.svc/p?q".to_string())
        );
        assert_eq!(
            target_url(Some("url=http%3A%2F%2Fb.ns.svc%2F%3Fsleep%3D5")),
            Ok("http://b.ns.svc/?sleep=5".to_string())
        );
    }

    #[test]
    fn rejects_missing_or_foreign_urls() {
        assert_eq!(target_url(None), Err(CallError::MissingUrl));
        assert_eq!(target_url(Some("sleep=1")), Err(CallError::MissingUrl));
        assert!(matches!(
            target_url(Some("url=https://x/")),
            Err(CallError::BadUrl(_))
        ));
        assert!(matches!(
            target_url(Some("url=http://")),
            Err(CallError::BadUrl(_))
        ));
        assert!(matches!(target_url(Some("url=%zz")), Err(CallError::BadUrl(_))));
    }
}
