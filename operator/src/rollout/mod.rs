//! The built-in automated canary (`spec.rollout`): a pure state machine ([`machine`]) that decides how
//! the latest revision's share of the traffic is divided between the canary and the stable revision
//! ([`split`] applies it to `status.traffic`), fed with the activators' per-revision counts
//! ([`scrape`] reads every activator's `GET /revisions/stats`; [`window`] keeps each step's baseline
//! and subtracts). See docs/canary.md.

pub mod machine;
pub mod scrape;
pub mod split;
pub mod window;

#[cfg(test)]
mod machine_tests;

pub use machine::{Breach, Decision, Input, Split, Transition, Window, breach, decide};
