//! Probe specifications and their state machine (pure). The IO that runs a probe is in `prober.rs`.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Pod annotation overriding `periodSeconds` of every probe of the pod, in milliseconds, because the
/// Kubernetes API only has whole seconds and scale-from-zero tests want readiness within ~100 ms.
pub const PROBE_PERIOD_ANNOTATION: &str = "zeroscale.dev/probe-period-ms";

/// Errors while reading a probe.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The probe has no handler this agent supports (gRPC, or none at all).
    #[error("probe has no supported handler (httpGet, tcpSocket and exec are supported)")]
    Unsupported,
    /// A named port is not declared by the container, or a port number is out of range.
    #[error("probe port {0:?} is not a port of the container")]
    Port(String),
}

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAction {
    /// `GET http://<host>:<port><path>`; success is a status in 200..400.
    Http {
        /// Host to connect to (`None`: the pod IP).
        host: Option<String>,
        /// Port.
        port: u16,
        /// Path and query.
        path: String,
        /// Extra request headers.
        headers: Vec<(String, String)>,
    },
    /// A TCP connection to `<host>:<port>` succeeds.
    Tcp {
        /// Host to connect to (`None`: the pod IP).
        host: Option<String>,
        /// Port.
        port: u16,
    },
    /// A command run in the pod's network namespace exits 0.
    Exec {
        /// The command and its arguments.
        command: Vec<String>,
    },
}

/// A probe with its timing, in the units the agent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    /// What to do.
    pub action: ProbeAction,
    /// Wait before the first probe.
    pub initial_delay: Duration,
    /// Time between probes.
    pub period: Duration,
    /// Time limit of one probe.
    pub timeout: Duration,
    /// Consecutive successes that make it pass.
    pub success_threshold: u32,
    /// Consecutive failures that make it fail.
    pub failure_threshold: u32,
}

fn port_of(port: &IntOrString, container: &Container) -> Result<u16, ProbeError> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| ProbeError::Port(n.to_string())),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .or_else(|| name.parse().ok())
            .ok_or_else(|| ProbeError::Port(name.clone())),
    }
}

fn secs(value: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(u64::try_from(value.unwrap_or(default).max(0)).unwrap_or(0))
}

impl ProbeSpec {
    /// Reads a Kubernetes probe with the API's defaults (period 10 s, timeout 1 s, thresholds 1 and 3).
    /// `period_override` (from [`PROBE_PERIOD_ANNOTATION`]) replaces `periodSeconds`.
    pub fn from_k8s(
        probe: &Probe,
        container: &Container,
        period_override: Option<Duration>,
    ) -> Result<Self, ProbeError> {
        let action = if let Some(http) = &probe.http_get {
            ProbeAction::Http {
                host: http.host.clone().filter(|h| !h.is_empty()),
                port: port_of(&http.port, container)?,
                path: http
                    .path
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "/".to_string()),
                headers: http
                    .http_headers
                    .iter()
                    .flatten()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
            }
        } else if let Some(tcp) = &probe.tcp_socket {
            ProbeAction::Tcp {
                host: tcp.host.clone().filter(|h| !h.is_empty()),
                port: port_of(&tcp.port, container)?,
            }
        } else if let Some(exec) = probe.exec.as_ref().and_then(|e| e.command.clone()) {
            ProbeAction::Exec { command: exec }
        } else {
            return Err(ProbeError::Unsupported);
        };
        Ok(Self {
            action,
            initial_delay: secs(probe.initial_delay_seconds, 0),
            period: period_override
                .unwrap_or_else(|| secs(probe.period_seconds, 10))
                .max(Duration::from_millis(10)),
            timeout: secs(probe.timeout_seconds, 1).max(Duration::from_millis(100)),
            success_threshold: u32::try_from(probe.success_threshold.unwrap_or(1).max(1)).unwrap_or(1),
            failure_threshold: u32::try_from(probe.failure_threshold.unwrap_or(3).max(1)).unwrap_or(3),
        })
    }
}

/// Consecutive results of one probe, and whether it currently passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTracker {
    passing: bool,
    successes: u32,
    failures: u32,
}

impl ProbeTracker {
    /// A tracker starting as `passing` (readiness starts failing, liveness passing, as in the kubelet).
    pub fn new(passing: bool) -> Self {
        Self {
            passing,
            successes: 0,
            failures: 0,
        }
    }

    /// Whether the probe currently passes.
    pub fn passing(&self) -> bool {
        self.passing
    }

    /// Records one result; returns the new state when it flips.
    pub fn record(&mut self, ok: bool, spec: &ProbeSpec) -> Option<bool> {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if !self.passing && self.successes >= spec.success_threshold {
                self.passing = true;
                return Some(true);
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.passing && self.failures >= spec.failure_threshold {
                self.passing = false;
                return Some(false);
            }
        }
        None
    }
}

/// Reads [`PROBE_PERIOD_ANNOTATION`] from pod annotations.
pub fn period_override(annotations: Option<&std::collections::BTreeMap<String, String>>) -> Option<Duration> {
    annotations?
        .get(PROBE_PERIOD_ANNOTATION)?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, HTTPGetAction};

    fn container() -> Container {
        Container {
            name: "c".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    fn http_probe() -> Probe {
        Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::String("http".into()),
                ..Default::default()
            }),
            period_seconds: Some(2),
            failure_threshold: Some(2),
            ..Default::default()
        }
    }

    #[test]
    fn reads_named_ports_defaults_and_the_override() {
        let spec = ProbeSpec::from_k8s(&http_probe(), &container(), None).unwrap();
        assert_eq!(
            spec.action,
            ProbeAction::Http {
                host: None,
                port: 8080,
                path: "/".into(),
                headers: vec![]
            }
        );
        assert_eq!(spec.period, Duration::from_secs(2));
        assert_eq!(spec.timeout, Duration::from_secs(1));
        let fast = ProbeSpec::from_k8s(&http_probe(), &container(), Some(Duration::from_millis(50))).unwrap();
        assert_eq!(fast.period, Duration::from_millis(50));
    }

    #[test]
    fn unknown_named_port_is_an_error() {
        let mut p = http_probe();
        p.http_get = Some(HTTPGetAction {
            port: IntOrString::String("nope".into()),
            ..Default::default()
        });
        assert!(matches!(
            ProbeSpec::from_k8s(&p, &container(), None),
            Err(ProbeError::Port(_))
        ));
        assert!(matches!(
            ProbeSpec::from_k8s(&Probe::default(), &container(), None),
            Err(ProbeError::Unsupported)
        ));
    }

    #[test]
    fn flips_only_at_the_thresholds() {
        let spec = ProbeSpec::from_k8s(&http_probe(), &container(), None).unwrap();
        let mut t = ProbeTracker::new(false);
        assert_eq!(t.record(false, &spec), None);
        assert_eq!(t.record(true, &spec), Some(true));
        assert_eq!(t.record(false, &spec), None);
        assert_eq!(t.record(true, &spec), None);
        assert_eq!(t.record(false, &spec), None);
        assert_eq!(t.record(false, &spec), Some(false));
        assert!(!t.passing());
    }

    #[test]
    fn reads_the_period_annotation() {
        let mut a = std::collections::BTreeMap::new();
        a.insert(PROBE_PERIOD_ANNOTATION.to_string(), "100".to_string());
        assert_eq!(period_override(Some(&a)), Some(Duration::from_millis(100)));
        assert_eq!(period_override(None), None);
    }
}
