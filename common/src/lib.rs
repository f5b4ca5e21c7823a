//! Pieces shared by the Zeroscale components: the admin server, telemetry set-up, the CloudEvents that
//! carry signals between the activator and the autoscaler, leader election, and rotated token files.

pub mod admin;
pub mod lease;
pub mod metrics;
pub mod signals;
pub mod telemetry;
pub mod token_file;
