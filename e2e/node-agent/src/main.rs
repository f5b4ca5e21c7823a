//! Process-based node agent for the local Zeroscale test cluster.

fn main() {}
