//! The `Function` custom resource (`zeroscale.dev/v1alpha1`, short name `fn`).
//!
//! Every field's `///` doc becomes its schema description; bounds are OpenAPI validations and the
//! cross-field rules are CEL `x-kubernetes-validations` whose messages name the field, so the API server
//! rejects invalid Functions at admission without a webhook.

mod async_spec;
mod conditions;
mod prediction;
mod resolved;
mod rollout;
mod rollout_status;
mod scale;
mod schedule;
mod security;
mod traffic;

use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar, LocalObjectReference, Probe, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use async_spec::{AsyncSpec, DEFAULT_ASYNC_RETRIES, DEFAULT_MAX_EVENT_AGE, MAX_ASYNC_RETRIES};
pub use conditions::*;
pub use prediction::{IdleBin, Prediction};
pub use resolved::{
    DEFAULT_CONCURRENCY_TARGET, DEFAULT_RPS_TARGET, MAX_DURATION, MIN_WINDOW, ResolvedScale, ScaleError,
};
pub use rollout::{
    ERROR_RATE_PATTERN, MAX_INTERVAL, MAX_STEPS, MIN_INTERVAL, ResolvedRollout, RolloutError, RolloutSpec,
    parse_percent,
};
pub use rollout_status::{RolloutPhase, RolloutStatus};
pub use scale::{DURATION_PATTERN, ScaleMetric, ScalePolicy, ScaleSpec};
pub use schedule::{
    MAX_SCHEDULES, ParsedSchedule, SCHEDULE_CRON_PATTERN, ScaleSchedule, ScheduleError, TIME_ZONE_PATTERN,
    parse_schedules,
};
pub use security::{FunctionSecurityContext, RUN_AS_NON_ROOT_MESSAGE, RUN_AS_USER_MESSAGE};
pub use traffic::{
    DEFAULT_REVISION_HISTORY_LIMIT, DNS_LABEL_PATTERN, MAX_TRAFFIC_TARGETS, ONE_TARGET_MESSAGE,
    REASON_REVISION_MISSING, REVISION_NAME_PATTERN, RevisionStatus, SUM_MESSAGE, TrafficStatus,
    TrafficTarget, UNIQUE_TAG_MESSAGE, default_traffic,
};

/// A function: a container image serving HTTP on `$PORT`, scaled by demand, to zero when idle.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "zeroscale.dev",
    version = "v1alpha1",
    kind = "Function",
    namespaced,
    shortname = "fn",
    category = "zeroscale",
    doc = "A function: a container image serving HTTP on `$PORT`, reached through the activator and scaled by demand, to zero when idle.",
    status = "FunctionStatus",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"REPLICAS","type":"string","jsonPath":".status.replicasSummary"}"#,
    printcolumn = r#"{"name":"LATEST","type":"string","jsonPath":".status.latestReadyRevisionName"}"#,
    printcolumn = r#"{"name":"REASON","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = spec_rules)]
pub struct FunctionSpec {
    /// Container image that serves HTTP on `$PORT`. Required.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Entrypoint override, as in a Pod container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Arguments to the entrypoint, as in a Pod container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Environment variables, as in a Pod container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    /// Sources of environment variables, as in a Pod container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_from: Option<Vec<EnvFromSource>>,
    /// Compute resources, as in a Pod container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Container port the function listens on (1–65535, default 8080); exported to it as `PORT`.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Protocol the function speaks: `http1` or `h2c` (HTTP/2 without TLS, for gRPC).
    #[serde(default)]
    pub protocol: Protocol,
    /// Readiness probe; by default a TCP probe on `port`, probed aggressively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// What the function may change of the restricted security context its pods run with (non-root,
    /// seccomp `RuntimeDefault`, no privilege escalation, every capability dropped): user and group ids
    /// and a read-only root filesystem. Nothing the `restricted` Pod Security Standard forbids is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<FunctionSecurityContext>,
    /// ServiceAccount the function's pods run as. Unset: the pods get no API token
    /// (`automountServiceAccountToken: false`); name an account, `default` too, to get its token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Secrets used to pull the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// Hard limit of requests in flight per pod (Knative `containerConcurrency`), 0–1000; 0 means unlimited.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub concurrency: i32,
    /// Total deadline of a request in seconds (1–3600, default 300), time spent queued included. A pod
    /// being stopped gets this long (after its `preStop` sleep) to finish the requests in flight.
    #[serde(default = "default_timeout_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: i64,
    /// Deadline to the first response byte in seconds (1–3600); defaults to `timeoutSeconds` and must not
    /// exceed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub response_start_timeout_seconds: Option<i64>,
    /// Longest gap in seconds between bytes of a streaming response (0–3600, at most `timeoutSeconds`);
    /// 0 means no limit.
    #[serde(default)]
    #[schemars(range(min = 0, max = 3600))]
    pub idle_timeout_seconds: i64,
    /// Who can reach the function: `public` (through the activator's external port) or `cluster-local`.
    #[serde(default)]
    pub visibility: Visibility,
    /// How the function scales (each revision on its own traffic, with these settings).
    #[serde(default)]
    pub scale: ScaleSpec,
    /// Which revisions take which share of the requests, and tags that give a revision its own
    /// address. Absent: 100 % to the latest ready revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub traffic: Option<Vec<TrafficTarget>>,
    /// Revisions to keep besides those that take traffic, have a tag or are the latest (0–100,
    /// default 5); older ones are deleted at reconcile time.
    #[serde(default = "default_revision_history_limit")]
    #[schemars(range(min = 0, max = 100))]
    pub revision_history_limit: i32,
    /// Automated canary: when set, a new revision takes the latest revision's traffic in steps, each
    /// held while the activators' counts stay within the limits, and is rolled back on a breach. Unset:
    /// the latest ready revision takes it at once. See docs/canary.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutSpec>,
    /// How asynchronous invocations (requests with `Prefer: respond-async`) are retried, how old they
    /// may grow and where their results go; defaults apply when omitted.
    #[serde(default, rename = "async", skip_serializing_if = "Option::is_none")]
    pub async_: Option<AsyncSpec>,
}

fn default_revision_history_limit() -> i32 {
    DEFAULT_REVISION_HISTORY_LIMIT
}

fn default_port() -> i32 {
    8080
}

fn default_timeout_seconds() -> i64 {
    300
}

/// Adds the cross-field CEL rules of `spec`.
fn spec_rules(schema: &mut Schema) {
    let mut rules = vec![
        scale::rule(
            "self.concurrency == 0 || !has(self.scale) || !has(self.scale.target) || self.scale.target <= double(self.concurrency)",
            "spec.scale.target must not exceed spec.concurrency",
        ),
        scale::rule(
            "!has(self.responseStartTimeoutSeconds) || self.responseStartTimeoutSeconds <= self.timeoutSeconds",
            "spec.responseStartTimeoutSeconds must not exceed spec.timeoutSeconds",
        ),
        scale::rule(
            "self.idleTimeoutSeconds <= self.timeoutSeconds",
            "spec.idleTimeoutSeconds must not exceed spec.timeoutSeconds",
        ),
    ];
    rules.extend(traffic::traffic_rules());
    schema.insert("x-kubernetes-validations".into(), Value::Array(rules));
}

/// Protocol between the activator and the function's pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1.
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge, without TLS (gRPC).
    H2c,
}

/// Who can reach a function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Visibility {
    /// Reachable from outside the cluster through the activator's external port.
    #[default]
    Public,
    /// Reachable only from inside the cluster.
    ClusterLocal,
}

/// What the operator last observed and applied for a Function.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// External URL: `http://<name>.<namespace>.<domain>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// In-cluster URL: `http://<name>.<namespace>.svc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Pods the revisions' Deployments have, summed over every revision.
    #[serde(default)]
    pub replicas: i32,
    /// Pods that are ready, summed over every revision.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Pods the autoscaler wants (the revisions' Deployments' `spec.replicas`, summed).
    #[serde(default)]
    pub desired_replicas: i32,
    /// `ready/desired` summed over every revision, for the REPLICAS printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas_summary: Option<String>,
    /// Conditions `Ready`, `DeploymentReady`, `RoutesReady`, `Active` and `ContainerHealthy`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The revision the current spec makes (`<name>-<hash>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_created_revision_name: Option<String>,
    /// The newest revision that became ready: where `latestRevision: true` traffic goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_ready_revision_name: Option<String>,
    /// `spec.traffic` resolved to concrete revisions: the only routes the activator follows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficStatus>,
    /// Every revision the Function has, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<RevisionStatus>,
    /// What the autoscaler learned of a `predictive` function's idle times, so a restart keeps it.
    /// Written by the autoscaler (field manager `zeroscale-autoscaler`), never by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Prediction>,
    /// Progress of the latest automated canary (`spec.rollout`), so an operator restart continues it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,
}

impl Function {
    /// The reason and message when the function cannot start (see [`STARTUP_FAILURE_REASONS`]).
    pub fn startup_failure(&self) -> Option<(&str, &str)> {
        let ready = self
            .status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_READY)?;
        (ready.status == "False" && STARTUP_FAILURE_REASONS.contains(&ready.reason.as_str()))
            .then_some((ready.reason.as_str(), ready.message.as_str()))
    }
}
