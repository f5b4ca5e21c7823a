//! The Trigger reconciler, in typed steps: validate ([`validate`], pure: identity and
//! [`SpecCheck`](super::check::SpecCheck)) →
//! look-ups ([`lookup`]: the Functions it names, API discovery of the watched kind) → status
//! ([`compute`], pure) → server-side apply of the status when it changed, with an Event when `Ready`
//! changes. Triggers have no children: the activator runs the broker, the delivery and the sources.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::{Api, Client};
use serde_json::json;
use zeroscale_crds::trigger::{
    TRIGGER_CONDITION_READY, TRIGGER_REASON_KIND_NOT_FOUND, Trigger, TriggerStatus,
};

use zeroscale_eventing::outbound::AllowedHosts;

use super::check::CLUSTER_DOMAIN;
use super::error::TriggerError;
use super::lookup::lookup;
use super::status::compute;
use super::validate::{ValidatedTrigger, validate};
use crate::apply::FIELD_MANAGER;
use crate::error::chain;
use crate::events;
use crate::failures::{Failures, backoff, key};
use crate::metrics::{ErrorLabels, KindLabels, Metrics};

/// Periodic re-reconcile, a safety net for missed events.
const RESYNC: Duration = Duration::from_secs(300);
/// A kind that is not served may be installed later (a CRD), which no watch of ours sees: look again
/// sooner than the resync.
const KIND_RECHECK: Duration = Duration::from_secs(30);
const KIND: &str = "Trigger";

/// Everything a Trigger reconciliation needs.
pub struct TriggerContext {
    /// API client.
    pub client: Client,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Reconcile metrics (shared with the Function controller, label `kind="Trigger"`).
    pub metrics: Metrics,
    /// Hosts `uri` destinations may name (`--allowed-hosts`).
    pub allowed_hosts: AllowedHosts,
    failures: Failures,
}

impl TriggerContext {
    /// Creates a context.
    pub fn new(client: Client, recorder: Recorder, metrics: Metrics) -> Self {
        Self {
            client,
            recorder,
            metrics,
            allowed_hosts: AllowedHosts::new(CLUSTER_DOMAIN),
            failures: Failures::default(),
        }
    }

    /// Uses `allowed` as the outbound allow-list instead of in-cluster Services only.
    pub fn with_allowed_hosts(mut self, allowed: AllowedHosts) -> Self {
        self.allowed_hosts = allowed;
        self
    }
}

/// Reconciles one Trigger, recording metrics.
pub async fn reconcile(trigger: Arc<Trigger>, ctx: Arc<TriggerContext>) -> Result<Action, TriggerError> {
    let started = Instant::now();
    let kind = KindLabels { kind: KIND };
    ctx.metrics.reconciles.get_or_create(&kind).inc();
    let result = reconcile_trigger(&trigger, &ctx).await;
    ctx.metrics
        .duration
        .get_or_create(&kind)
        .observe(started.elapsed().as_secs_f64());
    match &result {
        Ok(_) => ctx.failures.clear(&key(trigger.as_ref())),
        Err(e) => {
            let labels = ErrorLabels {
                kind: KIND,
                reason: e.metric_reason(),
            };
            ctx.metrics.errors.get_or_create(&labels).inc();
        }
    }
    result
}

/// Decides when to retry a failed reconciliation: exponential back-off per Trigger.
pub fn error_policy(trigger: Arc<Trigger>, error: &TriggerError, ctx: Arc<TriggerContext>) -> Action {
    let key = key(trigger.as_ref());
    let delay = backoff(ctx.failures.record(key.clone()));
    tracing::warn!(trigger = %key, error = %chain(error), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn reconcile_trigger(trigger: &Trigger, ctx: &TriggerContext) -> Result<Action, TriggerError> {
    if trigger.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let validated = validate(trigger, &ctx.allowed_hosts)?;
    let lookups = lookup(&ctx.client, &validated.check).await?;
    let next = compute(trigger, &validated.check, &lookups, &now());
    apply_status(&validated, &next, ctx).await?;
    let kind_missing = next
        .condition(TRIGGER_CONDITION_READY)
        .is_some_and(|c| c.reason == TRIGGER_REASON_KIND_NOT_FOUND);
    // A missing Function needs no polling: the controller watches Functions.
    Ok(Action::requeue(if kind_missing { KIND_RECHECK } else { RESYNC }))
}

/// Writes `next` when it differs from the stored status, and publishes an Event when `Ready` changed.
async fn apply_status(
    validated: &ValidatedTrigger<'_>,
    next: &TriggerStatus,
    ctx: &TriggerContext,
) -> Result<(), TriggerError> {
    let previous = validated.trigger.status.clone().unwrap_or_default();
    if previous == *next {
        return Ok(());
    }
    patch_status(&ctx.client, validated, next).await?;
    if let Some(note) = events::trigger_ready_transition(&previous.conditions, &next.conditions) {
        events::publish(&ctx.recorder, validated.trigger, note).await;
    }
    Ok(())
}

fn now() -> Time {
    let now = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// Server-side applies the status fields the operator owns; `lastScheduleTime` belongs to the component
/// that runs the schedule and is left out, so this apply never removes it.
async fn patch_status(
    client: &Client,
    validated: &ValidatedTrigger<'_>,
    status: &TriggerStatus,
) -> Result<(), TriggerError> {
    let name = validated.name;
    let api: Api<Trigger> = Api::namespaced(client.clone(), validated.namespace);
    let owned = TriggerStatus {
        last_schedule_time: None,
        ..status.clone()
    };
    let body = json!({ "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Trigger", "status": owned });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| TriggerError::Status {
        name: name.to_string(),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
