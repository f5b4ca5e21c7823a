//! Zeroscale eventing core: everything Triggers need that does not depend on the activator's or the
//! operator's internals. See `docs/eventing.md`.

pub mod async_invocation;
pub mod auth;
pub mod auth_kube;
pub mod backlog;
pub mod broker;
pub mod cesql;
pub mod delivery;
pub mod filter;
pub mod ingress;
pub mod kubernetes;
pub mod metrics;
pub mod outbound;
pub mod reply;
pub mod retry;
pub mod router;
pub mod schedule;
pub mod sources;
pub mod store;

#[cfg(test)]
mod props_tests;
#[cfg(test)]
mod testing;
