//! The built-in automated canary (`spec.rollout`): a pure state machine ([`machine`]) that decides how
//! the latest revision's share of the traffic is divided between the canary and the stable revision,
//! fed with the activators' per-revision counts ([`window`] keeps the baselines and subtracts;
//! [`scrape`] reads the activators). See docs/canary.md.

pub mod machine;

#[cfg(test)]
mod machine_tests;

pub use machine::{Breach, Decision, Input, Split, Transition, Window, breach, decide};
