//! The autoscaler and the activator as host processes for one test, on free local ports, next to
//! an [`crate::Operator`]; each waits until its admin endpoint says it is ready.

use crate::metrics::{scrape, wait_admin_ready};
use crate::{ProcessGuard, free_addr, spawn_component};

/// An autoscaler process scoped to one namespace (functions and Lease), logging JSON.
pub struct Autoscaler {
    /// The autoscaler process.
    pub process: ProcessGuard,
    /// Its admin address (`host:port`).
    pub admin: String,
    /// The address it takes demand events on (`host:port`).
    pub events: String,
}

impl Autoscaler {
    /// Starts an autoscaler for `namespace` and waits until it is ready and leads. With
    /// `activator_ready_url`, it also checks the activator before scaling to zero.
    pub async fn start(namespace: &str, activator_ready_url: Option<&str>) -> Self {
        let (events, admin) = (free_addr(), free_addr());
        let mut args = vec![
            "run",
            "--namespace",
            namespace,
            "--lease-namespace",
            namespace,
            "--events-addr",
            &events,
            "--admin-addr",
            &admin,
            "--log-format",
            "json",
        ];
        if let Some(url) = activator_ready_url {
            args.extend(["--activator-ready-url", url]);
        }
        let process = spawn_component("zeroscale-autoscaler", &args, &[]);
        wait_admin_ready(&process, &admin, Some(("zeroscale_autoscaler_leader", 1.0))).await;
        Self {
            process,
            admin,
            events,
        }
    }

    /// The URL activators send demand events to (`--autoscaler-url`).
    pub fn events_url(&self) -> String {
        format!("http://{}/", self.events)
    }
}

/// An activator process on free ports (every listener, the broker's too, so activators of parallel
/// tests never collide on a default port).
pub struct Activator {
    /// The activator process.
    pub process: ProcessGuard,
    /// Its in-cluster data address (`host:port`).
    pub internal: String,
    /// Its external data address (`host:port`).
    pub external: String,
    /// Its admin address (`host:port`).
    pub admin: String,
    /// Its broker ingress address (`host:port`).
    pub broker: String,
}

impl Activator {
    /// The `/ready` URL of an activator whose admin address is `admin`: an autoscaler started before
    /// the activator gets it as `--activator-ready-url`.
    pub fn ready_url(admin: &str) -> String {
        format!("http://{admin}/ready")
    }

    /// Starts an activator named `pod_name` that sends demand to `autoscaler_url` (empty: no signals)
    /// and serves its admin endpoint on `admin` (a [`free_addr`]), with `extra` arguments (which must
    /// include `--log-format`) and `env`; waits until it is ready.
    pub async fn start(
        pod_name: &str,
        autoscaler_url: &str,
        admin: String,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let (internal, external, broker) = (free_addr(), free_addr(), free_addr());
        let mut args = vec![
            "--internal-addr",
            &internal,
            "--external-addr",
            &external,
            "--admin-addr",
            &admin,
            "--broker-addr",
            &broker,
            "--autoscaler-url",
            autoscaler_url,
            "--pod-name",
            pod_name,
        ];
        args.extend_from_slice(extra);
        let process = spawn_component("zeroscale-activator", &args, env);
        wait_admin_ready(&process, &admin, None).await;
        Self {
            process,
            internal,
            external,
            admin,
            broker,
        }
    }

    /// Its `/metrics` text, if it answers.
    pub async fn metrics(&self) -> Option<String> {
        scrape(&self.admin).await
    }

    /// Its JSON log lines whose `message` is `msg` (needs `--log-format json`).
    pub fn log_lines(&self, msg: &str) -> Vec<serde_json::Value> {
        json_log_lines(&self.process, msg)
    }
}

/// `process`'s JSON log lines whose `message` is `msg`.
pub fn json_log_lines(process: &ProcessGuard, msg: &str) -> Vec<serde_json::Value> {
    process
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == msg)
        .collect()
}
