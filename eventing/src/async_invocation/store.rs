//! Where accepted invocations wait: the trait the activator's hook talks to.

use super::request::Invocation;
use crate::{broker::PublishError, store::StoreFuture};

/// What the store answered for an invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The invocation id to answer: the new one, or the original's for a duplicate.
    pub id: String,
    /// Whether an invocation with the same `Idempotency-Key` was stored within the window (this one
    /// will not run).
    pub duplicate: bool,
}

/// Stores invocations until their worker ran them.
pub trait InvocationStore: Send + Sync + 'static {
    /// Stores `invocation`; resolves `Ok` only once it is stored (so the hook may answer 202).
    fn append(&self, invocation: Invocation) -> StoreFuture<'_, Result<Accepted, PublishError>>;

    /// The backend's name, for logs and errors.
    fn name(&self) -> &'static str;
}
