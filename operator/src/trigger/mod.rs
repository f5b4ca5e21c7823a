//! The Trigger controller: reports whether each Trigger can route events (`docs/operator.md`,
//! "Trigger controller"). It writes only the status: the activator runs the broker, the delivery and
//! the sources.
//!
//! validate ([`validate`], pure: identity, and [`check`]: filters, delivery, schedule, `kubernetes`
//! source) → look-ups ([`lookup`]: the Functions named, API discovery of the watched kind) → status
//! ([`status`], pure) → server-side apply of the status when it changed, and a Kubernetes Event when
//! `Ready` changes ([`reconcile`]). Errors: [`error::TriggerError`].

pub mod check;
pub mod controller;
pub mod error;
pub mod lookup;
pub mod reconcile;
pub mod status;
pub mod validate;

pub use reconcile::TriggerContext;
