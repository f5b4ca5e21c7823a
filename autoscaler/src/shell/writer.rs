//! Applying a decision: the `/scale` patch, then a Kubernetes Event on the Function and a
//! `dev.zeroscale.function.scaled` CloudEvent POSTed to `<--events-sink>/<function namespace>` (the
//! broker ingress of that namespace), with `Authorization: Bearer <token>` from
//! `--events-sink-token-file` when set. A 404 there means the namespace has no broker Trigger: nobody
//! subscribes, so it is logged at debug level only.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use k8s_openapi::api::apps::v1::Deployment;
use kube::{
    Api, Client, Resource,
    api::{Patch, PatchParams},
    runtime::events::{Event, EventType, Recorder, Reporter},
};
use tokio::sync::mpsc;
use zeroscale_common::{
    signals::{self, FunctionKey, SCALED_TYPE, Scaled},
    token_file::TokenFile,
};
use zeroscale_crds::Function;

use super::{
    http::{HttpClient, HttpError},
    metrics::{Metrics, WriteLabels},
};
use crate::kpa::Reason;

/// How long the sink has to accept a `scaled` event.
const SINK_TIMEOUT: Duration = Duration::from_secs(2);

/// The broker ingress URL of `namespace` under `sink`: `<sink>/<namespace>`.
pub fn sink_url(sink: &str, namespace: &str) -> String {
    format!("{}/{namespace}", sink.trim_end_matches('/'))
}

/// Where `scaled` events go: the broker ingress and the token to show it.
#[derive(Clone, Debug)]
pub struct Sink {
    url: String,
    http: HttpClient,
    token: Option<Arc<TokenFile>>,
}

/// What the sink made of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Posted {
    /// Accepted (2xx).
    Sent,
    /// 404: the namespace has no broker Trigger, so nobody subscribes.
    NoBroker,
    /// Any other answer (401 without a valid token, 403, 503, ...).
    Refused(StatusCode),
}

impl Sink {
    /// A sink at `url` (`<url>/<namespace>` per event); `None` when `url` is empty (off).
    pub fn new(url: &str, http: HttpClient) -> Option<Self> {
        let url = url.trim();
        (!url.is_empty()).then(|| Self {
            url: url.to_string(),
            http,
            token: None,
        })
    }

    /// The same sink sending the token in `file`.
    pub fn with_token(self, file: TokenFile) -> Self {
        Self {
            token: Some(Arc::new(file)),
            ..self
        }
    }

    /// POSTs one event (binary-mode `headers` and `body`) to the broker of `namespace`, once.
    pub async fn post(
        &self,
        namespace: &str,
        mut headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<Posted, HttpError> {
        if let Some(token) = &self.token
            && let Some(value) = token.authorization().await
        {
            headers.insert(AUTHORIZATION, value);
        }
        let status = self
            .http
            .post(&sink_url(&self.url, namespace), headers, body, SINK_TIMEOUT)
            .await?;
        Ok(if status.is_success() {
            Posted::Sent
        } else if status == StatusCode::NOT_FOUND {
            Posted::NoBroker
        } else {
            Posted::Refused(status)
        })
    }
}

/// One scale change to apply.
#[derive(Clone, Debug)]
pub struct ScaleWrite {
    /// The function.
    pub function: FunctionKey,
    /// Replicas before.
    pub from: i32,
    /// Replicas after.
    pub to: i32,
    /// Why.
    pub reason: Reason,
    /// When the demand event that caused this write arrived (demand decisions only).
    pub demand_arrived: Option<Instant>,
    /// When the decision was taken (wall clock), for the cold-start anatomy.
    pub decided: jiff::Timestamp,
}

/// Annotation a scale-from-zero leaves on the Deployment: when the autoscaler decided it
/// (RFC 3339, millisecond precision), read by the activator's cold-start anatomy.
pub const DECIDED_ANNOTATION: &str = "zeroscale.dev/scale-decided-at";
/// Annotation a scale-from-zero leaves on the Deployment: when its `/scale` patch was answered.
pub const PATCHED_ANNOTATION: &str = "zeroscale.dev/scale-patched-at";

/// The annotation patch recording a scale-from-zero's decision and patch times.
pub fn stamps_patch(decided: jiff::Timestamp, patched: jiff::Timestamp) -> serde_json::Value {
    let ms = |t: jiff::Timestamp| t.round(jiff::Unit::Millisecond).unwrap_or(t).to_string();
    serde_json::json!({ "metadata": { "annotations": {
        DECIDED_ANNOTATION: ms(decided),
        PATCHED_ANNOTATION: ms(patched),
    } } })
}

/// Applies scale changes; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    client: Client,
    recorder: Recorder,
    sink: Option<Sink>,
    source: String,
    metrics: Metrics,
    /// Functions whose write failed, so the decision loop stops assuming the new scale.
    failed: mpsc::UnboundedSender<FunctionKey>,
}

fn outcome(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::Api(status) if status.code == 404 => "not_found",
        kube::Error::Api(status) if status.code == 409 => "conflict",
        _ => "error",
    }
}

impl Writer {
    /// A writer acting as `identity`, sending `scaled` events to `sink` (empty: none).
    pub fn new(
        client: Client,
        identity: &str,
        sink: Option<String>,
        http: HttpClient,
        metrics: Metrics,
        failed: mpsc::UnboundedSender<FunctionKey>,
    ) -> Self {
        let reporter = Reporter {
            controller: "zeroscale-autoscaler".into(),
            instance: Some(identity.to_string()),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            sink: sink.and_then(|url| Sink::new(&url, http)),
            source: format!("/zeroscale/autoscaler/{identity}"),
            metrics,
            failed,
        }
    }

    /// The same writer sending the token in `file` with every `scaled` event (unset or empty path:
    /// none).
    pub fn with_sink_token(mut self, file: Option<PathBuf>) -> Self {
        if let Some(path) = file.filter(|p| !p.as_os_str().is_empty()) {
            self.sink = self.sink.map(|sink| sink.with_token(TokenFile::new(path)));
        }
        self
    }

    /// The Kubernetes client the writer uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Applies `write` in a task of its own, so slow API calls never hold up decisions.
    pub fn spawn(&self, write: ScaleWrite, function: Option<Arc<Function>>) {
        let this = self.clone();
        tokio::spawn(async move { this.apply(write, function).await });
    }

    async fn apply(&self, w: ScaleWrite, function: Option<Arc<Function>>) {
        let key = &w.function;
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &key.namespace);
        let patch = Patch::Merge(serde_json::json!({ "spec": { "replicas": w.to } }));
        // Measured when the patch is handed to the client, i.e. when it is sent.
        let demand_to_patch = w.demand_arrived.map(|at| at.elapsed());
        let sent = Instant::now();
        let result = api.patch_scale(&key.name, &PatchParams::default(), &patch).await;
        let rtt_us = sent.elapsed().as_micros() as u64;
        if let Some(latency) = demand_to_patch {
            self.metrics.demand_to_patch.observe(latency.as_secs_f64());
        }
        let demand_to_patch_us = demand_to_patch.map(|d| d.as_micros() as u64);
        match result {
            Ok(_) => {
                self.metrics
                    .scale_writes
                    .get_or_create(&WriteLabels { outcome: "ok" })
                    .inc();
                tracing::info!(
                    function = %key, from = w.from, to = w.to, reason = w.reason.as_str(),
                    demand_to_patch_us, patch_rtt_us = rtt_us, "scaled"
                );
                if w.from == 0 && w.to > 0 {
                    // Off the cold path: the pod is being created meanwhile.
                    let stamps = stamps_patch(w.decided, jiff::Timestamp::now());
                    if let Err(e) = api
                        .patch(&key.name, &PatchParams::default(), &Patch::Merge(&stamps))
                        .await
                    {
                        tracing::warn!(function = %key, error = %e, "cannot annotate the deployment with the scale stamps");
                    }
                }
            }
            Err(e) => {
                self.metrics
                    .scale_writes
                    .get_or_create(&WriteLabels { outcome: outcome(&e) })
                    .inc();
                tracing::warn!(function = %key, to = w.to, demand_to_patch_us, error = %e, "cannot patch /scale");
                let _ = self.failed.send(key.clone());
                return;
            }
        }
        match function {
            Some(function) => self.event(&function, &w).await,
            None => tracing::warn!(function = %key, "function not in the cache; no event recorded"),
        }
        self.publish(&w).await;
    }

    async fn event(&self, function: &Function, w: &ScaleWrite) {
        let event = Event {
            type_: EventType::Normal,
            reason: "Scaled".into(),
            note: Some(format!(
                "scaled from {} to {} ({})",
                w.from,
                w.to,
                w.reason.as_str()
            )),
            // kube's recorder folds events with the same type, reason, action and object into one
            // series and keeps the first note; naming the transition in the action keeps every
            // distinct change visible while identical repeats still fold.
            action: format!("ScaleFrom{}To{}For{}", w.from, w.to, w.reason.action_suffix()),
            secondary: None,
        };
        match self.recorder.publish(&event, &function.object_ref(&())).await {
            Ok(()) => tracing::debug!(function = %w.function, "event recorded"),
            Err(e) => tracing::warn!(function = %w.function, error = %e, "cannot publish event"),
        }
    }

    async fn publish(&self, w: &ScaleWrite) {
        // An empty sink (`ZEROSCALE_AUTOSCALER_EVENTS_SINK=`) is off, as for the operator.
        let Some(sink) = &self.sink else {
            return;
        };
        let payload = Scaled {
            function: w.function.clone(),
            from: w.from,
            to: w.to,
            reason: w.reason.as_str().into(),
        };
        let message = match signals::build_event(SCALED_TYPE, &self.source, &w.function, &payload)
            .and_then(signals::to_binary)
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(function = %w.function, error = %e, "cannot build scaled event");
                return;
            }
        };
        match sink
            .post(&w.function.namespace, message.headers, message.body)
            .await
        {
            Ok(Posted::Sent) => {}
            Ok(Posted::NoBroker) => {
                tracing::debug!(function = %w.function, "no broker Trigger in the namespace; scaled event not sent")
            }
            Ok(Posted::Refused(status)) => {
                tracing::warn!(function = %w.function, %status, "events sink refused the scaled event")
            }
            Err(e) => tracing::warn!(function = %w.function, error = %e, "cannot deliver the scaled event"),
        }
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod sink_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_events_go_to_the_broker_of_the_functions_namespace() {
        assert_eq!(
            sink_url(
                "http://zeroscale-broker.zeroscale-system.svc.cluster.local",
                "shop"
            ),
            "http://zeroscale-broker.zeroscale-system.svc.cluster.local/shop"
        );
        assert_eq!(sink_url("http://127.0.0.1:8082/", "a"), "http://127.0.0.1:8082/a");
    }

    #[test]
    fn scale_stamps_are_millisecond_rfc3339_annotations() {
        let decided: jiff::Timestamp = "2026-12-03T14:00:00.123456Z".parse().expect("time");
        let patched: jiff::Timestamp = "2026-12-03T14:00:00.140999Z".parse().expect("time");
        let patch = stamps_patch(decided, patched);
        let annotations = &patch["metadata"]["annotations"];
        assert_eq!(annotations[DECIDED_ANNOTATION], "2026-12-03T14:00:00.123Z");
        assert_eq!(annotations[PATCHED_ANNOTATION], "2026-12-03T14:00:00.141Z");
    }
}
