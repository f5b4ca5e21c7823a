//! Flags every component shares: the admin address, the log format and the Lease.
//!
//! Each component's `Args` flattens these structs (`#[command(flatten)]`), so a shared flag is declared
//! once. The flags keep the names, environment variables (`ZEROSCALE_<COMPONENT>_<FLAG>`), defaults and
//! help texts they had before they were shared: the Helm chart maps them, so they must not move. What
//! differs between components comes from the [`Component`] type parameter; the three components are
//! [`Activator`], [`Autoscaler`] and [`Operator`], side by side below.

use std::{fmt, marker::PhantomData, net::SocketAddr};

use crate::{lease::LeaseConfig, telemetry::LogFormat};

/// What a component's shared flags are called in its environment, their component-specific defaults,
/// and their help texts.
pub trait Component: Clone + fmt::Debug + Send + Sync + 'static {
    /// Environment variable of `--admin-addr`.
    const ADMIN_ADDR_ENV: &'static str;
    /// Help of `--admin-addr`.
    const ADMIN_ADDR_HELP: &'static str;
    /// Environment variable of `--log-format`.
    const LOG_FORMAT_ENV: &'static str;
    /// Environment variable of `--lease-namespace`.
    const LEASE_NAMESPACE_ENV: &'static str;
    /// Help of `--lease-namespace`.
    const LEASE_NAMESPACE_HELP: &'static str;
    /// Environment variable of `--lease-name`.
    const LEASE_NAME_ENV: &'static str;
    /// Default of `--lease-name`.
    const LEASE_NAME: &'static str;
    /// Help of `--lease-name`.
    const LEASE_NAME_HELP: &'static str;
}

/// The activator (`zeroscale-activator`): its Lease picks the replica running event sources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Activator;

impl Component for Activator {
    const ADMIN_ADDR_ENV: &'static str = "ZEROSCALE_ACTIVATOR_ADMIN_ADDR";
    const ADMIN_ADDR_HELP: &'static str = "Address of the admin port (`/live`, `/ready`, `/metrics`)";
    const LOG_FORMAT_ENV: &'static str = "ZEROSCALE_ACTIVATOR_LOG_FORMAT";
    const LEASE_NAMESPACE_ENV: &'static str = "ZEROSCALE_ACTIVATOR_LEASE_NAMESPACE";
    const LEASE_NAMESPACE_HELP: &'static str =
        "Namespace of the Lease that picks the one replica running schedule and kubernetes sources";
    const LEASE_NAME_ENV: &'static str = "ZEROSCALE_ACTIVATOR_LEASE_NAME";
    const LEASE_NAME: &'static str = "zeroscale-activator-sources";
    const LEASE_NAME_HELP: &'static str = "Name of that Lease";
}

/// The autoscaler (`zeroscale-autoscaler run`): its Lease elects the replica that writes `/scale`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Autoscaler;

impl Component for Autoscaler {
    const ADMIN_ADDR_ENV: &'static str = "ZEROSCALE_AUTOSCALER_ADMIN_ADDR";
    const ADMIN_ADDR_HELP: &'static str = "Address of the admin server (`/live`, `/ready`, `/metrics`)";
    const LOG_FORMAT_ENV: &'static str = "ZEROSCALE_AUTOSCALER_LOG_FORMAT";
    const LEASE_NAMESPACE_ENV: &'static str = "ZEROSCALE_AUTOSCALER_LEASE_NAMESPACE";
    const LEASE_NAMESPACE_HELP: &'static str = "Namespace of the Lease (the autoscaler's own namespace)";
    const LEASE_NAME_ENV: &'static str = "ZEROSCALE_AUTOSCALER_LEASE_NAME";
    const LEASE_NAME: &'static str = "zeroscale-autoscaler";
    const LEASE_NAME_HELP: &'static str = "Name of the Lease used for leader election";
}

/// The operator (`zeroscale-operator`): its Lease elects the replica that reconciles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Operator;

impl Component for Operator {
    const ADMIN_ADDR_ENV: &'static str = "ZEROSCALE_OPERATOR_ADMIN_ADDR";
    const ADMIN_ADDR_HELP: &'static str = "Address of the admin server (`/live`, `/ready`, `/metrics`)";
    const LOG_FORMAT_ENV: &'static str = "ZEROSCALE_OPERATOR_LOG_FORMAT";
    const LEASE_NAMESPACE_ENV: &'static str = "ZEROSCALE_OPERATOR_LEASE_NAMESPACE";
    const LEASE_NAMESPACE_HELP: &'static str = "Namespace of the leader-election Lease";
    const LEASE_NAME_ENV: &'static str = "ZEROSCALE_OPERATOR_LEASE_NAME";
    const LEASE_NAME: &'static str = "zeroscale-operator";
    const LEASE_NAME_HELP: &'static str = "Name of the leader-election Lease";
}

/// `--admin-addr`: where the admin server ([`crate::admin`]) listens.
#[derive(Clone, Debug, clap::Args)]
pub struct AdminArgs<C: Component> {
    /// Address of the admin server.
    #[arg(long, env = C::ADMIN_ADDR_ENV, help = C::ADMIN_ADDR_HELP, default_value = "0.0.0.0:9090")]
    pub admin_addr: SocketAddr,
    #[arg(skip)]
    component: PhantomData<C>,
}

/// `--log-format`: how [`crate::telemetry::init`] writes logs (the level comes from `RUST_LOG`).
#[derive(Clone, Debug, clap::Args)]
pub struct LogArgs<C: Component> {
    /// Log format.
    #[arg(long, env = C::LOG_FORMAT_ENV, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    #[arg(skip)]
    component: PhantomData<C>,
}

impl<C: Component> LogArgs<C> {
    /// Installs the global tracing subscriber in the chosen format (once, at the top of `main`); hold
    /// the guard until `main` returns.
    pub fn init(&self) -> crate::telemetry::LogGuard {
        crate::telemetry::init(self.log_format)
    }
}

/// `--lease-namespace` and `--lease-name`: the `coordination.k8s.io/v1` Lease the component competes
/// for ([`crate::lease`]). Its timings are [`LeaseConfig::new`]'s.
#[derive(Clone, Debug, clap::Args)]
pub struct LeaseArgs<C: Component> {
    /// Namespace of the Lease.
    #[arg(long, env = C::LEASE_NAMESPACE_ENV, help = C::LEASE_NAMESPACE_HELP, default_value = "zeroscale-system")]
    pub lease_namespace: String,
    /// Name of the Lease.
    #[arg(long, env = C::LEASE_NAME_ENV, help = C::LEASE_NAME_HELP, default_value = C::LEASE_NAME)]
    pub lease_name: String,
    #[arg(skip)]
    component: PhantomData<C>,
}

impl<C: Component> LeaseArgs<C> {
    /// The Lease to hold, with a fresh holder identity (see [`LeaseConfig::new`]).
    pub fn config(&self) -> LeaseConfig {
        LeaseConfig::new(self.lease_namespace.clone(), self.lease_name.clone())
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Flags<C: Component> {
        #[command(flatten)]
        admin: AdminArgs<C>,
        #[command(flatten)]
        lease: LeaseArgs<C>,
        #[command(flatten)]
        log: LogArgs<C>,
    }

    fn env_of<C: Component>(flag: &str) -> Option<String> {
        let command = Flags::<C>::command();
        let arg = command.get_arguments().find(|a| a.get_long() == Some(flag))?;
        arg.get_env().map(|e| e.to_string_lossy().into_owned())
    }

    #[test]
    fn each_component_keeps_its_environment_variables() {
        assert_eq!(
            env_of::<Activator>("admin-addr").as_deref(),
            Some("ZEROSCALE_ACTIVATOR_ADMIN_ADDR")
        );
        assert_eq!(
            env_of::<Autoscaler>("lease-namespace").as_deref(),
            Some("ZEROSCALE_AUTOSCALER_LEASE_NAMESPACE")
        );
        assert_eq!(
            env_of::<Operator>("log-format").as_deref(),
            Some("ZEROSCALE_OPERATOR_LOG_FORMAT")
        );
        assert_eq!(
            env_of::<Operator>("lease-name").as_deref(),
            Some("ZEROSCALE_OPERATOR_LEASE_NAME")
        );
    }

    #[test]
    fn defaults_are_per_component() {
        let flags = Flags::<Activator>::try_parse_from(["x"]).expect("parses");
        assert_eq!(flags.admin.admin_addr, "0.0.0.0:9090".parse().expect("addr"));
        assert_eq!(flags.lease.lease_name, "zeroscale-activator-sources");
        assert_eq!(flags.lease.lease_namespace, "zeroscale-system");
        assert_eq!(flags.log.log_format, LogFormat::Json);
        let flags = Flags::<Operator>::try_parse_from(["x", "--lease-name=other", "--log-format=plain"])
            .expect("parses");
        assert_eq!(flags.lease.config().name, "other");
        assert_eq!(flags.log.log_format, LogFormat::Plain);
        let flags = Flags::<Autoscaler>::try_parse_from(["x"]).expect("parses");
        assert_eq!(flags.lease.lease_name, "zeroscale-autoscaler");
    }
}
