//! Bench.

/// Runs the bench.
pub fn main(_args: &crate::args::BenchTickArgs) -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}
