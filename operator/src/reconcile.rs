//! The Function reconciler: validate → build → apply → status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
use crate::metrics::{ErrorLabels, KindLabels, Metrics};
use crate::status::{self, Failure, Observed};
use crate::validate::validate;

/// Periodic re-reconcile of a healthy Function, a safety net for missed events.
const RESYNC: Duration = Duration::from_secs(300);
/// First retry delay after an error; doubles per consecutive failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Longest retry delay after errors.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
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
    /// Consecutive failures per Function (`namespace/name`), for back-off. Never held across `.await`.
    failures: Mutex<HashMap<String, u32>>,
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
            failures: Mutex::default(),
        }
    }

    fn record_failure(&self, key: String) -> u32 {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = failures.entry(key).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    fn clear_failures(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

fn key(function: &Function) -> String {
    format!(
        "{}/{}",
        function.namespace().unwrap_or_default(),
        function.name_any()
    )
}

/// Retry delay after `failures` consecutive failures: 0.5 s, 1 s, 2 s, … up to 5 min.
pub fn backoff(failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    MIN_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
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
        Ok(_) => ctx.clear_failures(&key(&function)),
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
    let failures = ctx.record_failure(key(&function));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(30), Duration::from_secs(300));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }
}
