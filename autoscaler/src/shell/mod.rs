//! The IO shell.

/// Runs the autoscaler.
pub fn main(_args: crate::args::RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}
