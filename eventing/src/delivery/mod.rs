//! Delivery of one event to one Trigger's subscriber: per-attempt timeout, retries with back-off,
//! dead-letter sink, and the subscriber's reply.
//!
//! Delivery is at-least-once: an attempt that timed out or lost its connection may still have been
//! processed, and is retried, so subscribers may see the same event (same `source` + `id`) more than
//! once and should de-duplicate on those two attributes.

pub mod clock;
pub mod config;
pub mod dead_letter;
pub mod deliverer;
pub mod encoding;
pub mod failure;
pub mod sender;
pub mod target;
pub mod trace;

pub use clock::{Clock, TokioClock};
pub use config::{DeliveryConfig, DeliveryConfigError, DeliveryDefaults};
pub use deliverer::{Deliverer, Outcome};
pub use failure::Failure;
pub use sender::{Answer, EventSender, HttpSender, Outgoing, SendError};
pub use target::{Target, TargetError};
