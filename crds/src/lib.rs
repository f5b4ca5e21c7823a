//! Zeroscale API types: the `Function` and `Trigger` custom resources of group `zeroscale.dev`, their
//! condition types and reasons, and helpers every component shares to read them.
//!
//! [`crd::all`] lists the generated CustomResourceDefinitions that `crdgen` writes.

pub mod crd;
pub mod duration;
pub mod function;
pub mod revision;
pub mod revision_runtime;
pub mod trigger;

pub use function::{Function, FunctionSpec, FunctionStatus, ResolvedScale, ScaleSpec};
pub use trigger::{Trigger, TriggerSpec, TriggerStatus};
