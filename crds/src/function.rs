//! The `Function` custom resource (`zeroscale.dev/v1alpha1`, short name `fn`).

use k8s_openapi::api::core::v1::{
    EnvFromSource, EnvVar, LocalObjectReference, Probe, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type: the function is ready to serve (every other condition is true).
pub const CONDITION_READY: &str = "Ready";
/// Condition type: the Deployment has rolled out and its pods are available or scaled to zero.
pub const CONDITION_DEPLOYMENT_READY: &str = "DeploymentReady";
/// Condition type: the Services that route traffic to the function exist.
pub const CONDITION_ROUTES_READY: &str = "RoutesReady";
/// Condition type: the function has ready pods, or is at zero by choice.
pub const CONDITION_ACTIVE: &str = "Active";

/// Reasons on a `Ready=False` condition that mean the function cannot start; the activator answers
/// waiting requests with 503 and the reason instead of holding them until their deadline.
pub const STARTUP_FAILURE_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "Unschedulable",
    "ProgressDeadlineExceeded",
    "FailedCreate",
];

/// A function: a container image serving HTTP on `$PORT`, scaled by demand, to zero when idle.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "zeroscale.dev",
    version = "v1alpha1",
    kind = "Function",
    namespaced,
    shortname = "fn",
    category = "zeroscale",
    status = "FunctionStatus",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"REPLICAS","type":"string","jsonPath":".status.replicasSummary"}"#,
    printcolumn = r#"{"name":"REASON","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FunctionSpec {
    /// Container image that serves HTTP on `$PORT`.
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
    /// Container port the function listens on; exported to it as `PORT`.
    #[serde(default = "default_port")]
    pub port: i32,
    /// Protocol the function speaks: `http1` or `h2c` (HTTP/2 without TLS, for gRPC).
    #[serde(default)]
    pub protocol: Protocol,
    /// Readiness probe; by default a TCP probe on `port`, probed aggressively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// ServiceAccount the function's pods run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Secrets used to pull the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// Hard limit of requests in flight per pod (Knative `containerConcurrency`); 0 means unlimited.
    #[serde(default)]
    pub concurrency: i32,
    /// Total deadline of a request in seconds, time spent queued included.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: i64,
    /// Deadline to the first response byte in seconds; defaults to `timeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_start_timeout_seconds: Option<i64>,
    /// Longest gap in seconds between bytes of a streaming response; 0 means no limit.
    #[serde(default)]
    pub idle_timeout_seconds: i64,
    /// Who can reach the function: `public` (through the activator's external port) or `cluster-local`.
    #[serde(default)]
    pub visibility: Visibility,
    /// How the function scales.
    #[serde(default)]
    pub scale: ScaleSpec,
}

fn default_port() -> i32 {
    8080
}

fn default_timeout_seconds() -> i64 {
    300
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

/// The metric a function scales on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScaleMetric {
    /// Requests in flight per pod.
    #[default]
    Concurrency,
    /// Requests per second per pod.
    Rps,
}

/// How a function scales (Knative KPA semantics and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleSpec {
    /// Fewest replicas; 0 allows scaling to zero.
    #[serde(default)]
    pub min: i32,
    /// Most replicas; 0 means unbounded.
    #[serde(default)]
    pub max: i32,
    /// Replicas at creation.
    #[serde(default = "default_initial")]
    pub initial: i32,
    /// Metric to scale on: `concurrency` or `rps`.
    #[serde(default)]
    pub metric: ScaleMetric,
    /// Per-pod target of the metric; defaults to 100 for concurrency and 200 for rps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Share of the target to aim for, in percent.
    #[serde(default = "default_target_utilization")]
    pub target_utilization_percentage: f64,
    /// Stable window, such as `60s`.
    #[serde(default = "default_window")]
    pub window: String,
    /// Panic window as a percentage of the stable window.
    #[serde(default = "default_panic_window_percentage")]
    pub panic_window_percentage: f64,
    /// Enter panic mode when the panic-window demand reaches this percentage of current capacity.
    #[serde(default = "default_panic_threshold_percentage")]
    pub panic_threshold_percentage: f64,
    /// Idle time after the stable window before scaling to zero, such as `30s`.
    #[serde(default = "default_grace")]
    pub scale_to_zero_grace_period: String,
    /// Hold the peak this long before scaling down, such as `0s`.
    #[serde(default = "default_scale_down_delay")]
    pub scale_down_delay: String,
    /// Largest factor by which one decision may multiply the ready pods.
    #[serde(default = "default_max_scale_up_rate")]
    pub max_scale_up_rate: f64,
    /// Largest factor by which one decision may divide the ready pods.
    #[serde(default = "default_max_scale_down_rate")]
    pub max_scale_down_rate: f64,
}

impl Default for ScaleSpec {
    fn default() -> Self {
        Self {
            min: 0,
            max: 0,
            initial: default_initial(),
            metric: ScaleMetric::default(),
            target: None,
            target_utilization_percentage: default_target_utilization(),
            window: default_window(),
            panic_window_percentage: default_panic_window_percentage(),
            panic_threshold_percentage: default_panic_threshold_percentage(),
            scale_to_zero_grace_period: default_grace(),
            scale_down_delay: default_scale_down_delay(),
            max_scale_up_rate: default_max_scale_up_rate(),
            max_scale_down_rate: default_max_scale_down_rate(),
        }
    }
}

fn default_initial() -> i32 {
    1
}
fn default_target_utilization() -> f64 {
    70.0
}
fn default_window() -> String {
    "60s".to_string()
}
fn default_panic_window_percentage() -> f64 {
    10.0
}
fn default_panic_threshold_percentage() -> f64 {
    200.0
}
fn default_grace() -> String {
    "30s".to_string()
}
fn default_scale_down_delay() -> String {
    "0s".to_string()
}
fn default_max_scale_up_rate() -> f64 {
    1000.0
}
fn default_max_scale_down_rate() -> f64 {
    2.0
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
    /// Pods the Deployment has.
    #[serde(default)]
    pub replicas: i32,
    /// Pods that are ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Pods the autoscaler wants (the Deployment's `spec.replicas`).
    #[serde(default)]
    pub desired_replicas: i32,
    /// `ready/desired`, for the REPLICAS printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas_summary: Option<String>,
    /// Conditions `Ready`, `DeploymentReady`, `RoutesReady` and `Active`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
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
