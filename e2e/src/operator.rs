//! An operator process for tests that reconcile one namespace: `--watch-namespace` plus a Lease in
//! that namespace, so tests run side by side without seeing each other's objects.

use std::time::Duration;

use crate::metrics::{admin_ready, counter_value, metric_value, scrape};
use crate::{ProcessGuard, free_addr, spawn_component, wait_for};

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
        Self::start_with(namespace, &[], &[]).await
    }

    /// Like [`Operator::start`], with `extra` arguments (e.g. `--events-sink <url>`) and `env`.
    pub async fn start_with(namespace: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let operator = Self::spawn_with(namespace, extra, env);
        operator.wait_leading().await;
        operator
    }

    /// Starts an operator without waiting for it.
    pub fn spawn(namespace: &str) -> Self {
        Self::spawn_with(namespace, &[], &[])
    }

    /// Like [`Operator::spawn`], with `extra` arguments and `env`.
    pub fn spawn_with(namespace: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let admin = free_addr();
        let mut args = vec![
            "--watch-namespace",
            namespace,
            "--lease-namespace",
            namespace,
            "--admin-addr",
            &admin,
            "--log-format",
            "plain",
        ];
        args.extend_from_slice(extra);
        let process = spawn_component("zeroscale-operator", &args, env);
        Self { process, admin }
    }

    /// Whether `/ready` answers 200.
    pub async fn ready(&self) -> bool {
        admin_ready(&self.admin).await
    }

    /// Whether it reports holding the Lease (`zeroscale_operator_leader 1`).
    pub async fn leading(&self) -> bool {
        self.leader_gauge().await == Some(1.0)
    }

    /// The value of its `zeroscale_operator_leader` gauge, if it answers.
    pub async fn leader_gauge(&self) -> Option<f64> {
        metric_value(&self.metrics().await?, "zeroscale_operator_leader")
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
        scrape(&self.admin).await
    }

    /// The counter `series` (name and labels) of its `/metrics`; 0 when absent or unanswered.
    pub async fn counter(&self, series: &str) -> u64 {
        counter_value(&self.metrics().await.unwrap_or_default(), series)
    }

    /// `zeroscale_operator_reconciles_total{kind="Function"}`.
    pub async fn reconciles(&self) -> u64 {
        self.counter("zeroscale_operator_reconciles_total{kind=\"Function\"}")
            .await
    }

    /// Function reconciles that have finished (`zeroscale_operator_reconcile_duration_seconds_count`).
    pub async fn reconciles_finished(&self) -> u64 {
        self.counter("zeroscale_operator_reconcile_duration_seconds_count{kind=\"Function\"}")
            .await
    }

    /// Its requests to the API server about Functions and their children
    /// (`zeroscale_operator_api_requests_total`, every verb but `watch`), leaving out its Lease and
    /// Events.
    pub async fn function_api_requests(&self) -> u64 {
        function_api_requests(&self.metrics().await.unwrap_or_default())
    }
}

/// The sum of `zeroscale_operator_api_requests_total` in `text` over every verb but `watch` and every
/// resource but `leases` and `events`.
fn function_api_requests(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("zeroscale_operator_api_requests_total{"))
        .filter(|l| {
            !["verb=\"watch\"", "resource=\"leases\"", "resource=\"events\""]
                .iter()
                .any(|label| l.contains(label))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn function_api_requests_leave_out_watches_the_lease_and_events() {
        let text = "# HELP zeroscale_operator_api_requests_total Requests\n\
            zeroscale_operator_api_requests_total{verb=\"apply\",resource=\"services\"} 4\n\
            zeroscale_operator_api_requests_total{verb=\"get\",resource=\"deployments\"} 2\n\
            zeroscale_operator_api_requests_total{verb=\"watch\",resource=\"pods\"} 9\n\
            zeroscale_operator_api_requests_total{verb=\"update\",resource=\"leases\"} 30\n\
            zeroscale_operator_api_requests_total{verb=\"create\",resource=\"events\"} 5\n\
            zeroscale_operator_reconciles_total{kind=\"Function\"} 3\n";
        assert_eq!(super::function_api_requests(text), 6);
    }
}
