//! The broker ingress: `POST /<namespace>` with a CloudEvent (1.0 or 0.3, binary or structured HTTP
//! mode). Answers, each with a plain-text reason when not 202:
//!
//! | Status | When |
//! |---|---|
//! | 202 | accepted: stored by the event store (for JetStream: acknowledged), which now owns delivery |
//! | 400 | not a valid CloudEvent (missing or empty `id`/`source`/`type`/`specversion`, unknown `specversion`, bad JSON, bad attribute) |
//! | 401 | with authentication on: no bearer token, or one that is invalid, expired or not for the audience `zeroscale-broker` |
//! | 403 | with authentication on: the caller may not `create` `brokers.zeroscale.dev` in the namespace |
//! | 404 | the path is not `/<namespace>` with a valid namespace name, or the namespace has no broker Trigger |
//! | 405 | any method but `POST` (with `Allow: POST`) |
//! | 413 | the body is larger than the limit |
//! | 415 | batched mode (`application/cloudevents-batch+json`), which is not supported |
//! | 503 | the broker is full or the event store unreachable (with `Retry-After`), or shutting down, or the caller cannot be verified now |
//!
//! Every answer but 202 carries the request id (`x-request-id`, taken from the request or generated)
//! in its body and headers, and the rejection is logged with it.

use std::sync::Arc;

use axum::{
    Router,
    body::{Body, to_bytes},
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::post,
};
use cloudevents::{AttributesReader, Event};

use crate::{
    auth::{BrokerAuth, Denied},
    broker::PublishError,
    metrics::EventMetrics,
    reply::stamp_ttl,
    store::EventStore,
};
// The tests implement the in-memory `Publish`, an `EventStore` through the blanket impl.
#[cfg(test)]
use crate::broker::Publish;

/// Largest body the ingress accepts by default (Knative's brokers have no smaller limit; 256 KiB
/// matches common cloud event buses).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 * 1024;

/// Settings of the ingress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressConfig {
    /// Largest accepted body.
    pub max_event_bytes: usize,
    /// Seconds a client is told to wait (`Retry-After`) when the broker is full.
    pub retry_after_seconds: u32,
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            retry_after_seconds: 1,
        }
    }
}

struct IngressState {
    broker: Arc<dyn EventStore>,
    config: IngressConfig,
    metrics: EventMetrics,
    auth: Option<Arc<BrokerAuth>>,
}

/// The request id header, echoed on every answer but 202.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The ingress router, to be served on the broker port. With `auth`, every event needs a bearer
/// token that `auth` accepts for the event's namespace ([`crate::auth`]).
pub fn router(
    broker: Arc<dyn EventStore>,
    config: IngressConfig,
    metrics: EventMetrics,
    auth: Option<Arc<BrokerAuth>>,
) -> Router {
    let state = Arc::new(IngressState {
        broker,
        config,
        metrics,
        auth,
    });
    let not_allowed_state = state.clone();
    let not_found_state = state.clone();
    Router::new()
        .route(
            "/{namespace}",
            post(accept)
                .fallback(move || async move { reject(&not_allowed_state, Rejection::MethodNotAllowed) }),
        )
        .fallback(move || async move { reject(&not_found_state, Rejection::NotFound) })
        .with_state(state)
        .layer(middleware::from_fn(request_id))
}

/// The request id of a request: its `x-request-id` when it has a usable one (printable, at most 128
/// bytes), else a new one (32 hex digits).
pub fn request_id_of(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(&X_REQUEST_ID)
        .filter(|v| v.len() <= 128 && v.to_str().is_ok_and(|s| !s.is_empty()))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string())
                .unwrap_or(HeaderValue::from_static("0"))
        })
}

/// Gives every error answer the request id, in its headers and as the last line of its body.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request_id_of(request.headers());
    // The handler logs with the same id.
    request.headers_mut().insert(&X_REQUEST_ID, id.clone());
    let response = next.run(request).await;
    if response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Error bodies are one line of text written here; the bound only guards against surprises.
    let mut text = to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("request id: ");
    text.push_str(id.to_str().unwrap_or_default());
    text.push('\n');
    parts.headers.insert(&X_REQUEST_ID, id);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(text))
}

/// Why the ingress refused a request.
#[derive(Debug, thiserror::Error)]
enum Rejection {
    #[error("{0}")]
    Malformed(String),
    #[error("not found: the broker ingress accepts POST /<namespace>")]
    NotFound,
    #[error("not found: namespace {0} has no broker (no Trigger with a broker source)")]
    NoBroker(String),
    #[error("{0}")]
    Denied(Denied),
    #[error("method not allowed: the broker ingress accepts POST only")]
    MethodNotAllowed,
    #[error("event body larger than {0} bytes")]
    TooLarge(usize),
    #[error("batched mode (application/cloudevents-batch+json) is not supported; send one event per request")]
    Batch,
    #[error("{0}")]
    Unavailable(PublishError),
}

impl Rejection {
    fn status(&self) -> StatusCode {
        match self {
            Rejection::Malformed(_) => StatusCode::BAD_REQUEST,
            Rejection::NotFound | Rejection::NoBroker(_) => StatusCode::NOT_FOUND,
            Rejection::Denied(Denied::Missing | Denied::Invalid) => StatusCode::UNAUTHORIZED,
            Rejection::Denied(Denied::Forbidden { .. }) => StatusCode::FORBIDDEN,
            Rejection::Denied(Denied::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::TooLarge(_) | Rejection::Unavailable(PublishError::TooLarge(_)) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Rejection::Batch => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `reason` label of `zeroscale_events_rejected_total`.
    fn reason(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::NotFound | Rejection::NoBroker(_) => "not_found",
            Rejection::Denied(Denied::Missing | Denied::Invalid) => "unauthenticated",
            Rejection::Denied(Denied::Forbidden { .. }) => "forbidden",
            Rejection::Denied(Denied::Unavailable) => "auth_unavailable",
            Rejection::MethodNotAllowed => "method_not_allowed",
            Rejection::TooLarge(_) | Rejection::Unavailable(PublishError::TooLarge(_)) => "too_large",
            Rejection::Batch => "batch_unsupported",
            Rejection::Unavailable(PublishError::Full) => "overloaded",
            Rejection::Unavailable(PublishError::ShuttingDown) => "shutting_down",
            Rejection::Unavailable(PublishError::StoreUnavailable { .. }) => "store_unavailable",
        }
    }
}

fn reject(state: &IngressState, rejection: Rejection) -> Response {
    state.metrics.rejected(rejection.reason());
    let mut response = (rejection.status(), format!("{rejection}\n")).into_response();
    let headers = response.headers_mut();
    match rejection {
        Rejection::MethodNotAllowed => {
            headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        Rejection::Denied(Denied::Missing | Denied::Invalid) => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"zeroscale-broker\""),
            );
        }
        Rejection::Unavailable(PublishError::Full | PublishError::StoreUnavailable { .. })
        | Rejection::Denied(Denied::Unavailable) => {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(state.config.retry_after_seconds),
            );
        }
        _ => {}
    }
    response
}

async fn accept(
    State(state): State<Arc<IngressState>>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match accept_event(&state, &namespace, &headers, body).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(rejection) => {
            let request_id = request_id_of(&headers);
            let request_id = request_id.to_str().unwrap_or_default();
            tracing::info!(%namespace, request_id, reason = rejection.reason(), error = %rejection, "event rejected");
            reject(&state, rejection)
        }
    }
}

async fn accept_event(
    state: &IngressState,
    namespace: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), Rejection> {
    if !is_namespace_name(namespace) {
        return Err(Rejection::NotFound);
    }
    // Authenticate before saying whether the namespace has a broker, so an anonymous caller learns
    // nothing about which namespaces use eventing.
    if let Some(auth) = &state.auth {
        let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        auth.check(authorization, namespace)
            .await
            .map_err(Rejection::Denied)?;
    }
    if !state.broker.has_broker(namespace) {
        return Err(Rejection::NoBroker(namespace.to_string()));
    }
    let limit = state.config.max_event_bytes;
    // Refuse early on a declared length, without reading the body.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(Rejection::TooLarge(limit));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/cloudevents-batch")
    {
        return Err(Rejection::Batch);
    }
    let body = to_bytes(body, limit)
        .await
        .map_err(|_| Rejection::TooLarge(limit))?;
    let size = body.len()
        + headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum::<usize>();
    let mut event = parse(headers, body.to_vec())?;
    stamp_ttl(&mut event);
    state
        .broker
        .append(namespace, event, size)
        .await
        .map_err(Rejection::Unavailable)
}

/// Decodes a CloudEvent from a request, with a reason a client can act on when it is not one.
pub fn parse(headers: &HeaderMap, body: Vec<u8>) -> Result<Event, ParseError> {
    let structured = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/cloudevents+json")
        });
    if !structured && !headers.contains_key("ce-specversion") {
        return Err(ParseError(
            "not a cloudevent: binary mode needs a ce-specversion header, structured mode a content-type of application/cloudevents+json".into(),
        ));
    }
    let event = cloudevents::binding::http::to_event(headers, body)
        .map_err(|e| ParseError(format!("malformed cloudevent: {}", e.to_string().to_lowercase())))?;
    for (name, value) in [
        ("id", event.id()),
        ("type", event.ty()),
        ("source", event.source().as_str()),
    ] {
        if value.is_empty() {
            return Err(ParseError(format!(
                "malformed cloudevent: attribute {name} must not be empty"
            )));
        }
    }
    Ok(event)
}

/// A request that does not carry a valid CloudEvent; the message is the reason sent to the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ParseError(pub String);

impl From<ParseError> for Rejection {
    fn from(error: ParseError) -> Self {
        Rejection::Malformed(error.0)
    }
}

/// Whether `name` is a valid namespace name (a DNS-1123 label).
fn is_namespace_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
#[path = "ingress_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "ingress_auth_tests.rs"]
mod auth_tests;
