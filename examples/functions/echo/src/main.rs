//! Example function: echoes requests, sleeps, streams, WebSockets, overlap detection.

fn main() {}
