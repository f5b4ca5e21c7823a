//! Command-line flags; each is also an environment variable `ZEROSCALE_OPERATOR_<FLAG>`.

use std::net::SocketAddr;
use std::path::PathBuf;

use zeroscale_common::telemetry::LogFormat;
use zeroscale_eventing::outbound::AllowedHosts;

/// Flags of `zeroscale-operator`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "zeroscale-operator",
    version,
    about = "Reconciles Zeroscale Functions into Deployments and Services"
)]
pub struct Args {
    /// Kubeconfig to use; without it, `$KUBECONFIG`, `~/.kube/config` or the in-cluster service account.
    #[arg(long, env = "ZEROSCALE_OPERATOR_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Address of the admin server (`/live`, `/ready`, `/metrics`).
    #[arg(long, env = "ZEROSCALE_OPERATOR_ADMIN_ADDR", default_value = "0.0.0.0:9090")]
    pub admin_addr: SocketAddr,
    /// DNS name of the activator's Service; every function's public `ExternalName` Service points at it.
    #[arg(
        long,
        env = "ZEROSCALE_OPERATOR_ACTIVATOR_SERVICE",
        default_value = "zeroscale-activator.zeroscale-system.svc.cluster.local"
    )]
    pub activator_service: String,
    /// Domain of external URLs: `http://<name>.<namespace>.<domain>`.
    #[arg(long, env = "ZEROSCALE_OPERATOR_DOMAIN", default_value = "example.com")]
    pub domain: String,
    /// Namespace of the leader-election Lease.
    #[arg(
        long,
        env = "ZEROSCALE_OPERATOR_LEASE_NAMESPACE",
        default_value = "zeroscale-system"
    )]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "ZEROSCALE_OPERATOR_LEASE_NAME",
        default_value = "zeroscale-operator"
    )]
    pub lease_name: String,
    /// Reconcile only Functions in this namespace (default: every namespace).
    #[arg(long, env = "ZEROSCALE_OPERATOR_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// `progressDeadlineSeconds` of every function Deployment; past it a stuck rollout reports
    /// `ProgressDeadlineExceeded`.
    #[arg(long, env = "ZEROSCALE_OPERATOR_PROGRESS_DEADLINE_SECONDS", default_value_t = 600,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub progress_deadline_seconds: i32,
    /// Seconds a function pod keeps serving after it is told to stop (its `preStop` sleep), while the
    /// activator and EndpointSlices learn that it is terminating; 0 sets no `preStop` hook (0–60).
    #[arg(long, env = "ZEROSCALE_OPERATOR_PRE_STOP_SLEEP_SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(i64).range(0..=60))]
    pub pre_stop_sleep_seconds: i64,
    /// Broker ingress receiving platform CloudEvents (`dev.zeroscale.function.ready`/`.failed`), POSTed
    /// to `<sink>/<function namespace>`; empty: none are sent. Plain `http` only.
    #[arg(long, env = "ZEROSCALE_OPERATOR_EVENTS_SINK", default_value = "", value_parser = events_sink)]
    pub events_sink: String,
    /// Hosts besides in-cluster Services (`*.svc`, `*.svc.cluster.local`) that a Trigger's `uri`
    /// subscriber or dead-letter sink may name: comma-separated host names and `*.suffix` patterns.
    /// A Trigger naming another host is `Ready=False` with reason `HostNotAllowed`.
    #[arg(long, env = "ZEROSCALE_OPERATOR_ALLOWED_HOSTS", default_value = "", value_parser = allowed_hosts)]
    pub allowed_hosts: String,
    /// Log format.
    #[arg(long, env = "ZEROSCALE_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

fn allowed_hosts(value: &str) -> Result<String, String> {
    AllowedHosts::default()
        .with_list(value)
        .map(|_| value.to_string())
        .map_err(|e| e.to_string())
}

impl Args {
    /// The outbound allow-list: in-cluster Services plus `--allowed-hosts`.
    pub fn allowed_hosts(&self) -> AllowedHosts {
        let base = AllowedHosts::new(crate::trigger::check::CLUSTER_DOMAIN);
        // The flag's parser already refused malformed lists.
        base.clone().with_list(&self.allowed_hosts).unwrap_or(base)
    }
}

/// An events sink is empty (off) or an absolute `http` URL without query or fragment (the namespace
/// is appended as a path segment).
fn events_sink(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    let uri: http::Uri = value.parse().map_err(|e| format!("invalid url: {e}"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none_or(str::is_empty) {
        return Err("must be an absolute http:// url".into());
    }
    if uri.query().is_some() || value.contains('#') {
        return Err("must not carry a query or fragment: the namespace is appended to its path".into());
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn defaults() {
        let args = Args::try_parse_from(["zeroscale-operator"]).expect("parses");
        assert_eq!(args.admin_addr.port(), 9090);
        assert_eq!(args.domain, "example.com");
        assert_eq!(args.lease_name, "zeroscale-operator");
        assert_eq!(args.progress_deadline_seconds, 600);
        assert_eq!(args.pre_stop_sleep_seconds, 5);
        assert!(args.kubeconfig.is_none() && args.watch_namespace.is_none());
        assert_eq!(args.events_sink, "");
    }

    #[test]
    fn events_sink_is_off_or_an_http_url() {
        let parse = |v: &str| Args::try_parse_from(["zeroscale-operator", &format!("--events-sink={v}")]);
        assert_eq!(parse("").expect("off").events_sink, "");
        assert_eq!(
            parse("http://zeroscale-broker.zeroscale-system.svc.cluster.local")
                .expect("http")
                .events_sink,
            "http://zeroscale-broker.zeroscale-system.svc.cluster.local"
        );
        for bad in ["https://b.example", "b.example/x", "http://b/?x=1", "/relative"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_override() {
        let args = Args::try_parse_from([
            "zeroscale-operator",
            "--domain=fn.local",
            "--watch-namespace=team",
            "--activator-service=act.sys.svc",
            "--log-format=plain",
        ])
        .expect("parses");
        assert_eq!(args.domain, "fn.local");
        assert_eq!(args.watch_namespace.as_deref(), Some("team"));
        assert_eq!(args.activator_service, "act.sys.svc");
        assert_eq!(args.log_format, LogFormat::Plain);
    }
}
