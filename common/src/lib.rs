//! Pieces shared by the Zeroscale components: the runtime each runs on (shared flags in [`cli`], one
//! shutdown token in [`shutdown`], the admin server and signalled readiness in [`admin`]), telemetry
//! set-up, the CloudEvents that carry signals between the activator and the autoscaler, leader
//! election, and rotated token files.

pub mod admin;
pub mod cli;
pub mod lease;
pub mod metrics;
pub mod revision_stats;
pub mod runtime;
pub mod shutdown;
pub mod signals;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod token_file;
pub mod tracing_otlp;
