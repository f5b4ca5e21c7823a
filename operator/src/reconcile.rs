//! The Function reconciler: validate → build → apply → status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use zeroscale_crds::function::{REASON_APPLY_FAILED, REASON_NOT_OWNED, REASON_ROUTES_FAILED};
use zeroscale_crds::{Function, FunctionStatus};

use crate::apply::{self, AppliedDeployment, FIELD_MANAGER};
use crate::build::BuildSettings;
use crate::error::{Error, chain};
use crate::events::{self, Note};
use crate::failures::{Failures, backoff};
use crate::metrics::{ErrorLabels, KindLabels, Metrics};
use crate::platform::{self, PlatformEvents};
use crate::status::{self, Failure, Observed};
use crate::validate::validate;

/// Periodic re-reconcile of a healthy Function, a safety net for missed events.
const RESYNC: Duration = Duration::from_secs(300);
const KIND: &str = "Function";

/// Everything a reconciliation needs.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Settings that shape the children.
    pub build: BuildSettings,
    /// Domain of external URLs.
    pub domain: String,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Reconcile metrics.
    pub metrics: Metrics,
    /// Sends platform events (`dev.zeroscale.function.ready`/`.failed`) when `--events-sink` is set.
    pub platform: Option<PlatformEvents>,
    /// Consecutive failures per Function (`namespace/name`), for back-off.
    failures: Failures,
}

impl Context {
    /// Creates a context.
    pub fn new(
        client: Client,
        build: BuildSettings,
        domain: String,
        recorder: Recorder,
        metrics: Metrics,
    ) -> Self {
        Self {
            client,
            build,
            domain,
            recorder,
            metrics,
            platform: None,
            failures: Failures::default(),
        }
    }

    /// Sends platform events through `platform`.
    pub fn with_platform(mut self, platform: Option<PlatformEvents>) -> Self {
        self.platform = platform;
        self
    }
}

fn key(function: &Function) -> String {
    format!(
        "{}/{}",
        function.namespace().unwrap_or_default(),
        function.name_any()
    )
}

/// Reconciles one Function, recording metrics.
pub async fn reconcile(function: Arc<Function>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics
        .reconciles
        .get_or_create(&KindLabels { kind: KIND })
        .inc();
    let result = reconcile_function(&function, &ctx).await;
    ctx.metrics
        .duration
        .get_or_create(&KindLabels { kind: KIND })
        .observe(started.elapsed().as_secs_f64());
    match &result {
        Ok(_) => ctx.failures.clear(&key(&function)),
        Err(e) => {
            ctx.metrics
                .errors
                .get_or_create(&ErrorLabels {
                    kind: KIND,
                    reason: e.metric_reason(),
                })
                .inc();
        }
    }
    result
}

/// Decides when to retry a failed reconciliation: exponential back-off per Function.
pub fn error_policy(function: Arc<Function>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx.failures.record(key(&function));
    let delay = backoff(failures);
    tracing::warn!(function = %key(&function), error = %chain(error), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// A failed apply as a condition reason and message: `NotOwned`, or `fallback` for API errors.
fn failure(error: &Error, fallback: &str) -> Failure {
    let reason = match error {
        Error::NotOwned { .. } => REASON_NOT_OWNED,
        _ => fallback,
    };
    Failure {
        reason: reason.to_string(),
        message: chain(error),
    }
}

fn now() -> Time {
    let now = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

async fn reconcile_function(function: &Function, ctx: &Context) -> Result<Action, Error> {
    if function.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector delete the children.
        return Ok(Action::await_change());
    }
    let resolved = match validate(function) {
        Ok(resolved) => resolved,
        Err(invalid) => {
            let message = invalid.to_string();
            let deployment = apply::get_deployment(&ctx.client, function).await?;
            let pods = apply::list_pods(&ctx.client, function).await?;
            let observed = Observed {
                deployment: deployment.as_ref(),
                pods: &pods,
                spec_error: Some(message),
                ..Observed::default()
            };
            write_status(function, ctx, &observed).await?;
            let labels = ErrorLabels {
                kind: KIND,
                reason: Error::InvalidSpec(invalid).metric_reason(),
            };
            ctx.metrics.errors.get_or_create(&labels).inc();
            return Ok(Action::await_change());
        }
    };

    let routes = apply::apply_services(&ctx.client, function, &ctx.build).await;
    let routes_error = routes.as_ref().err().map(|e| failure(e, REASON_ROUTES_FAILED));
    let initial = i32::try_from(resolved.initial).unwrap_or(i32::MAX);
    let applied = apply::apply_deployment(&ctx.client, function, &ctx.build, initial).await;
    let deployment_error = applied.as_ref().err().map(|e| failure(e, REASON_APPLY_FAILED));
    if let Ok(AppliedDeployment {
        created_with: Some(replicas),
        ..
    }) = &applied
    {
        let note = format!(
            "created Deployment {} with {replicas} replicas",
            function.name_any()
        );
        let note = Note {
            warning: false,
            reason: "Created".into(),
            note,
            action: "Create",
        };
        events::publish(&ctx.recorder, function, note).await;
    }
    let pods = apply::list_pods(&ctx.client, function).await?;
    let observed = Observed {
        deployment: applied.as_ref().ok().map(|a| &a.deployment),
        pods: &pods,
        deployment_error,
        routes_error,
        spec_error: None,
    };
    write_status(function, ctx, &observed).await?;
    routes?;
    applied?;
    Ok(Action::requeue(RESYNC))
}

/// Computes the status and writes it only when it differs from the stored one.
async fn write_status(function: &Function, ctx: &Context, observed: &Observed<'_>) -> Result<(), Error> {
    let next = status::compute(function, observed, &ctx.domain, &now());
    let previous = function.status.clone().unwrap_or_default();
    if previous == next {
        return Ok(());
    }
    patch_status(&ctx.client, function, &next).await?;
    if let Some(note) = events::ready_transition(&previous.conditions, &next.conditions) {
        events::publish(&ctx.recorder, function, note).await;
    }
    if let Some(note) = events::container_health_transition(&previous.conditions, &next.conditions) {
        events::publish(&ctx.recorder, function, note).await;
    }
    if let Some(platform) = &ctx.platform
        && let Some(event) = platform::transition(function, &previous.conditions, &next.conditions)
    {
        platform.send(event);
    }
    Ok(())
}

async fn patch_status(client: &Client, function: &Function, status: &FunctionStatus) -> Result<(), Error> {
    let name = function.name_any();
    let api: Api<Function> = Api::namespaced(client.clone(), &function.namespace().unwrap_or_default());
    let body = json!({ "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Function", "status": status });
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| Error::Status { name, source })?;
    Ok(())
}
