//! Asynchronous invocation on the request path (`docs/eventing.md`, "Asynchronous invocation"): a
//! request with `Prefer: respond-async` to a function's URL is stored in the event store and answered
//! 202 with its invocation id; the store's worker runs it later through this activator's in-cluster
//! port (`zeroscale_eventing::async_invocation`). The proxy calls [`AsyncInvoker::accept`] once it
//! resolved the function; [`functions`] keeps each Function's `spec.async`.

pub mod functions;

use std::{sync::Arc, time::SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use zeroscale_common::signals::FunctionKey;
use zeroscale_eventing::{
    async_invocation::{
        Accepted, AsyncFunctions, Invocation, InvocationStore,
        prefer::{self, PREFER},
    },
    broker::PublishError,
};

use crate::{body::ResponseBody, client_body::ClientBody, headers::strip_hop_by_hop};

/// Default largest body of an async invocation (`--async-max-body-bytes`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The request header whose value de-duplicates async invocations.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 256;

/// Accepts async invocations into the store.
pub struct AsyncInvoker {
    store: Arc<dyn InvocationStore>,
    functions: AsyncFunctions,
    max_body: usize,
}

impl std::fmt::Debug for AsyncInvoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncInvoker")
            .field("store", &self.store.name())
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

/// A request refused before it was stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    /// The body is over the limit.
    #[error("async invocation body over {0} bytes (--async-max-body-bytes)")]
    TooLarge(usize),
    /// A header cannot be stored faithfully.
    #[error("header {0} is not visible ASCII and cannot be stored for an async invocation")]
    Header(String),
    /// The `Idempotency-Key` is unusable.
    #[error("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters")]
    IdempotencyKey,
    /// The body could not be read.
    #[error("cannot read the request body: {0}")]
    Body(String),
    /// The store did not take it.
    #[error("{0}")]
    Store(String),
}

impl Refused {
    fn status(&self) -> StatusCode {
        match self {
            Refused::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refused::Header(_) | Refused::IdempotencyKey | Refused::Body(_) => StatusCode::BAD_REQUEST,
            Refused::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Whether `request` asks to be run asynchronously.
pub fn wants_async<B>(request: &Request<B>) -> bool {
    prefer::prefers_async(request.headers())
}

impl AsyncInvoker {
    /// An invoker storing into `store`, registering invoked functions in `functions` (so the
    /// JetStream store runs a consumer for them), refusing bodies over `max_body` bytes.
    pub fn new(store: Arc<dyn InvocationStore>, functions: AsyncFunctions, max_body: usize) -> Self {
        Self {
            store,
            functions,
            max_body,
        }
    }

    /// Stores `request` for `function` and answers 202, or says why not.
    pub async fn accept(
        &self,
        function: FunctionKey,
        request: Request<ClientBody>,
    ) -> Response<ResponseBody> {
        match self.store_request(function, request).await {
            Ok(accepted) => accepted_response(&accepted),
            Err(refused) => {
                tracing::debug!(error = %refused, "async invocation refused");
                let mut response = Response::new(ResponseBody::text(Bytes::from(format!("{refused}\n"))));
                *response.status_mut() = refused.status();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                response
            }
        }
    }

    async fn store_request(
        &self,
        function: FunctionKey,
        request: Request<ClientBody>,
    ) -> Result<Accepted, Refused> {
        let (parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body as u64) {
            return Err(Refused::TooLarge(self.max_body));
        }
        let body = match Limited::new(body, self.max_body).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(Refused::TooLarge(self.max_body));
            }
            Err(e) => return Err(Refused::Body(e.to_string())),
        };
        let idempotency_key = idempotency_key(&parts.headers)?;
        let headers = end_to_end(&parts.headers)?;
        let invocation = Invocation {
            id: uuid::Uuid::new_v4().to_string(),
            function,
            method: parts.method,
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
            headers,
            body,
            accepted: SystemTime::now(),
            idempotency_key,
        };
        self.functions.ensure(&invocation.function);
        self.store
            .append(invocation)
            .await
            .map_err(|e| Refused::Store(describe(self.store.name(), &e)))
    }
}

fn describe(store: &str, error: &PublishError) -> String {
    match error {
        PublishError::StoreUnavailable { .. } => error.to_string(),
        other => format!("event store {store} cannot take the async invocation: {other}"),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Refused> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| Refused::IdempotencyKey)?.trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(Refused::IdempotencyKey);
    }
    Ok(Some(key.to_string()))
}

/// The headers to replay: without hop-by-hop ones, `Host`, `Content-Length` (the replay sets its
/// own) and the `respond-async` preference.
fn end_to_end(headers: &HeaderMap) -> Result<HeaderMap, Refused> {
    let mut kept = headers.clone();
    strip_hop_by_hop(&mut kept, false);
    kept.remove(header::HOST);
    kept.remove(header::CONTENT_LENGTH);
    kept.remove(PREFER);
    if let Some(rest) = prefer::without_async(headers) {
        kept.insert(PREFER, rest);
    }
    if let Some((name, _)) = kept.iter().find(|(_, v)| v.to_str().is_err()) {
        return Err(Refused::Header(name.to_string()));
    }
    Ok(kept)
}

fn accepted_response(accepted: &Accepted) -> Response<ResponseBody> {
    let body = serde_json::json!({ "id": accepted.id, "duplicate": accepted.duplicate });
    let mut response = Response::new(ResponseBody::text(Bytes::from(format!("{body}\n"))));
    *response.status_mut() = StatusCode::ACCEPTED;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        "preference-applied",
        HeaderValue::from_static(prefer::RESPOND_ASYNC),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("urn:uuid:{}", accepted.id)) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(id) = HeaderValue::from_str(&accepted.id) {
        headers.insert("zeroscale-invocation-id", id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(n.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        map
    }

    #[test]
    fn replayed_headers_lose_hop_by_hop_host_length_and_respond_async_only() {
        let kept = end_to_end(&headers(&[
            ("host", "f.ns.example.com"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("content-length", "7"),
            ("prefer", "respond-async, return=minimal"),
            ("content-type", "text/plain"),
            ("idempotency-key", "k"),
        ]))
        .expect("storable");
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert_eq!(kept["content-type"], "text/plain");
        assert_eq!(kept["prefer"], "return=minimal");
        assert_eq!(kept["idempotency-key"], "k");
    }

    #[test]
    fn a_header_that_is_not_ascii_is_refused_by_name() {
        let mut map = HeaderMap::new();
        map.insert(
            "x-name",
            HeaderValue::from_bytes(b"caf\xc3\xa9").expect("obs-text"),
        );
        assert_eq!(end_to_end(&map), Err(Refused::Header("x-name".into())));
    }

    #[test]
    fn idempotency_keys_are_trimmed_and_bounded() {
        assert_eq!(idempotency_key(&headers(&[])), Ok(None));
        assert_eq!(
            idempotency_key(&headers(&[("idempotency-key", " order-7 ")])),
            Ok(Some("order-7".into()))
        );
        let long = "k".repeat(MAX_IDEMPOTENCY_KEY + 1);
        assert_eq!(
            idempotency_key(&headers(&[("idempotency-key", &long)])),
            Err(Refused::IdempotencyKey)
        );
    }

    #[test]
    fn the_202_names_the_invocation_and_the_applied_preference() {
        let response = accepted_response(&Accepted {
            id: "4f1c".into(),
            duplicate: false,
        });
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()["location"], "urn:uuid:4f1c");
        assert_eq!(response.headers()["preference-applied"], "respond-async");
        assert_eq!(response.headers()["zeroscale-invocation-id"], "4f1c");
    }

    #[test]
    fn refusals_map_to_413_400_and_503() {
        assert_eq!(Refused::TooLarge(1).status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(Refused::IdempotencyKey.status(), StatusCode::BAD_REQUEST);
        let unavailable = PublishError::StoreUnavailable {
            store: "jetstream",
            reason: "not connected".into(),
        };
        let refused = Refused::Store(describe("jetstream", &unavailable));
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            refused.to_string().contains("event store jetstream unavailable"),
            "{refused}"
        );
    }
}
