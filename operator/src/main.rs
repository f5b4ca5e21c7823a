//! Zeroscale operator: reconciles Functions and Triggers.

fn main() {}
