//! The one IO edge of delivery: sending an encoded event to a target and reading the answer.
//!
//! The activator plugs its in-process request path in through [`EventSender`] (so a delivery to a
//! Function is buffered, wakes the function at zero and is load-balanced like any request); anything
//! else can use [`HttpSender`], a plain HTTP/1.1 client.

use std::future::Future;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use super::target::Target;

/// Largest reply body read by default; a longer one is not read (the delivery still counts as done).
pub const DEFAULT_MAX_REPLY_BYTES: usize = 1024 * 1024;

/// An event on its way out: the target and the HTTP message (binary mode).
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Where to send it.
    pub target: Target,
    /// Headers: `ce-*`, `content-type`, `prefer`.
    pub headers: HeaderMap,
    /// The event's data.
    pub body: Bytes,
}

/// The subscriber's answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Status code.
    pub status: StatusCode,
    /// Response headers (a reply event's `ce-*` headers, `Retry-After`, ...).
    pub headers: HeaderMap,
    /// Response body, at most the sender's reply limit.
    pub body: Bytes,
}

/// Why an attempt got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Connecting or exchanging the request failed; worth retrying.
    #[error("transport error: {0}")]
    Transport(String),
    /// The answer's body was longer than the sender reads; the status is known.
    #[error("reply body over {limit} bytes")]
    ReplyTooLarge {
        /// Status of the answer.
        status: StatusCode,
        /// The limit.
        limit: usize,
    },
    /// The target cannot be reached by this sender at all (for example an `https` URI without TLS
    /// support); retrying cannot help.
    #[error("unsupported target {0}")]
    Unsupported(String),
}

/// Sends one encoded event and returns the answer. Implementations must not retry on their own: the
/// deliverer owns the retry schedule. They are called under the per-attempt timeout.
pub trait EventSender: Send + Sync + 'static {
    /// Sends `request` and reads the answer.
    fn send(&self, request: Outgoing) -> impl Future<Output = Result<Answer, SendError>> + Send;
}

/// An [`EventSender`] over plain HTTP/1.1 with connection reuse. Functions are reached at an address
/// built from a template with `{name}` and `{namespace}` (default `http://{name}.{namespace}.svc`,
/// the Function's public Service, which leads to the activator).
#[derive(Clone, Debug)]
pub struct HttpSender {
    client: Client<HttpConnector, Full<Bytes>>,
    function_template: String,
    max_reply_bytes: usize,
}

impl HttpSender {
    /// A sender reaching Functions through `function_template` (`{name}` and `{namespace}` are
    /// replaced) and reading replies of at most `max_reply_bytes`.
    pub fn new(function_template: impl Into<String>, max_reply_bytes: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            client,
            function_template: function_template.into(),
            max_reply_bytes,
        }
    }

    fn url(&self, target: &Target) -> Result<http::Uri, SendError> {
        match target {
            Target::Uri(uri) if uri.scheme_str() == Some("http") => Ok(uri.clone()),
            Target::Uri(uri) => Err(SendError::Unsupported(uri.to_string())),
            Target::Function(key) => self
                .function_template
                .replace("{name}", &key.name)
                .replace("{namespace}", &key.namespace)
                .parse()
                .map_err(|_| SendError::Unsupported(format!("function {key}"))),
        }
    }
}

impl Default for HttpSender {
    fn default() -> Self {
        Self::new("http://{name}.{namespace}.svc", DEFAULT_MAX_REPLY_BYTES)
    }
}

impl EventSender for HttpSender {
    async fn send(&self, request: Outgoing) -> Result<Answer, SendError> {
        let uri = self.url(&request.target)?;
        let mut builder = Request::builder().method(Method::POST).uri(uri);
        if let Some(headers) = builder.headers_mut() {
            *headers = request.headers;
            // Knative's dispatcher asks for a reply event the same way.
            headers.insert(
                header::HeaderName::from_static("prefer"),
                HeaderValue::from_static("reply"),
            );
        }
        let req = builder
            .body(Full::new(request.body))
            .map_err(|e| SendError::Transport(e.to_string()))?;
        self.exchange(req).await
    }
}

impl HttpSender {
    /// Sends any request (an async invocation replays its own method, path and headers) and reads
    /// the answer, at most the reply limit of its body.
    pub async fn exchange(&self, req: Request<Full<Bytes>>) -> Result<Answer, SendError> {
        let response = self
            .client
            .request(req)
            .await
            .map_err(|e| SendError::Transport(e.to_string()))?;
        let (parts, body) = response.into_parts();
        let body = match Limited::new(body, self.max_reply_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(SendError::ReplyTooLarge {
                    status: parts.status,
                    limit: self.max_reply_bytes,
                });
            }
            Err(e) => return Err(SendError::Transport(e.to_string())),
        };
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}
