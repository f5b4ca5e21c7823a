//! Command line: every flag is also an environment variable `ZEROSCALE_AUTOSCALER_<FLAG>`.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use zeroscale_common::telemetry::LogFormat;

/// The Zeroscale autoscaler.
#[derive(Debug, Parser)]
#[command(
    name = "zeroscale-autoscaler",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; `run` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `run`, accepted without the subcommand too.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the autoscaler against the cluster (the default).
    Run(RunArgs),
    /// Replay an invocation trace through a keep-alive policy and report cold starts and pod-seconds.
    Simulate(SimulateArgs),
    /// Time one decision tick over many synthetic functions.
    BenchTick(BenchTickArgs),
}

fn duration(value: &str) -> Result<Duration, String> {
    zeroscale_crds::duration::parse(value).map_err(|e| e.to_string())
}

/// Flags of `run`.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// Address of the CloudEvents endpoint that receives activator signals.
    #[arg(
        long,
        env = "ZEROSCALE_AUTOSCALER_EVENTS_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub events_addr: SocketAddr,
    /// Address of the admin server (`/live`, `/ready`, `/metrics`).
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_ADMIN_ADDR", default_value = "0.0.0.0:9090")]
    pub admin_addr: SocketAddr,
    /// When set, signal events must carry `Authorization: Bearer <token>`.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_EVENTS_TOKEN", hide_env_values = true)]
    pub events_token: Option<String>,
    /// Broker ingress receiving a `dev.zeroscale.function.scaled` CloudEvent for every scale change,
    /// POSTed to `<sink>/<function namespace>`; empty: none are sent.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_EVENTS_SINK")]
    pub events_sink: Option<String>,
    /// File holding a bearer token sent with every `scaled` event (`Authorization: Bearer <token>`),
    /// e.g. a projected ServiceAccount token for the audience `zeroscale-broker`; read again when it
    /// changes (rotation). Unset: no token. Unreadable: a warning, and events go without one.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_EVENTS_SINK_TOKEN_FILE")]
    pub events_sink_token_file: Option<PathBuf>,
    /// URL answering 200 while the activator can receive traffic (its admin `/ready`); when unset
    /// the activator is assumed able. Checked before any scale to zero.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_ACTIVATOR_READY_URL")]
    pub activator_ready_url: Option<String>,
    /// Interval between decisions.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_TICK_INTERVAL", default_value = "2s", value_parser = duration)]
    pub tick_interval: Duration,
    /// How long the last non-zero report of a silent activator replica keeps counting.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_STALE_REPLICA_TIMEOUT", default_value = "3s", value_parser = duration)]
    pub stale_replica_timeout: Duration,
    /// Watch only this namespace (all namespaces when unset).
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_NAMESPACE")]
    pub namespace: Option<String>,
    /// Take part in leader election; only the leader writes `/scale`.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Name of the Lease used for leader election.
    #[arg(
        long,
        env = "ZEROSCALE_AUTOSCALER_LEASE_NAME",
        default_value = "zeroscale-autoscaler"
    )]
    pub lease_name: String,
    /// Namespace of the Lease (the autoscaler's own namespace).
    #[arg(
        long,
        env = "ZEROSCALE_AUTOSCALER_LEASE_NAMESPACE",
        default_value = "zeroscale-system"
    )]
    pub lease_namespace: String,
    /// Identity of this replica (its pod name); defaults to the host name.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_IDENTITY")]
    pub identity: Option<String>,
    /// Log format.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

/// Flags of `simulate`.
#[derive(Clone, Debug, Args)]
pub struct SimulateArgs {
    /// Directory holding `invocations.csv` and `durations.csv`.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_TRACE")]
    pub trace: PathBuf,
    /// `kpa`, `fixed_1m`, `fixed_5m`, `fixed_10m`, `fixed_20m`, `fixed_60m`, or `all`.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_POLICY", default_value = "all")]
    pub policy: String,
    /// Where to write the JSON report (a list of reports for `all`); stdout when unset.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_OUT")]
    pub out: Option<PathBuf>,
    /// Seed of the arrival and duration sampling.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Time from a scale-up until the new pod can serve.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_COLD_START", default_value = "1s", value_parser = duration)]
    pub cold_start: Duration,
    /// Also draw cold-start % against idle pod-seconds, one point per policy, as SVG here.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_PLOT")]
    pub plot: Option<PathBuf>,
    /// Also write the flat benchmark keys (`sim.<policy>.cold_start_pct`, ...) as JSON here.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_BENCH_OUT")]
    pub bench_out: Option<PathBuf>,
}

/// Flags of `bench-tick`.
#[derive(Clone, Debug, Args)]
pub struct BenchTickArgs {
    /// Functions in the tick.
    #[arg(long, default_value_t = 1000)]
    pub functions: usize,
    /// Timed ticks; the median is reported.
    #[arg(long, default_value_t = 501)]
    pub runs: usize,
    /// Also write `{"autoscaler.tick_1000_fns_us": ...}` as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => crate::shell::main(cli.run),
        Some(Command::Run(args)) => crate::shell::main(args),
        Some(Command::Simulate(args)) => crate::sim::main(&args),
        Some(Command::BenchTick(args)) => crate::bench::main(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zeroscale-autoscaler: {e}");
            ExitCode::FAILURE
        }
    }
}
