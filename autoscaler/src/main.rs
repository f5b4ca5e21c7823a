//! Zeroscale autoscaler: KPA decisions and the trace simulator.

fn main() {}
