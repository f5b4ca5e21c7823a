//! A stored asynchronous invocation: the request as it arrived (method, path and query, end-to-end
//! headers, body), kept in the event store as a CloudEvent of type [`REQUEST_TYPE`] so both stores
//! hold it like any event. The body is the event's binary data (`data_base64` once serialized).

use std::time::SystemTime;

use bytes::Bytes;
use cloudevents::{AttributesReader, Data, Event, EventBuilder, EventBuilderV10, event::ExtensionValue};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::Full;
use zeroscale_common::signals::FunctionKey;

use crate::delivery::SendError;

/// CloudEvent type of a stored invocation.
pub const REQUEST_TYPE: &str = "dev.zeroscale.async.request";

const NAMESPACE: &str = "zsnamespace";
const FUNCTION: &str = "zsfunction";
const METHOD: &str = "zsmethod";
const PATH: &str = "zspath";
const HEADERS: &str = "zsheaders";
const IDEMPOTENCY_KEY: &str = "zsidempotencykey";

/// The CloudEvent `source` of a Function's invocations and results.
pub fn source(function: &FunctionKey) -> String {
    format!(
        "/apis/zeroscale.dev/v1alpha1/namespaces/{}/functions/{}",
        function.namespace, function.name
    )
}

/// One asynchronous invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    /// The invocation id (a UUID), answered in the 202's `Location`.
    pub id: String,
    /// The Function invoked.
    pub function: FunctionKey,
    /// The request's method.
    pub method: Method,
    /// The request's path and query.
    pub path: String,
    /// The request's end-to-end headers (hop-by-hop ones and `respond-async` already removed).
    pub headers: HeaderMap,
    /// The request's body.
    pub body: Bytes,
    /// When the store accepted it; `maxEventAge` counts from here.
    pub accepted: SystemTime,
    /// The caller's `Idempotency-Key`, if any.
    pub idempotency_key: Option<String>,
}

/// Header telling the function which async invocation a request is.
pub const INVOCATION_ID_HEADER: &str = "zeroscale-invocation-id";

/// A stored event that is not an invocation this version can run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvocationError {
    /// An attribute is missing or unreadable.
    #[error("stored invocation has no valid {0}")]
    Missing(&'static str),
}

impl Invocation {
    /// The store's de-duplication key: `<namespace>/<function>/<Idempotency-Key>`, when there is one.
    pub fn dedup_key(&self) -> Option<String> {
        self.idempotency_key
            .as_ref()
            .map(|key| format!("{}/{}/{key}", self.function.namespace, self.function.name))
    }

    /// The request to replay, to `http://<authority><path>` with `Host: host` when given, and the
    /// invocation id in [`INVOCATION_ID_HEADER`].
    pub fn http_request(
        &self,
        authority: &str,
        host: Option<HeaderValue>,
    ) -> Result<http::Request<Full<Bytes>>, SendError> {
        let uri = format!("http://{authority}{}", self.path);
        let mut request = http::Request::builder()
            .method(self.method.clone())
            .uri(&uri)
            .body(Full::new(self.body.clone()))
            .map_err(|_| SendError::Unsupported(uri))?;
        *request.headers_mut() = self.headers.clone();
        if let Some(host) = host {
            request.headers_mut().insert(http::header::HOST, host);
        }
        if let Ok(id) = HeaderValue::from_str(&self.id) {
            request.headers_mut().insert(INVOCATION_ID_HEADER, id);
        }
        Ok(request)
    }

    /// The invocation as a CloudEvent.
    pub fn to_event(&self) -> Event {
        let headers: Vec<(&str, String)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let mut builder = EventBuilderV10::new()
            .id(self.id.clone())
            .source(source(&self.function))
            .ty(REQUEST_TYPE)
            .time(chrono_time(self.accepted))
            .extension(NAMESPACE, self.function.namespace.clone())
            .extension(FUNCTION, self.function.name.clone())
            .extension(METHOD, self.method.as_str().to_string())
            .extension(PATH, self.path.clone())
            .extension(HEADERS, serde_json::to_string(&headers).unwrap_or_default())
            .data("application/octet-stream", self.body.to_vec());
        if let Some(key) = &self.idempotency_key {
            builder = builder.extension(IDEMPOTENCY_KEY, key.clone());
        }
        // Every attribute a v1.0 event requires is set above.
        builder.build().unwrap_or_default()
    }

    /// Reads an invocation back from its CloudEvent.
    pub fn from_event(event: &Event) -> Result<Self, InvocationError> {
        let text = |name: &'static str| match event.extension(name) {
            Some(ExtensionValue::String(s)) => Ok(s.clone()),
            _ => Err(InvocationError::Missing(name)),
        };
        let method =
            Method::from_bytes(text(METHOD)?.as_bytes()).map_err(|_| InvocationError::Missing(METHOD))?;
        let pairs: Vec<(String, String)> =
            serde_json::from_str(&text(HEADERS)?).map_err(|_| InvocationError::Missing(HEADERS))?;
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| InvocationError::Missing(HEADERS))?;
            let value = HeaderValue::from_str(&value).map_err(|_| InvocationError::Missing(HEADERS))?;
            headers.append(name, value);
        }
        let body = match event.data() {
            Some(Data::Binary(b)) => Bytes::from(b.clone()),
            Some(Data::String(s)) => Bytes::from(s.clone()),
            Some(Data::Json(j)) => Bytes::from(j.to_string()),
            None => Bytes::new(),
        };
        let accepted = event
            .time()
            .map(|t| SystemTime::from(*t))
            .ok_or(InvocationError::Missing("time"))?;
        Ok(Self {
            id: event.id().to_string(),
            function: FunctionKey::new(text(NAMESPACE)?, text(FUNCTION)?),
            method,
            path: text(PATH)?,
            headers,
            body,
            accepted,
            idempotency_key: text(IDEMPOTENCY_KEY).ok(),
        })
    }
}

/// RFC 3339 with the sub-second digits, the form the event's `time` attribute takes.
fn chrono_time(at: SystemTime) -> String {
    jiff::Timestamp::try_from(at)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;

    pub(crate) fn invocation(key: Option<&str>) -> Invocation {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.append("x-tag", HeaderValue::from_static("a"));
        headers.append("x-tag", HeaderValue::from_static("b"));
        Invocation {
            id: "0b8f".into(),
            function: FunctionKey::new("shop", "orders"),
            method: Method::PUT,
            path: "/orders/7?dry=1".into(),
            headers,
            body: Bytes::from_static(b"\x00\xffbinary body"),
            accepted: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            idempotency_key: key.map(Into::into),
        }
    }

    #[test]
    fn an_invocation_survives_its_event_and_the_store_encoding() {
        let original = invocation(Some("k-1"));
        let event = original.to_event();
        assert_eq!(event.ty(), REQUEST_TYPE);
        assert_eq!(
            event.source().to_string(),
            "/apis/zeroscale.dev/v1alpha1/namespaces/shop/functions/orders"
        );
        let stored = serde_json::to_vec(&event).expect("encodes");
        let back: Event = serde_json::from_slice(&stored).expect("decodes");
        assert_eq!(Invocation::from_event(&back), Ok(original));
    }

    #[test]
    fn the_dedup_key_is_namespace_function_and_idempotency_key() {
        assert_eq!(
            invocation(Some("k-1")).dedup_key().as_deref(),
            Some("shop/orders/k-1")
        );
        assert_eq!(invocation(None).dedup_key(), None);
    }

    #[test]
    fn an_event_that_is_no_invocation_is_named() {
        let mut event = invocation(None).to_event();
        event.remove_extension(METHOD);
        assert_eq!(
            Invocation::from_event(&event),
            Err(InvocationError::Missing(METHOD))
        );
    }
}
