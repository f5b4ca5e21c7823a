//! Command-line flags; each is also an environment variable `ZEROSCALE_OPERATOR_<FLAG>`. The admin,
//! log and Lease flags are the ones every component shares (`zeroscale_common::cli`).

use std::path::PathBuf;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use zeroscale_common::cli::{AdminArgs, LeaseArgs, LogArgs, Operator};
use zeroscale_eventing::outbound::AllowedHosts;

use crate::build::{DEFAULT_CPU_REQUEST, is_cpu_quantity};

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
    /// `--admin-addr`.
    #[command(flatten)]
    pub admin: AdminArgs<Operator>,
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
    /// `--lease-namespace` and `--lease-name`: the leader-election Lease.
    #[command(flatten)]
    pub lease: LeaseArgs<Operator>,
    /// Tokio worker threads: 1 runs the operator on one thread (a controller waits on the API server,
    /// not on the CPU), more reconcile in parallel, 0 means one per CPU.
    #[arg(long, env = "ZEROSCALE_OPERATOR_WORKER_THREADS", default_value_t = 1)]
    pub worker_threads: usize,
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
    /// CPU request of a function container whose Function asks for no CPU (neither a CPU request nor
    /// a CPU limit in `spec.resources`), such as `25m` or `0.1`; empty: none, and such pods are
    /// `BestEffort`, the lowest CPU weight on a node.
    #[arg(long, env = "ZEROSCALE_OPERATOR_DEFAULT_CPU_REQUEST", default_value = DEFAULT_CPU_REQUEST,
          value_parser = cpu_request_flag)]
    pub default_cpu_request: String,
    /// Broker ingress receiving platform CloudEvents (`dev.zeroscale.function.ready`/`.failed`), POSTed
    /// to `<sink>/<function namespace>`; empty: none are sent. Plain `http` only.
    #[arg(long, env = "ZEROSCALE_OPERATOR_EVENTS_SINK", default_value = "", value_parser = events_sink)]
    pub events_sink: String,
    /// File holding a bearer token sent with every platform event (`Authorization: Bearer <token>`),
    /// e.g. a projected ServiceAccount token for the audience `zeroscale-broker`; read again when it
    /// changes (rotation). Unset: no token. Unreadable: a warning, and events go without one.
    #[arg(long, env = "ZEROSCALE_OPERATOR_EVENTS_SINK_TOKEN_FILE")]
    pub events_sink_token_file: Option<PathBuf>,
    /// Hosts besides in-cluster Services (`*.svc`, `*.svc.cluster.local`) that a Trigger's `uri`
    /// subscriber or dead-letter sink may name: comma-separated host names and `*.suffix` patterns.
    /// A Trigger naming another host is `Ready=False` with reason `HostNotAllowed`.
    #[arg(long, env = "ZEROSCALE_OPERATOR_ALLOWED_HOSTS", default_value = "", value_parser = allowed_hosts)]
    pub allowed_hosts: String,
    /// `--log-format`.
    #[command(flatten)]
    pub log: LogArgs<Operator>,
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

    /// `--default-cpu-request` as a quantity, `None` when empty.
    pub fn default_cpu_request(&self) -> Option<Quantity> {
        (!self.default_cpu_request.is_empty()).then(|| Quantity(self.default_cpu_request.clone()))
    }

    /// Where platform events go (`--events-sink`) and the token they carry (`--events-sink-token-file`).
    pub fn platform_sink(&self) -> crate::platform::Sink {
        let sink = crate::platform::Sink::new(self.events_sink.clone());
        match self
            .events_sink_token_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            Some(path) => sink.with_token(zeroscale_common::token_file::TokenFile::new(path)),
            None => sink,
        }
    }
}

/// The default CPU request is empty (none) or a positive CPU quantity: refused at start rather than by
/// the API server on every Deployment the operator applies.
fn cpu_request_flag(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() || is_cpu_quantity(value) {
        return Ok(value.to_string());
    }
    Err("must be empty or a positive CPU quantity in cores or millicores, such as 0.1 or 25m".into())
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
        assert_eq!(args.admin.admin_addr.port(), 9090);
        assert_eq!(args.domain, "example.com");
        assert_eq!(args.lease.lease_name, "zeroscale-operator");
        assert_eq!(args.progress_deadline_seconds, 600);
        assert_eq!(args.pre_stop_sleep_seconds, 5);
        assert_eq!(args.default_cpu_request(), Some(Quantity("25m".into())));
        assert!(args.kubeconfig.is_none() && args.watch_namespace.is_none());
        assert_eq!(args.events_sink, "");
        assert!(args.platform_sink().token.is_none());
    }

    #[test]
    fn events_sink_token_file_is_optional_and_never_empty() {
        let parse =
            |v: &str| Args::try_parse_from(["zeroscale-operator", &format!("--events-sink-token-file={v}")]);
        let with = parse("/var/run/secrets/zeroscale.dev/broker/token")
            .expect("parses")
            .platform_sink();
        let token = with.token.expect("token file");
        assert_eq!(
            token.path(),
            std::path::Path::new("/var/run/secrets/zeroscale.dev/broker/token")
        );
        assert!(parse("").is_err(), "an empty path is refused, not taken as off");
    }

    #[test]
    fn the_default_cpu_request_is_a_cpu_quantity_or_empty() {
        let parse =
            |v: &str| Args::try_parse_from(["zeroscale-operator", &format!("--default-cpu-request={v}")]);
        assert_eq!(
            parse("0.1").expect("parses").default_cpu_request(),
            Some(Quantity("0.1".into()))
        );
        assert_eq!(
            parse("").expect("parses").default_cpu_request(),
            None,
            "empty: none"
        );
        let refused = parse("25Mi").expect_err("a memory quantity").to_string();
        assert!(refused.contains("positive CPU quantity"), "{refused}");
        assert!(parse("0m").is_err(), "zero is refused");
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
        assert_eq!(args.log.log_format, zeroscale_common::telemetry::LogFormat::Plain);
    }
}
