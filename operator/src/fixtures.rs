//! A scripted stand-in for the Kubernetes API server, for reconcile tests without a cluster (the
//! `ApiServerVerifier` of kube-rs/controller-rs, hand-written on `tower::service_fn`).
//!
//! A test lists the requests it expects, in order, each with its canned answer; [`ApiServer::new`]
//! returns a [`kube::Client`] that talks to the script. Every request is recorded with its JSON body.
//! A request that is not the next one expected is answered `500` and remembered, and
//! [`ApiServer::finish`] fails the test on it, or when expected requests never came.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// How the fake API server answers one request: status and JSON body, given the request's body.
type Answer = Box<dyn FnOnce(&Value) -> (StatusCode, Value) + Send>;

/// One expected request and its answer.
pub(crate) struct Step {
    method: Method,
    path: String,
    query: Vec<String>,
    answer: Answer,
}

impl Step {
    /// Expects `method` on `path` (without the query string), answered `200` with `{}` unless told
    /// otherwise.
    pub(crate) fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            answer: Box::new(|_| (StatusCode::OK, json!({}))),
        }
    }

    /// A `GET` of `path`.
    pub(crate) fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// A server-side apply (`PATCH` with `fieldManager=<manager>&force=true`) of `path`.
    pub(crate) fn apply(path: impl Into<String>, manager: &str) -> Self {
        Self::new(Method::PATCH, path)
            .query(&format!("fieldManager={manager}"))
            .query("force=true")
    }

    /// The creation of an Event in `namespace` by the event recorder.
    pub(crate) fn event(namespace: &str) -> Self {
        Self::new(
            Method::POST,
            format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events"),
        )
        .answer_with(|body| (StatusCode::CREATED, body.clone()))
    }

    /// Requires `pair` (`key=value`, URL-encoded as sent) in the query string.
    pub(crate) fn query(mut self, pair: &str) -> Self {
        self.query.push(pair.to_string());
        self
    }

    /// Answers `200` with `body`.
    pub(crate) fn answer(self, body: Value) -> Self {
        self.answer_with(move |_| (StatusCode::OK, body))
    }

    /// Answers `200` with the request's own body (what an apply of a new object returns, near enough).
    pub(crate) fn echo(self) -> Self {
        self.answer_with(|body| (StatusCode::OK, body.clone()))
    }

    /// Answers `404 NotFound`.
    pub(crate) fn not_found(self) -> Self {
        self.answer_with(|_| (StatusCode::NOT_FOUND, status(404, "NotFound", "not found")))
    }

    /// Answers with what `answer` makes of the request's body.
    pub(crate) fn answer_with(
        mut self,
        answer: impl FnOnce(&Value) -> (StatusCode, Value) + Send + 'static,
    ) -> Self {
        self.answer = Box::new(answer);
        self
    }
}

/// A Kubernetes `Status` object, the body of error answers.
pub(crate) fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
}

/// A request the fake API server received.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    /// The HTTP method.
    pub method: Method,
    /// The path, without the query string.
    pub path: String,
    /// The query string.
    pub query: String,
    /// The JSON body (`null` when empty).
    pub body: Value,
}

#[derive(Default)]
struct State {
    script: VecDeque<Step>,
    seen: Vec<Seen>,
    unexpected: Vec<String>,
}

/// The scripted API server behind a [`Client`].
pub(crate) struct ApiServer {
    state: Arc<Mutex<State>>,
}

impl ApiServer {
    /// A client for namespace `default` whose requests must follow `script`.
    pub(crate) fn new(script: Vec<Step>) -> (Client, ApiServer) {
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            ..State::default()
        }));
        let shared = state.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let state = shared.clone();
            async move {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.map_err(tower::BoxError::from)?;
                let body: Value = if bytes.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
                };
                let seen = Seen {
                    method: parts.method.clone(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().unwrap_or_default().to_string(),
                    body,
                };
                let (code, answer) = respond(&state, seen);
                let bytes = serde_json::to_vec(&answer).unwrap_or_default();
                Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(bytes))
                    .map_err(tower::BoxError::from)
            }
        });
        (Client::new(service, "default"), ApiServer { state })
    }

    /// Every request received, in order; fails the test if one was unexpected or if expected
    /// requests are left.
    pub(crate) fn finish(&self) -> Vec<Seen> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(
            state.unexpected.is_empty(),
            "unexpected requests: {:#?}",
            state.unexpected
        );
        let left: Vec<String> = state
            .script
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect();
        assert!(left.is_empty(), "expected requests never came: {left:#?}");
        state.seen.clone()
    }
}

/// Matches `seen` against the next step of the script and answers it.
fn respond(state: &Mutex<State>, seen: Seen) -> (StatusCode, Value) {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let describe = format!("{} {}?{}", seen.method, seen.path, seen.query);
    let matches = state.script.front().is_some_and(|step| {
        let pairs: Vec<&str> = seen.query.split('&').collect();
        step.method == seen.method
            && step.path == seen.path
            && step.query.iter().all(|q| pairs.contains(&q.as_str()))
    });
    let answer = if matches {
        state.script.pop_front().map(|step| (step.answer)(&seen.body))
    } else {
        let next = state
            .script
            .front()
            .map(|s| format!("{} {}?{}", s.method, s.path, s.query.join("&")));
        state.unexpected.push(format!("{describe} (expected {next:?})"));
        None
    };
    state.seen.push(seen);
    answer.unwrap_or_else(|| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            status(500, "InternalError", &format!("unexpected request {describe}")),
        )
    })
}

/// The requests to `path`, in order.
pub(crate) fn requests_to<'a>(seen: &'a [Seen], path: &str) -> Vec<&'a Seen> {
    seen.iter().filter(|s| s.path == path).collect()
}

/// `(type, reason)` of every Event created, in order.
pub(crate) fn events(seen: &[Seen]) -> Vec<(String, String)> {
    seen.iter()
        .filter(|s| s.path.ends_with("/events"))
        .map(|s| {
            (
                s.body["type"].as_str().unwrap_or_default().to_string(),
                s.body["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// `(status, reason)` of the condition `type_` in a status apply's body.
pub(crate) fn condition(status_apply: &Seen, type_: &str) -> (String, String) {
    let conditions = status_apply.body["status"]["conditions"]
        .as_array()
        .expect("conditions");
    let c = conditions
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no condition {type_}"));
    (
        c["status"].as_str().unwrap_or_default().to_string(),
        c["reason"].as_str().unwrap_or_default().to_string(),
    )
}

/// A `(status, reason)` or `(type, reason)` pair, as the helpers above return them.
pub(crate) fn pair(status: &str, reason: &str) -> (String, String) {
    (status.to_string(), reason.to_string())
}
