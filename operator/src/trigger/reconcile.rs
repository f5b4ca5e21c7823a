//! The Trigger reconciler: check the spec (pure), look up the Functions it names and the kind its
//! `kubernetes` source watches, compute the status (pure) and apply it when it changed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{GroupVersionKind, Patch, PatchParams};
use kube::error::DiscoveryError;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use zeroscale_crds::Function;
use zeroscale_crds::trigger::{
    TRIGGER_CONDITION_READY, TRIGGER_REASON_KIND_NOT_FOUND, Trigger, TriggerStatus,
};

use zeroscale_eventing::outbound::AllowedHosts;

use super::check::{CLUSTER_DOMAIN, SpecCheck};
use super::status::{Lookups, compute};
use crate::apply::FIELD_MANAGER;
use crate::error::{Error, chain};
use crate::events;
use crate::failures::{Failures, backoff};
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

fn key(trigger: &Trigger) -> String {
    format!(
        "{}/{}",
        trigger.namespace().unwrap_or_default(),
        trigger.name_any()
    )
}

/// Reconciles one Trigger, recording metrics.
pub async fn reconcile(trigger: Arc<Trigger>, ctx: Arc<TriggerContext>) -> Result<Action, Error> {
    let started = Instant::now();
    let kind = KindLabels { kind: KIND };
    ctx.metrics.reconciles.get_or_create(&kind).inc();
    let result = reconcile_trigger(&trigger, &ctx).await;
    ctx.metrics
        .duration
        .get_or_create(&kind)
        .observe(started.elapsed().as_secs_f64());
    match &result {
        Ok(_) => ctx.failures.clear(&key(&trigger)),
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
pub fn error_policy(trigger: Arc<Trigger>, error: &Error, ctx: Arc<TriggerContext>) -> Action {
    let delay = backoff(ctx.failures.record(key(&trigger)));
    tracing::warn!(trigger = %key(&trigger), error = %chain(error), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn reconcile_trigger(trigger: &Trigger, ctx: &TriggerContext) -> Result<Action, Error> {
    if trigger.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let check = SpecCheck::with_hosts(trigger, &ctx.allowed_hosts);
    let lookups = Lookups {
        missing_functions: missing_functions(&ctx.client, &check).await?,
        kind: match check.kind() {
            Some(gvk) => Some(served(&ctx.client, gvk).await?),
            None => None,
        },
    };
    let next = compute(trigger, &check, &lookups, &now());
    let previous = trigger.status.clone().unwrap_or_default();
    if previous != next {
        patch_status(&ctx.client, trigger, &next).await?;
        if let Some(note) = events::trigger_ready_transition(&previous.conditions, &next.conditions) {
            events::publish(&ctx.recorder, trigger, note).await;
        }
    }
    let kind_missing = next
        .condition(TRIGGER_CONDITION_READY)
        .is_some_and(|c| c.reason == TRIGGER_REASON_KIND_NOT_FOUND);
    // A missing Function needs no polling: the controller watches Functions.
    Ok(Action::requeue(if kind_missing { KIND_RECHECK } else { RESYNC }))
}

/// The Functions the Trigger names that do not exist. Read uncached: the Function watch that
/// re-triggers this reconcile may be ahead of any cache.
async fn missing_functions(client: &Client, check: &SpecCheck) -> Result<BTreeSet<String>, Error> {
    let api: Api<Function> = Api::namespaced(client.clone(), &check.namespace);
    let mut missing = BTreeSet::new();
    for name in check.functions() {
        let found = api.get_opt(&name).await.map_err(|source| Error::Read {
            what: format!("function {}/{name}", check.namespace),
            source,
        })?;
        if found.is_none() {
            missing.insert(name);
        }
    }
    Ok(missing)
}

/// Whether the API server serves `gvk`, by API discovery: `Err` with the reason when it does not; an
/// error when discovery itself fails (retried).
async fn served(client: &Client, gvk: &GroupVersionKind) -> Result<Result<(), String>, Error> {
    match kube::discovery::pinned_kind(client, gvk).await {
        Ok(_) => Ok(Ok(())),
        Err(kube::Error::Discovery(DiscoveryError::MissingKind(_))) => {
            Ok(Err(format!("its API version serves no kind {}", gvk.kind)))
        }
        Err(kube::Error::Api(status)) if status.code == 404 => {
            Ok(Err(format!("API version {} is not served", gvk.api_version())))
        }
        Err(source) => Err(Error::Read {
            what: format!("API discovery of {}", gvk.api_version()),
            source,
        }),
    }
}

fn now() -> Time {
    let now = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// Server-side applies the status fields the operator owns; `lastScheduleTime` belongs to the component
/// that runs the schedule and is left out, so this apply never removes it.
async fn patch_status(client: &Client, trigger: &Trigger, status: &TriggerStatus) -> Result<(), Error> {
    let name = trigger.name_any();
    let api: Api<Trigger> = Api::namespaced(client.clone(), &trigger.namespace().unwrap_or_default());
    let owned = TriggerStatus {
        last_schedule_time: None,
        ..status.clone()
    };
    let body = json!({ "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Trigger", "status": owned });
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| Error::TriggerStatus { name, source })?;
    Ok(())
}
