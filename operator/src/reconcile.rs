//! The Function reconciler: validate → build → apply → status, each a typed step.
//!
//! - [`validate`] (pure) checks the Function and returns a [`ValidatedFunction`], or the reason that
//!   goes into `Ready=False/InvalidSpec`;
//! - [`build`] (pure) returns the [`Children`](crate::build::Children);
//! - [`apply`] server-side applies them (those that changed) and returns what the API server
//!   answered, child by child;
//! - [`revision_sync::plan`] (pure) reads every revision and resolves the traffic; the revisions past
//!   `revisionHistoryLimit` (and children from before revisions) are deleted;
//! - [`status::compute`] (pure) turns that and the pods into the status, written (with its Events and
//!   platform events) only when it changed.
//!
//! The pods and Deployments are read from the controller's watches ([`Caches`]), not listed again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::{Api, Client};
use serde_json::json;
use zeroscale_crds::function::{REASON_REVISION_MISSING, REASON_ROLLED_BACK, RolloutPhase};
use zeroscale_crds::revision::REVISION_LABEL;
use zeroscale_crds::{Function, FunctionStatus};

use crate::apply::{self, Applied, AppliedDeployment, Applier, FIELD_MANAGER};
use crate::build::{BuildSettings, build};
use crate::caches::Caches;
use crate::error::{FunctionError, chain};
use crate::events::{self, Note};
use crate::failures::{Failures, backoff, key};
use crate::last_applied::LastApplied;
use crate::metrics::{ErrorLabels, KindLabels, Metrics};
use crate::platform::{self, PlatformEvents};
use crate::revision_sync::{self, Plan};
use crate::rollout::shell::{self as canary, Canaries};
use crate::status::{self, Failure, Observed};
use crate::validate::{ValidatedFunction, ValidationError, identity, validate};

/// Periodic re-reconcile of a healthy Function, a safety net for missed events.
const RESYNC: Duration = Duration::from_secs(300);
/// How soon a Function is looked at again when the caches have not had their first listing yet.
const CACHES_SYNCING: Duration = Duration::from_millis(250);
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
    /// The automated canaries' baselines and the client that reads the activators' counts.
    canaries: Canaries,
    /// The pods, Deployments and Services the controller watches.
    pub caches: Caches,
    /// What was last applied to each child.
    last_applied: LastApplied,
}

impl Context {
    /// Creates a context that reads the pods, Deployments and Services from `caches`.
    pub fn new(
        client: Client,
        build: BuildSettings,
        domain: String,
        recorder: Recorder,
        metrics: Metrics,
        caches: Caches,
    ) -> Self {
        Self {
            client,
            build,
            domain,
            recorder,
            metrics,
            platform: None,
            failures: Failures::default(),
            canaries: Canaries::default(),
            caches,
            last_applied: LastApplied::default(),
        }
    }

    /// What an apply reads and records besides the API server.
    fn applier(&self) -> Applier<'_> {
        Applier {
            client: &self.client,
            caches: &self.caches,
            last_applied: &self.last_applied,
        }
    }

    /// Sends platform events through `platform`.
    pub fn with_platform(mut self, platform: Option<PlatformEvents>) -> Self {
        self.platform = platform;
        self
    }
}

/// Reconciles one Function, recording metrics.
pub async fn reconcile(function: Arc<Function>, ctx: Arc<Context>) -> Result<Action, FunctionError> {
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
        Ok(_) => ctx.failures.clear(&key(function.as_ref())),
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
pub fn error_policy(function: Arc<Function>, error: &FunctionError, ctx: Arc<Context>) -> Action {
    let key = key(function.as_ref());
    let delay = backoff(ctx.failures.record(key.clone()));
    tracing::warn!(function = %key, error = %chain(error), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// A failed apply as a condition reason and message (every error [`apply::apply`] returns has a reason).
fn failure(error: &FunctionError) -> Option<Failure> {
    Some(Failure {
        reason: error.condition_reason()?.to_string(),
        message: chain(error),
    })
}

fn now() -> Time {
    let now = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

async fn reconcile_function(function: &Function, ctx: &Context) -> Result<Action, FunctionError> {
    if function.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector delete the children.
        return Ok(Action::await_change());
    }
    if !ctx.caches.synced() {
        // Without the first listing, children that exist would look missing. A watch that cannot
        // list is logged by the controller (`watch failed`).
        tracing::debug!(function = %key(function), "waiting for the caches' first listing");
        return Ok(Action::requeue(CACHES_SYNCING));
    }
    let validated = match validate(function) {
        Ok(validated) => validated,
        Err(invalid) => return report_invalid(function, invalid, ctx).await,
    };
    let children = build(&validated, &ctx.build);
    let applied = apply::apply(ctx.applier(), &validated, &children).await;
    if let Ok(AppliedDeployment {
        created_with: Some(replicas),
        ..
    }) = &applied.deployment
    {
        let note = Note {
            warning: false,
            reason: "Created".into(),
            note: format!(
                "created Deployment {} with {replicas} replicas",
                validated.revision
            ),
            action: "Create",
        };
        events::publish(&ctx.recorder, function, note).await;
    }
    let mut deployments = ctx.caches.deployments_of(validated.namespace, validated.name);
    if let Ok(AppliedDeployment { deployment, .. }) = &applied.deployment {
        // The cache may not have the apply's answer yet.
        deployments.retain(|d| d.metadata.name != deployment.metadata.name);
        deployments.push(deployment.clone());
    }
    let pods = ctx.caches.pods_of(validated.namespace, validated.name);
    let previous_rollout = function.status.as_ref().and_then(|s| s.rollout.as_ref());
    let observation = ctx
        .canaries
        .observe(
            &ctx.client,
            &ctx.build.activator_service,
            (validated.namespace, validated.name),
            previous_rollout.filter(|_| validated.rollout.is_some()),
            jiff::Timestamp::now(),
        )
        .await;
    let plan = revision_sync::plan(&validated, &deployments, &pods, &ctx.domain, &observation);
    revision_sync::clean_up(&ctx.client, &validated, &plan).await?;
    update_status(&validated, &applied, &pods, &plan, ctx).await?;
    announce_rollout(&validated, &plan, ctx).await;
    applied.routes?;
    applied.deployment?;
    // A running canary is looked at again soon: its window grows without any object changing.
    match (&plan.rollout, &validated.rollout) {
        (Some(decision), Some(rollout)) if decision.in_progress() => {
            Ok(Action::requeue(canary::poll_after(rollout)))
        }
        _ => Ok(Action::requeue(RESYNC)),
    }
}

/// The Event of a rollout step, and on a rollback the `rolledback` CloudEvent.
async fn announce_rollout(validated: &ValidatedFunction<'_>, plan: &Plan, ctx: &Context) {
    let Some(decision) = &plan.rollout else {
        return;
    };
    let (Some(transition), Some(status)) = (&decision.transition, &decision.status) else {
        return;
    };
    tracing::info!(function = validated.name, namespace = validated.namespace, ?transition, message = ?status.message, "rollout");
    if let Some(note) = canary::note(transition, status) {
        events::publish(&ctx.recorder, validated.function, note).await;
    }
    if status.phase == RolloutPhase::RolledBack
        && let Some(platform) = &ctx.platform
    {
        platform.send(canary::rolled_back(validated.namespace, validated.name, status));
    }
}

/// `Ready=False/RolledBack` with the measured figure while the canary stays rolled back.
fn rolled_back(plan: &Plan) -> Option<Failure> {
    let status = plan.rollout.as_ref()?.status.as_ref()?;
    (status.phase == RolloutPhase::RolledBack).then(|| Failure {
        reason: REASON_ROLLED_BACK.into(),
        message: status.message.clone().unwrap_or_default(),
    })
}

/// The status phase of a valid Function: computed from what [`apply::apply`] returned, the current
/// revision's pods and the revision plan.
async fn update_status(
    validated: &ValidatedFunction<'_>,
    applied: &Applied,
    pods: &[k8s_openapi::api::core::v1::Pod],
    plan: &Plan,
    ctx: &Context,
) -> Result<(), FunctionError> {
    let current: Vec<_> = pods
        .iter()
        .filter(|p| {
            p.metadata.labels.as_ref().and_then(|l| l.get(REVISION_LABEL)) == Some(&validated.revision)
        })
        .cloned()
        .collect();
    let observed = Observed {
        deployment: applied.deployment.as_ref().ok().map(|a| &a.deployment),
        pods: &current,
        deployment_error: applied.deployment.as_ref().err().and_then(failure),
        routes_error: applied.routes.as_ref().err().and_then(failure),
        spec_error: None,
        traffic_error: plan
            .missing
            .as_ref()
            .map(|missing| Failure {
                reason: REASON_REVISION_MISSING.into(),
                message: missing.to_string(),
            })
            .or_else(|| rolled_back(plan)),
    };
    write_status(
        validated.function,
        (validated.name, validated.namespace),
        ctx,
        &observed,
        Some(plan),
    )
    .await
}

/// An invalid spec: nothing is applied; the status says why (`Ready=False/InvalidSpec`) and the
/// Function is looked at again only when it changes.
async fn report_invalid(
    function: &Function,
    invalid: ValidationError,
    ctx: &Context,
) -> Result<Action, FunctionError> {
    // Without a name or namespace (never the case for objects from the API server) there is nowhere
    // to write a status.
    let Ok((name, namespace)) = identity(function) else {
        return Err(FunctionError::InvalidSpec(invalid));
    };
    // Nothing is applied: the status describes the revision that was latest before.
    let current = function
        .status
        .as_ref()
        .and_then(|s| s.latest_created_revision_name.clone())
        .unwrap_or_else(|| name.to_string());
    let deployment = ctx
        .caches
        .deployment(namespace, &current)
        .map(Arc::unwrap_or_clone);
    let pods: Vec<_> = ctx
        .caches
        .pods_of(namespace, name)
        .into_iter()
        .filter(|p| p.metadata.labels.as_ref().and_then(|l| l.get(REVISION_LABEL)) == Some(&current))
        .collect();
    let observed = Observed {
        deployment: deployment.as_ref(),
        pods: &pods,
        spec_error: Some(invalid.to_string()),
        ..Observed::default()
    };
    write_status(function, (name, namespace), ctx, &observed, None).await?;
    let labels = ErrorLabels {
        kind: KIND,
        reason: FunctionError::InvalidSpec(invalid).metric_reason(),
    };
    ctx.metrics.errors.get_or_create(&labels).inc();
    Ok(Action::await_change())
}

/// Computes the status and writes it only when it differs from the stored one. Without a `plan` (an
/// invalid spec) the revisions and traffic stay as they were, so routing does not change.
async fn write_status(
    function: &Function,
    (name, namespace): (&str, &str),
    ctx: &Context,
    observed: &Observed<'_>,
    plan: Option<&Plan>,
) -> Result<(), FunctionError> {
    let mut next = status::compute(function, namespace, observed, &ctx.domain, &now());
    let previous = function.status.clone().unwrap_or_default();
    match plan {
        Some(plan) => {
            next.latest_created_revision_name = Some(plan.latest_created.clone());
            next.latest_ready_revision_name = plan.latest_ready.clone();
            next.traffic = plan.traffic.clone();
            next.revisions = plan.revisions.clone();
            // Every revision's pods, not only the latest's: during a split or a canary the column
            // shows what runs.
            next.replicas = plan.replicas.replicas;
            next.ready_replicas = plan.replicas.ready;
            next.desired_replicas = plan.replicas.desired;
            next.replicas_summary = Some(format!("{}/{}", plan.replicas.ready, plan.replicas.desired));
            next.rollout = match &plan.rollout {
                Some(decision) => decision.status.clone(),
                None => previous.rollout.clone(),
            };
        }
        None => {
            next.latest_created_revision_name = previous.latest_created_revision_name.clone();
            next.latest_ready_revision_name = previous.latest_ready_revision_name.clone();
            next.traffic = previous.traffic.clone();
            next.revisions = previous.revisions.clone();
            next.rollout = previous.rollout.clone();
        }
    }
    // `prediction` belongs to the autoscaler: it neither makes the operator's status differ nor is
    // applied by it (the operator's apply leaves it out, so the autoscaler keeps owning it).
    let ours = FunctionStatus {
        prediction: None,
        ..previous.clone()
    };
    if ours == next {
        return Ok(());
    }
    patch_status(&ctx.client, name, namespace, &next).await?;
    if let Some(note) = events::ready_transition(&previous.conditions, &next.conditions) {
        events::publish(&ctx.recorder, function, note).await;
    }
    if let Some(note) = events::container_health_transition(&previous.conditions, &next.conditions) {
        events::publish(&ctx.recorder, function, note).await;
    }
    if let Some(platform) = &ctx.platform
        && let Some(event) = platform::transition(function, namespace, &previous.conditions, &next.conditions)
    {
        platform.send(event);
    }
    Ok(())
}

async fn patch_status(
    client: &Client,
    name: &str,
    namespace: &str,
    status: &FunctionStatus,
) -> Result<(), FunctionError> {
    let api: Api<Function> = Api::namespaced(client.clone(), namespace);
    let body = json!({ "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Function", "status": status });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| FunctionError::Status {
        name: name.to_string(),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
