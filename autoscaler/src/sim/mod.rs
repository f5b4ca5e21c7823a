//! The simulator.

/// Runs the simulator.
pub fn main(_args: &crate::args::SimulateArgs) -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}
