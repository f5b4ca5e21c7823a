//! Zeroscale autoscaler: Knative KPA decisions for every Function, `/scale` writes, and a
//! trace-driven simulator that runs the same decision code under a virtual clock.
//!
//! - [`kpa`]: the pure, clock-injected decision core.
//! - [`sim`]: the trace simulator (`zeroscale-autoscaler simulate`).
//! - [`shell`]: the IO around the core: CloudEvents endpoint, Kubernetes watches and writes.

pub mod args;
pub mod bench;
pub mod kpa;
pub mod shell;
pub mod sim;
