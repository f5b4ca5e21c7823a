//! Asynchronous invocation of Functions (`docs/eventing.md`, "Asynchronous invocation"): a request
//! with `Prefer: respond-async` ([`prefer`]) is stored ([`request`], [`store`]) and answered 202; a
//! worker runs it later through the activator's request path with the Function's `spec.async`
//! ([`policy`]): retries with back-off, a maximum age, and a record of how it ended ([`outcome`]) sent
//! to `onSuccess` or `onFailure`.
//!
//! - [`memory`]: in this process, a task per invocation;
//! - [`jetstream`]: a work-queue stream with one durable pull consumer per Function, whose redelivery
//!   is the retry schedule (NAK with the back-off as delay), as for Triggers.

pub mod jetstream;
pub mod jetstream_worker;
pub mod memory;
pub mod outcome;
pub mod policy;
pub mod prefer;
pub mod request;
pub mod run;
pub mod store;

#[cfg(test)]
mod jetstream_tests;
#[cfg(test)]
mod memory_tests;

pub use outcome::{FAILURE_TYPE, Outcome, Record, SUCCESS_TYPE};
pub use policy::{AsyncFunctions, AsyncPolicy};
pub use request::Invocation;
pub use run::InvocationSender;
pub use store::{Accepted, InvocationStore};
