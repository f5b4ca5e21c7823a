//! Platform events: a `dev.zeroscale.function.ready` or `dev.zeroscale.function.failed` CloudEvent
//! when a Function's `Ready` condition changes, POSTed in binary mode to `<--events-sink>/<namespace>`
//! (the broker ingress), so Triggers can route them.
//!
//! Sending never blocks a reconcile: events go through a bounded queue to one task that POSTs them with a
//! per-attempt timeout and a bounded retry. When the queue is full the event is dropped, logged and
//! counted (`zeroscale_operator_platform_events_total{outcome="dropped"}`); events still queued when the
//! process stops are lost. Delivery is best effort, at most [`SinkConfig::attempts`] tries.
//!
//! With a token file (`--events-sink-token-file`, the chart's projected ServiceAccount token for the
//! audience `zeroscale-broker`) every attempt carries `Authorization: Bearer <token>`, read from the
//! file as it is rotated ([`TokenFile`]). A 404 from the broker means the namespace has no broker
//! Trigger, so nobody subscribes: it is not retried and counted as `no_broker`, not as a failure.

use std::{sync::Arc, time::Duration};

use http::{StatusCode, header::AUTHORIZATION};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use prometheus_client::metrics::{counter::Counter, family::Family};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use zeroscale_common::{
    signals::{self, FAILED_TYPE, FunctionKey, READY_TYPE},
    token_file::TokenFile,
};
use zeroscale_crds::Function;
use zeroscale_crds::function::{CONDITION_READY, REASON_PROGRESSING};
use zeroscale_eventing::delivery::{EventSender, Outgoing, SendError, Target};

use crate::metrics::PlatformLabels;

/// CloudEvents `source` of every platform event the operator sends.
pub const SOURCE: &str = "/zeroscale/operator";

/// Data of a platform event: the Function and its `Ready` condition's reason and message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCondition {
    /// The Function.
    pub function: FunctionKey,
    /// The `Ready` reason (`Ready`, `ImagePullBackOff`, `CrashLoopBackOff`, ...).
    pub reason: String,
    /// The `Ready` message.
    pub message: String,
}

/// One platform event to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// [`READY_TYPE`] or [`FAILED_TYPE`].
    pub ty: &'static str,
    /// Its data.
    pub data: FunctionCondition,
}

fn ready(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == CONDITION_READY)
}

/// The platform event for a change of `function`'s `Ready` condition: `ready` when it became `True`,
/// `failed` when it became `False` (or changed its failure reason) for anything but a rollout or start
/// under way (`Progressing`). `None` otherwise.
pub fn transition(
    function: &Function,
    namespace: &str,
    previous: &[Condition],
    next: &[Condition],
) -> Option<Notice> {
    let next = ready(next)?;
    let before = ready(previous);
    if before.is_some_and(|b| b.status == next.status && b.reason == next.reason) {
        return None;
    }
    let ty = match next.status.as_str() {
        "True" if before.is_none_or(|b| b.status != "True") => READY_TYPE,
        "False" if next.reason != REASON_PROGRESSING => FAILED_TYPE,
        _ => return None,
    };
    let data = FunctionCondition {
        function: FunctionKey::new(namespace.to_string(), function.name_any()),
        reason: next.reason.clone(),
        message: next.message.clone(),
    };
    Some(Notice { ty, data })
}

/// The broker ingress URL of `namespace` under `sink`: `<sink>/<namespace>`.
pub fn sink_url(sink: &str, namespace: &str) -> String {
    format!("{}/{namespace}", sink.trim_end_matches('/'))
}

/// Where platform events go: the broker ingress and the token to show it.
#[derive(Clone, Debug)]
pub struct Sink {
    /// The ingress URL; events go to `<url>/<namespace>`.
    pub url: String,
    /// The bearer token's file, when the broker wants one.
    pub token: Option<Arc<TokenFile>>,
}

impl Sink {
    /// A sink at `url` sending no token.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
        }
    }

    /// The same sink sending the token in `file`.
    pub fn with_token(self, file: TokenFile) -> Self {
        Self {
            token: Some(Arc::new(file)),
            ..self
        }
    }
}

/// How the sending task delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkConfig {
    /// Events waiting to be sent; beyond, new events are dropped.
    pub queue: usize,
    /// Deadline of one POST.
    pub timeout: Duration,
    /// Tries per event (the first included).
    pub attempts: u32,
    /// Wait before the first retry; doubles for each further one.
    pub backoff: Duration,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            queue: 256,
            timeout: Duration::from_secs(2),
            attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }
}

/// Hands platform events to the sending task; cheap to clone.
#[derive(Clone, Debug)]
pub struct PlatformEvents {
    queue: mpsc::Sender<Notice>,
    counter: Family<PlatformLabels, Counter>,
}

fn count(counter: &Family<PlatformLabels, Counter>, ty: &'static str, outcome: &'static str) {
    counter
        .get_or_create(&PlatformLabels { r#type: ty, outcome })
        .inc();
}

impl PlatformEvents {
    /// Starts the task that sends to `sink` with `sender`, counting outcomes in `counter`.
    pub fn start<S: EventSender>(
        sink: Sink,
        sender: S,
        config: SinkConfig,
        counter: Family<PlatformLabels, Counter>,
    ) -> Self {
        let (queue, rx) = mpsc::channel(config.queue.max(1));
        tokio::spawn(run(rx, sink, sender, config, counter.clone()));
        Self { queue, counter }
    }

    /// Queues `notice` without waiting; drops it (logged, counted) when the queue is full.
    pub fn send(&self, notice: Notice) {
        let ty = notice.ty;
        if let Err(e) = self.queue.try_send(notice) {
            let (notice, why) = match e {
                mpsc::error::TrySendError::Full(n) => (n, "platform event queue full; event dropped"),
                // Only if the sending task has ended (it runs until the process exits), so say so.
                mpsc::error::TrySendError::Closed(n) => {
                    (n, "platform event sender has stopped; event dropped")
                }
            };
            tracing::warn!(function = %notice.data.function, ty, "{why}");
            count(&self.counter, ty, "dropped");
        }
    }
}

async fn run<S: EventSender>(
    mut rx: mpsc::Receiver<Notice>,
    sink: Sink,
    sender: S,
    config: SinkConfig,
    counter: Family<PlatformLabels, Counter>,
) {
    while let Some(notice) = rx.recv().await {
        let ty = notice.ty;
        let function = notice.data.function.clone();
        match deliver(&sink, &sender, &config, notice).await {
            Ok(Delivered::Sent) => count(&counter, ty, "sent"),
            Ok(Delivered::NoBroker) => {
                tracing::debug!(%function, ty, "no broker Trigger in the namespace; platform event not sent");
                count(&counter, ty, "no_broker");
            }
            Err(why) => {
                tracing::warn!(%function, ty, error = %why, "cannot deliver the platform event");
                count(&counter, ty, "failed");
            }
        }
    }
}

/// Whether a sink's answer is worth another try. Unlike a subscriber's 404 (the broker's own delivery
/// retries those), the ingress answers 404 only for a namespace without broker Triggers, which another
/// try within a second will not change.
fn retryable(status: StatusCode) -> bool {
    status.is_server_error() || matches!(status.as_u16(), 408 | 409 | 429)
}

/// What became of an event the sink answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivered {
    /// Accepted (2xx).
    Sent,
    /// 404: the namespace has no broker Trigger, so nobody subscribes to it.
    NoBroker,
}

async fn deliver<S: EventSender>(
    sink: &Sink,
    sender: &S,
    config: &SinkConfig,
    notice: Notice,
) -> Result<Delivered, String> {
    let function = notice.data.function.clone();
    let event =
        signals::build_event(notice.ty, SOURCE, &function, &notice.data).map_err(|e| e.to_string())?;
    let message = signals::to_binary(event).map_err(|e| e.to_string())?;
    let url = sink_url(&sink.url, &function.namespace);
    let target = Target::uri(&url).map_err(|e| e.to_string())?;
    let mut last = String::new();
    for attempt in 0..config.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(config.backoff.saturating_mul(1 << (attempt - 1).min(16))).await;
        }
        let mut headers = message.headers.clone();
        // Read for every attempt, so a retry after a rotation shows the new token.
        if let Some(token) = &sink.token
            && let Some(value) = token.authorization().await
        {
            headers.insert(AUTHORIZATION, value);
        }
        let outgoing = Outgoing {
            target: target.clone(),
            headers,
            body: bytes::Bytes::from(message.body.clone()),
        };
        match tokio::time::timeout(config.timeout, sender.send(outgoing)).await {
            Ok(Ok(answer)) if answer.status.is_success() => return Ok(Delivered::Sent),
            Ok(Ok(answer)) if answer.status == StatusCode::NOT_FOUND => return Ok(Delivered::NoBroker),
            Ok(Ok(answer)) if !retryable(answer.status) => {
                return Err(format!("{url} answered {}", answer.status));
            }
            Ok(Ok(answer)) => last = format!("{url} answered {}", answer.status),
            Ok(Err(e @ SendError::Unsupported(_))) => return Err(e.to_string()),
            Ok(Err(e)) => last = format!("{url}: {e}"),
            Err(_) => last = format!("{url}: no answer within {:?}", config.timeout),
        }
    }
    Err(last)
}

#[cfg(test)]
#[path = "platform_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "platform_loopback_tests.rs"]
mod loopback_tests;
