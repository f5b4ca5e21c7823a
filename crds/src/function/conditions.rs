//! Condition types, reasons and the labels that tie a Function to its children.

/// Condition type: the function is ready to serve (every other condition is true).
pub const CONDITION_READY: &str = "Ready";
/// Condition type: the Deployment has rolled out and its pods are available or scaled to zero.
pub const CONDITION_DEPLOYMENT_READY: &str = "DeploymentReady";
/// Condition type: the Services that route traffic to the function exist.
pub const CONDITION_ROUTES_READY: &str = "RoutesReady";
/// Condition type: the function has ready pods, or is at zero by choice.
pub const CONDITION_ACTIVE: &str = "Active";
/// Condition type: no container of a current pod was last killed for exceeding its memory limit
/// (Knative's `ContainerHealthy`). Informational: it does not make `Ready` false, because the
/// restarted container may serve again; a pod that cannot start because of it does, through
/// `DeploymentReady`.
pub const CONDITION_CONTAINER_HEALTHY: &str = "ContainerHealthy";

/// Reasons on a `Ready=False` condition that mean the function cannot start; the activator answers
/// waiting requests with 503 and the reason instead of holding them until their deadline.
pub const STARTUP_FAILURE_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    REASON_OOM_KILLED,
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "Unschedulable",
    "ProgressDeadlineExceeded",
    "FailedCreate",
];

/// Reason: a container was killed by the kernel for exceeding its memory limit (the kubelet's
/// `terminated.reason`), also when the kubelet now reports it as `CrashLoopBackOff`.
pub const REASON_OOM_KILLED: &str = "OOMKilled";
/// Reason (on `ContainerHealthy=True`): no container of a current pod was last OOMKilled.
pub const REASON_HEALTHY: &str = "Healthy";
/// Reason: every condition holds.
pub const REASON_READY: &str = "Ready";
/// Reason: the Deployment's pods are available.
pub const REASON_AVAILABLE: &str = "Available";
/// Reason: the function runs no pods because the autoscaler scaled it to zero.
pub const REASON_SCALED_TO_ZERO: &str = "ScaledToZero";
/// Reason: the Deployment is rolling out or its pods are starting.
pub const REASON_PROGRESSING: &str = "Progressing";
/// Reason: the Deployment does not exist (yet).
pub const REASON_DEPLOYMENT_MISSING: &str = "DeploymentMissing";
/// Reason: the public and private Services exist.
pub const REASON_ROUTES_CREATED: &str = "RoutesCreated";
/// Reason: the Services could not be applied.
pub const REASON_ROUTES_FAILED: &str = "RoutesFailed";
/// Reason: a child object with the Function's child name exists but is not controlled by the Function.
pub const REASON_NOT_OWNED: &str = "NotOwned";
/// Reason: the Deployment could not be applied.
pub const REASON_APPLY_FAILED: &str = "ApplyFailed";
/// Reason: the spec failed the operator's own validation (admission normally prevents it).
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
/// Reason: the function has ready pods.
pub const REASON_HAS_READY_PODS: &str = "HasReadyPods";
/// Reason (on `Active=Unknown`): the function wants pods but none is ready yet, as during a cold start.
pub const REASON_ACTIVATING: &str = "Activating";
/// Reason (on `Ready=False`): the automated canary found the new revision breaching
/// `spec.rollout`'s limits and moved all traffic back to the previous revision.
pub const REASON_ROLLED_BACK: &str = "RolledBack";

/// Label on every child object and on the function's pods: the Function's name.
pub const FUNCTION_LABEL: &str = "zeroscale.dev/function";
/// The standard `managed-by` label key.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`] on every child object.
pub const MANAGED_BY: &str = "zeroscale";
/// Suffix of the private (headless) Service's name: `<name>-private`.
pub const PRIVATE_SERVICE_SUFFIX: &str = "-private";
/// Longest Function name: a revision's name, `<name>-<10 hex digits>`, which also names its
/// Deployment and private Service, must stay a 63-character DNS label.
pub const MAX_NAME_LENGTH: usize = crate::revision::MAX_FUNCTION_NAME_LENGTH;

/// Name of the private (headless) Service a Function had before revisions (one per Function); the
/// operator deletes it on upgrade. Revisions' private Services are named like the revision.
pub fn private_service_name(function: &str) -> String {
    format!("{function}{PRIVATE_SERVICE_SUFFIX}")
}
