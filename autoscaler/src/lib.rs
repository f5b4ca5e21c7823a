//! Zeroscale autoscaler: Knative KPA decisions for every Function, `/scale` writes, and a
//! trace-driven simulator that runs the same decision code under a virtual clock.
//!
//! - [`kpa`]: the pure, clock-injected decision core.
//! - [`shell`]: the IO around the core: CloudEvents endpoint, Kubernetes watches and writes; run by
//!   the `zeroscale-autoscaler` binary with the flags of [`args`].
//! - [`sim`]: the trace simulator, run by the `zeroscale-simulate` binary. The `zeroscale-bench-tick`
//!   binary times one decision tick.

pub mod args;
pub mod kpa;
pub mod shell;
pub mod sim;
