//! The per-request record: one [`RequestRecord`] per request, produced exactly once, by the activator
//! that served it, where the request's life ends, and handed to every [`RecordSink`] of the
//! [`Recorder`] (metering, the access log, and whatever else is wired in `start`).
//!
//! A child of [`crate::function`] (records name their function; functions hold the recorder).
//!
//! Where records are made (and nowhere else):
//! - the end of a pod's response body: the body ended, failed, timed out, or the client dropped it
//!   (`body.rs`);
//! - a forwarded request that failed before a response head (`proxy/send.rs`), and a `101` answer
//!   whose tunnel then runs on its own;
//! - a request answered by the activator before it reached a pod (`proxy/mod.rs`: unknown host,
//!   queue full, timeout in the queue, startup failure, deleted function).
//!
//! A request forwarded to the peer activator owning its function is recorded by that owner only: the
//! forwarding replica makes no record (its body is [`crate::body::ResponseBody::forwarded`]). A
//! request whose client left while it waited in the queue gets no record (nothing was served; the
//! queue's own metrics count it).
//!
//! The record borrows what it names, so making one allocates nothing; a sink that keeps data copies it.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use http::{HeaderMap, Method};
use tokio::time::Instant;

use zeroscale_crds::revision::split_revision_name;

use super::FunctionState;
use crate::{
    error::ProxyError,
    headers::{TRACEPARENT, X_REQUEST_ID, first_values},
};

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// The pod answered with a status below 500 and the whole body reached the client.
    Ok,
    /// The pod answered with a 5xx status (the function failed).
    FunctionError,
    /// The activator answered itself, for the reason given (see [`RequestOutcome::of_error`]).
    ActivatorFailure(&'static str),
    /// A deadline of the function passed (`timeoutSeconds`, `responseStartTimeoutSeconds`, idle).
    Timeout,
    /// The client went away before the response ended.
    ClientGone,
}

impl RequestOutcome {
    /// The `outcome` label: `ok`, `function-error`, `activator-failure`, `timeout`, `client-gone`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::FunctionError => "function-error",
            Self::ActivatorFailure(_) => "activator-failure",
            Self::Timeout => "timeout",
            Self::ClientGone => "client-gone",
        }
    }

    /// The outcome of a pod's answer with `status` that reached the client whole.
    pub fn of_status(status: u16) -> Self {
        if status >= 500 {
            Self::FunctionError
        } else {
            Self::Ok
        }
    }

    /// The outcome of a request the activator answered with `error`.
    pub fn of_error(error: &ProxyError) -> Self {
        match error {
            ProxyError::Timeout(_) | ProxyError::ResponseStartTimeout(_) => Self::Timeout,
            ProxyError::Host(_) => Self::ActivatorFailure("bad-host"),
            ProxyError::UnknownFunction(_) => Self::ActivatorFailure("unknown-function"),
            ProxyError::FunctionDeleted(_) => Self::ActivatorFailure("deleted"),
            ProxyError::Rerouted(_) => Self::ActivatorFailure("rerouted"),
            ProxyError::StartupFailed { .. } => Self::ActivatorFailure("startup-failed"),
            ProxyError::QueueFull { limit, .. } | ProxyError::Throttled { limit, .. } => {
                Self::ActivatorFailure(limit)
            }
            ProxyError::Upstream { .. } => Self::ActivatorFailure("upstream"),
            ProxyError::Lost { .. } => Self::ActivatorFailure("lost"),
            ProxyError::RequestBody(_) => Self::ActivatorFailure("request-body"),
        }
    }

    /// Why the activator failed, for [`RequestOutcome::ActivatorFailure`].
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Self::ActivatorFailure(reason) => Some(reason),
            _ => None,
        }
    }
}

/// Everything known about one finished request. Instants are on the activator's monotonic clock.
#[derive(Clone, Copy, Debug)]
pub struct RequestRecord<'a> {
    /// The function it was for; `None` when no function matched its host.
    pub function: Option<&'a Arc<FunctionState>>,
    /// The revision that served it, when the request path knows it; else see [`Self::revision_name`].
    pub revision: Option<&'a str>,
    /// The request method.
    pub method: &'a Method,
    /// The status code the client got (0 when the client went away before a head was sent).
    pub status: u16,
    /// How it ended.
    pub outcome: RequestOutcome,
    /// When its head was read.
    pub arrived: Instant,
    /// When it was handed to a pod (the end of its queue wait); `None` if it never was.
    pub forwarded: Option<Instant>,
    /// When the pod's response head came back; `None` if it never did.
    pub first_byte: Option<Instant>,
    /// When the response ended (or failed).
    pub end: Instant,
    /// Whether it waited through a cold start (it started a cold episode or waited for its pod).
    pub cold: bool,
    /// The pod it was sent to, if any.
    pub pod: Option<SocketAddr>,
    /// Its `x-request-id` (`-` when it had none).
    pub request_id: &'a str,
    /// The activator's `traceparent` for it: its trace and the activator's span (`crate::trace`);
    /// empty when it had none.
    pub traceparent: &'a str,
    /// Request body bytes (as announced or read; 0 when unknown).
    pub request_bytes: u64,
    /// Response body bytes sent to the client.
    pub response_bytes: u64,
}

impl RequestRecord<'_> {
    /// Arrival to the end of the response, queue time included.
    pub fn total(&self) -> Duration {
        self.end.saturating_duration_since(self.arrived)
    }

    /// Time waiting for a pod: arrival to forwarding (to the end when never forwarded).
    pub fn queued(&self) -> Duration {
        self.forwarded
            .unwrap_or(self.end)
            .saturating_duration_since(self.arrived)
    }

    /// Time a pod worked on it: forwarding to the end; zero when never forwarded.
    pub fn invocation(&self) -> Duration {
        self.forwarded
            .map_or(Duration::ZERO, |f| self.end.saturating_duration_since(f))
    }

    /// The function's namespace (empty when unrouted).
    pub fn namespace(&self) -> &str {
        self.function.map_or("", |f| f.key().namespace.as_str())
    }

    /// The Function's name (empty when unrouted): the routing entry's own name, or the Function of
    /// the revision it stands for.
    pub fn function_name(&self) -> &str {
        self.function.map_or("", |f| split_revision_name(&f.key().name).0)
    }

    /// The revision that served it: the one the record names, else the routing entry's when that
    /// stands for a revision (`<function>-<hash>`); `None` for a Function without revisions.
    pub fn revision_name(&self) -> Option<&str> {
        self.revision
            .or_else(|| self.function.and_then(|f| split_revision_name(&f.key().name).1))
    }

    /// Its trace id (32 hex digits; empty when unknown).
    pub fn trace_id(&self) -> &str {
        self.traceparent.get(3..35).unwrap_or("")
    }

    /// The activator's span id for it (16 hex digits; empty when unknown): the span exported when
    /// tracing is on, and the parent the pod sees.
    pub fn span_id(&self) -> &str {
        self.traceparent.get(36..52).unwrap_or("")
    }
}

/// A consumer of request records. Called on the request path, after the response ended: it must be
/// quick and must not block (no IO, no awaiting; hand work to a task when needed).
pub trait RecordSink: Send + Sync + 'static {
    /// Takes one finished request.
    fn record(&self, record: &RequestRecord<'_>);
}

/// The sinks every record goes to, in order. Cheap to clone (one shared slice).
#[derive(Clone, Default)]
pub struct Recorder {
    sinks: Arc<[Arc<dyn RecordSink>]>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

impl Recorder {
    /// A recorder feeding `sinks`.
    pub fn new(sinks: Vec<Arc<dyn RecordSink>>) -> Self {
        Self { sinks: sinks.into() }
    }

    /// This recorder with `sink` added at the end.
    #[must_use]
    pub fn with(&self, sink: Arc<dyn RecordSink>) -> Self {
        let mut sinks: Vec<_> = self.sinks.to_vec();
        sinks.push(sink);
        Self::new(sinks)
    }

    /// Hands `record` to every sink.
    pub fn emit(&self, record: &RequestRecord<'_>) {
        for sink in self.sinks.iter() {
            sink.record(record);
        }
    }

    /// Whether no sink is wired (records need not be made).
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
}

/// What the request path keeps of a request to make its record at the end: cheap clones of its
/// method and id, its body size, and its stamps.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    /// The request method.
    pub method: Method,
    /// Its `x-request-id`.
    pub request_id: http::HeaderValue,
    /// Its `traceparent` as the activator set it (`crate::trace::start`), before the forward's.
    pub traceparent: http::HeaderValue,
    /// Request body bytes, as announced (0 when unknown).
    pub request_bytes: u64,
    /// When its head was read.
    pub arrived: Instant,
}

impl RequestMeta {
    /// What to keep of a request with `method` and `headers`, which arrived at `arrived`.
    pub fn of(method: &Method, headers: &HeaderMap, arrived: Instant) -> Self {
        let [length, request_id, traceparent] = first_values(
            headers,
            [&http::header::CONTENT_LENGTH, &X_REQUEST_ID, &TRACEPARENT],
        );
        let request_bytes = length
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Self {
            method: method.clone(),
            request_id: request_id.cloned().unwrap_or(http::HeaderValue::from_static("-")),
            traceparent: traceparent.cloned().unwrap_or(http::HeaderValue::from_static("")),
            request_bytes,
            arrived,
        }
    }

    /// The request id as text (`-` when not ASCII).
    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or("-")
    }

    /// The record of this request answered by the activator itself with `error` at `end`, before
    /// (`forwarded` = `None`) or after it was handed to a pod.
    pub fn failed<'a>(
        &'a self,
        function: Option<&'a Arc<FunctionState>>,
        error: &ProxyError,
        forwarded: Option<Instant>,
        pod: Option<SocketAddr>,
        end: Instant,
    ) -> RequestRecord<'a> {
        RequestRecord {
            function,
            revision: None,
            method: &self.method,
            status: error.status().as_u16(),
            outcome: RequestOutcome::of_error(error),
            arrived: self.arrived,
            forwarded,
            first_byte: None,
            end,
            cold: false,
            pod,
            request_id: self.request_id(),
            traceparent: self.traceparent.to_str().unwrap_or(""),
            request_bytes: self.request_bytes,
            response_bytes: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<(String, u16, &'static str, Duration)>>);

    impl RecordSink for Collect {
        fn record(&self, r: &RequestRecord<'_>) {
            let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
            seen.push((r.request_id.to_string(), r.status, r.outcome.label(), r.queued()));
        }
    }

    #[test]
    fn every_sink_gets_each_record_once() {
        let a = Arc::new(Collect::default());
        let b = Arc::new(Collect::default());
        let recorder = Recorder::new(vec![a.clone()]).with(b.clone());
        let arrived = Instant::now();
        let mut headers = HeaderMap::new();
        headers.insert(&X_REQUEST_ID, http::HeaderValue::from_static("abc"));
        headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from_static("12"));
        let meta = RequestMeta::of(&Method::POST, &headers, arrived);
        assert_eq!(meta.request_bytes, 12);
        let error = ProxyError::Timeout("ns/f".into());
        let end = arrived + Duration::from_millis(30);
        recorder.emit(&meta.failed(None, &error, None, None, end));
        for sink in [a, b] {
            let seen = sink.0.lock().unwrap_or_else(|e| e.into_inner());
            assert_eq!(
                *seen,
                vec![("abc".to_string(), 504, "timeout", Duration::from_millis(30))]
            );
        }
    }

    #[test]
    fn outcomes_follow_status_and_error() {
        assert_eq!(RequestOutcome::of_status(200), RequestOutcome::Ok);
        assert_eq!(RequestOutcome::of_status(404), RequestOutcome::Ok);
        assert_eq!(RequestOutcome::of_status(503), RequestOutcome::FunctionError);
        let full = ProxyError::QueueFull {
            function: "ns/f".into(),
            limit: "queue-max-requests",
            retry_after: 1,
        };
        assert_eq!(
            RequestOutcome::of_error(&full).reason(),
            Some("queue-max-requests")
        );
        assert_eq!(RequestOutcome::of_error(&full).label(), "activator-failure");
        let throttled = ProxyError::Throttled {
            function: "ns/f".into(),
            limit: "maxConcurrency",
            retry_after: 3,
        };
        assert_eq!(
            RequestOutcome::of_error(&throttled).reason(),
            Some("maxConcurrency")
        );
    }

    #[test]
    fn invocation_excludes_the_queue() {
        let arrived = Instant::now();
        let r = RequestRecord {
            function: None,
            revision: None,
            method: &Method::GET,
            status: 200,
            outcome: RequestOutcome::Ok,
            arrived,
            forwarded: Some(arrived + Duration::from_millis(40)),
            first_byte: Some(arrived + Duration::from_millis(45)),
            end: arrived + Duration::from_millis(100),
            cold: true,
            pod: None,
            request_id: "-",
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            request_bytes: 0,
            response_bytes: 0,
        };
        assert_eq!(r.queued(), Duration::from_millis(40));
        assert_eq!(r.invocation(), Duration::from_millis(60));
        assert_eq!(r.total(), Duration::from_millis(100));
        assert_eq!(r.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(r.span_id(), "00f067aa0ba902b7");
        let untraced = RequestRecord { traceparent: "", ..r };
        assert_eq!((untraced.trace_id(), untraced.span_id()), ("", ""));
    }
}
