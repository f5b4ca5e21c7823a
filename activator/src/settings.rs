//! What the activator needs to know about one function, independent of where it came from (the
//! Kubernetes API or a static file).

use std::{net::SocketAddr, time::Duration};

use serde::Deserialize;

use crate::metering::Declared;
use zeroscale_crds::revision_runtime::RevisionRuntime;
use zeroscale_crds::{
    Function,
    function::{Protocol, Visibility},
};

/// Why a function cannot start, read from its `Ready=False` condition.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct StartupFailure {
    /// Condition reason, such as `ImagePullBackOff`.
    pub reason: String,
    /// Condition message.
    #[serde(default)]
    pub message: String,
}

/// Per-function settings that shape how requests are queued, balanced and timed.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionSettings {
    /// Most requests in flight per pod; 0 means unlimited.
    pub concurrency: u32,
    /// Total deadline from arrival, queue time included.
    pub timeout: Duration,
    /// Deadline from arrival to the response head.
    pub response_start_timeout: Duration,
    /// Longest gap between response body chunks; `None` means no limit.
    pub idle_timeout: Option<Duration>,
    /// Whether the function is reachable on the external port.
    pub visibility: Visibility,
    /// Protocol towards the pods.
    pub protocol: Protocol,
    /// Container port of the pods (used to build endpoint addresses from pod IPs).
    pub port: u16,
    /// Set when the function cannot start.
    pub failure: Option<StartupFailure>,
    /// The memory and CPU its container declares (for metering).
    pub declared: Declared,
    /// The Function object's uid (Events name it), when it came from Kubernetes.
    pub uid: Option<String>,
    /// Most requests in flight for the function across its pods (`spec.scale.maxConcurrency`,
    /// enforced by the function's owner activator); 0 means no cap.
    pub max_concurrency: u32,
    /// Most requests waiting for the function (`spec.scale.maxQueued`); `None` leaves only
    /// `--queue-max-requests`.
    pub max_queued: Option<u32>,
}

impl Default for FunctionSettings {
    fn default() -> Self {
        Self {
            concurrency: 0,
            timeout: Duration::from_secs(300),
            response_start_timeout: Duration::from_secs(300),
            idle_timeout: None,
            visibility: Visibility::Public,
            protocol: Protocol::Http1,
            port: 8080,
            failure: None,
            declared: Declared::default(),
            uid: None,
            max_concurrency: 0,
            max_queued: None,
        }
    }
}

/// Converts API seconds to a duration, clamping nonsense (negative or zero) to at least one second.
pub(crate) fn seconds(value: i64) -> Duration {
    Duration::from_secs(value.max(1).unsigned_abs())
}

impl FunctionSettings {
    /// Settings from a `Function` object (spec plus its startup-failure status).
    pub fn from_function(function: &Function) -> Self {
        let spec = &function.spec;
        let settings = Self {
            concurrency: 0,
            timeout: Duration::ZERO,
            response_start_timeout: Duration::ZERO,
            idle_timeout: None,
            visibility: spec.visibility,
            protocol: spec.protocol,
            port: 8080,
            failure: function
                .startup_failure()
                .map(|(reason, message)| StartupFailure {
                    reason: reason.to_string(),
                    message: message.to_string(),
                }),
            declared: Declared::of(function),
            uid: function.metadata.uid.clone(),
            max_concurrency: u32::try_from(spec.scale.max_concurrency).unwrap_or(0),
            max_queued: spec.scale.max_queued.and_then(|n| u32::try_from(n).ok()),
        };
        // The runtime part (concurrency, timeouts, protocol, port) is read the one way a revision's is.
        with_runtime(&settings, &RevisionRuntime::of(spec))
    }
}

/// `settings` (the Function's, for one of its revisions) with the revision's own `runtime` in place
/// of what the Function's current spec says.
pub fn with_runtime(settings: &FunctionSettings, runtime: &RevisionRuntime) -> FunctionSettings {
    let timeout = seconds(runtime.timeout_seconds);
    FunctionSettings {
        concurrency: u32::try_from(runtime.concurrency).unwrap_or(0),
        timeout,
        response_start_timeout: runtime
            .response_start_timeout_seconds
            .map(seconds)
            .unwrap_or(timeout),
        idle_timeout: (runtime.idle_timeout_seconds > 0).then(|| seconds(runtime.idle_timeout_seconds)),
        protocol: runtime.protocol,
        port: u16::try_from(runtime.port).unwrap_or(settings.port),
        ..settings.clone()
    }
}

/// One address a function's pod serves on, with its readiness as last reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct EndpointInfo {
    /// Pod IP and port.
    pub address: SocketAddr,
    /// Reported ready (EndpointSlice `conditions.ready`).
    #[serde(default = "yes")]
    pub ready: bool,
    /// Reported terminating (EndpointSlice `conditions.terminating`): gets no new requests.
    #[serde(default)]
    pub terminating: bool,
}

fn yes() -> bool {
    true
}

impl EndpointInfo {
    /// A ready, non-terminating endpoint.
    pub fn ready(address: SocketAddr) -> Self {
        Self {
            address,
            ready: true,
            terminating: false,
        }
    }

    /// A known endpoint that is not ready yet (a probe candidate).
    pub fn starting(address: SocketAddr) -> Self {
        Self {
            address,
            ready: false,
            terminating: false,
        }
    }

    /// An endpoint whose pod is shutting down.
    pub fn terminating(address: SocketAddr) -> Self {
        Self {
            address,
            ready: false,
            terminating: true,
        }
    }
}

/// The timeouts and protocol a forwarded request works under.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Total deadline from arrival.
    pub timeout: Duration,
    /// Deadline from arrival to the response head.
    pub response_start_timeout: Duration,
    /// Longest gap between response body chunks.
    pub idle_timeout: Option<Duration>,
    /// Protocol towards the pod.
    pub protocol: Protocol,
}

impl Limits {
    /// The limits `settings` set.
    pub fn of(settings: &FunctionSettings) -> Self {
        Self {
            timeout: settings.timeout,
            response_start_timeout: settings.response_start_timeout,
            idle_timeout: settings.idle_timeout,
            protocol: settings.protocol,
        }
    }
}

/// Which data port a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// The external port: public functions only.
    External,
    /// The in-cluster port: every function.
    Internal,
}
