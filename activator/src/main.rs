//! Zeroscale activator: the data plane that buffers, wakes and proxies.

fn main() {}
