//! An operator process for tests that reconcile one namespace: `--watch-namespace` plus a Lease in
//! that namespace, so tests run side by side without seeing each other's objects.

use std::time::Duration;

use crate::{ProcessGuard, apply_yaml_cluster, http_get, kubectl_ok, spawn_component, wait_for};

/// The Function CRD as generated.
pub const FUNCTION_CRD: &str = include_str!("../../crds/yaml/functions.zeroscale.dev.yaml");

/// Installs the Function CRD (idempotent) and waits until it is served.
pub async fn install_function_crd() {
    apply_yaml_cluster(FUNCTION_CRD).await;
    kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/functions.zeroscale.dev",
    ])
    .await;
}

/// An operator process reconciling only `namespace`.
pub struct Operator {
    /// The operator process.
    pub process: ProcessGuard,
    /// Its admin address (`host:port`).
    pub admin: String,
}

impl Operator {
    /// Starts an operator and waits until it leads and its cache has synced.
    pub async fn start(namespace: &str) -> Self {
        let operator = Self::spawn(namespace);
        operator.wait_leading().await;
        operator
    }

    /// Starts an operator without waiting for it.
    pub fn spawn(namespace: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let admin = format!("127.0.0.1:{port}");
        let args = [
            "--watch-namespace",
            namespace,
            "--lease-namespace",
            namespace,
            "--admin-addr",
            &admin,
            "--log-format",
            "plain",
        ];
        let process = spawn_component("zeroscale-operator", &args, &[]);
        Self { process, admin }
    }

    /// Whether `/ready` answers 200.
    pub async fn ready(&self) -> bool {
        http_get(&format!("http://{}/ready", self.admin))
            .await
            .is_ok_and(|r| r.status == 200)
    }

    /// Whether it reports holding the Lease.
    pub async fn leading(&self) -> bool {
        self.metrics()
            .await
            .is_some_and(|m| m.contains("zeroscale_operator_leader 1"))
    }

    /// Waits up to 60 s until it leads and is ready.
    pub async fn wait_leading(&self) {
        let what = format!(
            "operator to lead and sync (log: {})",
            self.process.log_path().display()
        );
        wait_for(Duration::from_secs(60), &what, || async {
            (self.ready().await && self.leading().await).then_some(())
        })
        .await;
    }

    /// Its `/metrics` text, if it answers.
    pub async fn metrics(&self) -> Option<String> {
        Some(
            http_get(&format!("http://{}/metrics", self.admin))
                .await
                .ok()?
                .text(),
        )
    }

    /// `zeroscale_operator_reconciles_total{kind="Function"}`.
    pub async fn reconciles(&self) -> u64 {
        let text = self.metrics().await.unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("zeroscale_operator_reconciles_total{kind=\"Function\"} "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}
