//! Command line of `zeroscale-autoscaler`: every flag is also an environment variable
//! `ZEROSCALE_AUTOSCALER_<FLAG>`. The admin, log and Lease flags are the ones every component shares
//! (`zeroscale_common::cli`). The trace simulator and the tick benchmark are binaries of their own
//! (`zeroscale-simulate`, `zeroscale-bench-tick`) with their own flags.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};
use zeroscale_common::cli::{AdminArgs, Autoscaler, LeaseArgs, LogArgs};

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
}

impl Cli {
    /// The flags of `run`, whether the subcommand was named or left out.
    pub fn run_args(self) -> RunArgs {
        match self.command {
            Some(Command::Run(args)) => args,
            None => self.run,
        }
    }
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
    /// `--admin-addr`.
    #[command(flatten)]
    pub admin: AdminArgs<Autoscaler>,
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
    /// `--lease-namespace` and `--lease-name`: the leader-election Lease.
    #[command(flatten)]
    pub lease: LeaseArgs<Autoscaler>,
    /// Identity of this replica (its pod name); defaults to the host name.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_IDENTITY")]
    pub identity: Option<String>,
    /// `--log-format`.
    #[command(flatten)]
    pub log: LogArgs<Autoscaler>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_is_the_default_subcommand() {
        let named = Cli::try_parse_from([
            "zeroscale-autoscaler",
            "run",
            "--lease-name=x",
            "--admin-addr=127.0.0.1:1",
        ])
        .expect("parses")
        .run_args();
        let bare = Cli::try_parse_from([
            "zeroscale-autoscaler",
            "--lease-name=x",
            "--admin-addr=127.0.0.1:1",
        ])
        .expect("parses")
        .run_args();
        for args in [named, bare] {
            assert_eq!(args.lease.lease_name, "x");
            assert_eq!(args.lease.lease_namespace, "zeroscale-system");
            assert_eq!(args.admin.admin_addr.port(), 1);
            assert_eq!(args.tick_interval, Duration::from_secs(2));
        }
    }

    #[test]
    fn the_tools_are_not_subcommands_of_the_autoscaler() {
        for tool in ["simulate", "bench-tick"] {
            assert!(
                Cli::try_parse_from(["zeroscale-autoscaler", tool]).is_err(),
                "{tool}"
            );
        }
    }
}
