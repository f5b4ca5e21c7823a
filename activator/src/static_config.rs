//! Functions and endpoints from a YAML file, so the activator runs without Kubernetes (tests,
//! benchmarks, local experiments). Read once at start; not reloaded.
//!
//! ```yaml
//! functions:
//!   - namespace: default
//!     name: hello
//!     concurrency: 0                  # per-pod limit, 0 = unlimited
//!     timeoutSeconds: 300
//!     responseStartTimeoutSeconds: 300 # optional, defaults to timeoutSeconds
//!     idleTimeoutSeconds: 0
//!     visibility: public              # or cluster-local
//!     protocol: http1                 # or h2c
//!     failure: {reason: ImagePullBackOff, message: "..."}  # optional
//!     endpoints:
//!       - address: 127.0.0.1:9000
//!         ready: true                 # optional, default true
//!         terminating: false          # optional, default false
//! ```

use std::{path::Path, time::Duration};

use serde::Deserialize;
use zeroscale_common::signals::FunctionKey;
use zeroscale_crds::function::{Protocol, Visibility};

use crate::{
    metering::{Declared, resources::quantity},
    settings::{EndpointInfo, FunctionSettings, StartupFailure},
    table::RoutingTable,
};

/// A static configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StaticConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("invalid static config: {0}")]
    Parse(#[from] serde_yaml::Error),
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// The functions.
    #[serde(default)]
    pub functions: Vec<StaticFunction>,
}

/// One function of the file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticFunction {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Per-pod in-flight limit; 0 = unlimited.
    #[serde(default)]
    pub concurrency: u32,
    /// Total deadline, queue time included.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Deadline to the response head.
    #[serde(default)]
    pub response_start_timeout_seconds: Option<u64>,
    /// Longest gap between response body chunks; 0 = none.
    #[serde(default)]
    pub idle_timeout_seconds: u64,
    /// `public` or `cluster-local`.
    #[serde(default)]
    pub visibility: Visibility,
    /// `http1` or `h2c`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Set to simulate a function that cannot start.
    #[serde(default)]
    pub failure: Option<StartupFailure>,
    /// Most requests in flight over all pods; 0 = no cap.
    #[serde(default)]
    pub max_concurrency: u32,
    /// Most requests waiting; unset leaves only `--queue-max-requests`.
    #[serde(default)]
    pub max_queued: Option<u32>,
    /// Pod addresses.
    #[serde(default)]
    pub endpoints: Vec<EndpointInfo>,
    /// Memory one pod is billed for (a Kubernetes quantity such as `128Mi`).
    #[serde(default)]
    pub memory: Option<String>,
    /// CPU one pod is billed for (a Kubernetes quantity such as `500m`).
    #[serde(default)]
    pub cpu: Option<String>,
}

fn default_timeout() -> u64 {
    300
}

impl StaticFunction {
    /// The function's settings.
    pub fn settings(&self) -> FunctionSettings {
        let timeout = Duration::from_secs(self.timeout_seconds.max(1));
        FunctionSettings {
            concurrency: self.concurrency,
            timeout,
            response_start_timeout: self
                .response_start_timeout_seconds
                .map_or(timeout, Duration::from_secs),
            idle_timeout: (self.idle_timeout_seconds > 0)
                .then(|| Duration::from_secs(self.idle_timeout_seconds)),
            visibility: self.visibility,
            protocol: self.protocol,
            port: self.endpoints.first().map_or(8080, |e| e.address.port()),
            failure: self.failure.clone(),
            declared: Declared {
                memory_bytes: self.memory.as_deref().and_then(quantity).map(|v| v.ceil() as u64),
                cpu_millis: self
                    .cpu
                    .as_deref()
                    .and_then(quantity)
                    .map(|v| (v * 1000.0).ceil() as u64),
            },
            uid: None,
            max_concurrency: self.max_concurrency,
            max_queued: self.max_queued,
        }
    }
}

impl StaticConfig {
    /// Parses a YAML document.
    pub fn parse(text: &str) -> Result<Self, StaticConfigError> {
        Ok(serde_yaml::from_str(text)?)
    }

    /// Reads and parses a file.
    pub async fn load(path: &Path) -> Result<Self, StaticConfigError> {
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|source| StaticConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
        Self::parse(&text)
    }

    /// Puts every function into `table`.
    pub fn apply(&self, table: &RoutingTable) {
        for f in &self.functions {
            table.apply(
                &FunctionKey::new(&f.namespace, &f.name),
                f.settings(),
                f.endpoints.clone(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let config = StaticConfig::parse(
            r#"
functions:
  - namespace: default
    name: hello
    concurrency: 2
    timeoutSeconds: 10
    visibility: cluster-local
    protocol: h2c
    failure: {reason: ImagePullBackOff}
    endpoints:
      - address: 127.0.0.1:9000
      - {address: "127.0.0.2:9000", ready: false}
"#,
        )
        .unwrap();
        let f = &config.functions[0];
        let s = f.settings();
        assert_eq!(s.concurrency, 2);
        assert_eq!(s.response_start_timeout, Duration::from_secs(10));
        assert_eq!(s.visibility, Visibility::ClusterLocal);
        assert_eq!(s.protocol, Protocol::H2c);
        assert_eq!(s.failure.unwrap().reason, "ImagePullBackOff");
        assert!(f.endpoints[0].ready && !f.endpoints[1].ready);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(StaticConfig::parse("functions: [{namespace: a, name: b, concurency: 1}]").is_err());
    }
}
