//! Usage metering (see `docs/metering.md`): every request record ([`crate::function::record`]) is metered on
//! its function — invocations by outcome, invocation duration, billed milliseconds, memory
//! byte-seconds and CPU-seconds allocated — in Prometheus counters (`zeroscale_faas_*`, for
//! dashboards; per replica, reset by a restart) and, when a usage sink is configured, in usage
//! records flushed as CloudEvents `dev.zeroscale.usage` (exact, for billing: see [`usage`]).

pub mod meter;
pub mod reporter;
pub mod resources;
pub mod usage;

use std::sync::Arc;

use zeroscale_common::signals::FunctionKey;

pub use self::{
    meter::{FunctionMeter, MeterFamilies},
    resources::{Declared, ResourceDefaults, Resources},
};

/// How the table builds each function's meter.
#[derive(Clone, Debug)]
pub struct MeterConfig {
    /// The families the meters count in.
    pub families: Arc<MeterFamilies>,
    /// What functions without `resources` are billed for.
    pub defaults: ResourceDefaults,
    /// Whether usage is kept for usage records (a sink is configured).
    pub keep_usage: bool,
}

impl MeterConfig {
    /// The meter of the function `key`, billing the defaults until its spec says otherwise.
    pub fn for_function(&self, key: &FunctionKey) -> FunctionMeter {
        FunctionMeter::new(
            key,
            Arc::clone(&self.families),
            self.defaults.into(),
            self.keep_usage,
        )
    }
}
