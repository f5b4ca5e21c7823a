//! Replies re-published to the broker, and the TTL extension that stops reply loops.
//!
//! The broker ingress stamps every event that arrives without [`TTL_EXTENSION`] with [`DEFAULT_TTL`].
//! A reply carries its cause's TTL minus one; a reply whose TTL would reach 0 is dropped (logged and
//! counted as `ttl_exhausted`), so a Trigger whose subscriber answers every event with another event it
//! matches stops after [`DEFAULT_TTL`] generations instead of looping forever.

use cloudevents::{Event, event::ExtensionValue};

/// Extension holding the number of reply generations an event may still cause (Knative's
/// `knativebrokerttl`).
pub const TTL_EXTENSION: &str = "zeroscalebrokerttl";
/// TTL given to events that arrive without one (Knative's broker default).
pub const DEFAULT_TTL: i64 = 255;

/// A reply that is not re-published.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplyError {
    /// The event that caused the reply had TTL 1 (or less): the reply would start a loop.
    #[error("reply dropped: ttl exhausted")]
    TtlExhausted,
}

/// The event's TTL: the extension as an integer (or a string holding one), if present.
pub fn ttl(event: &Event) -> Option<i64> {
    match event.extension(TTL_EXTENSION)? {
        ExtensionValue::Integer(n) => Some(*n),
        ExtensionValue::String(s) => s.trim().parse().ok(),
        ExtensionValue::Boolean(_) => None,
    }
}

/// Stamps an event entering the broker with [`DEFAULT_TTL`] unless it has a valid TTL, which is kept
/// (at most [`DEFAULT_TTL`]) so a loop through an external hop still counts down. Returns the TTL.
pub fn stamp_ttl(event: &mut Event) -> i64 {
    let ttl = ttl(event).map_or(DEFAULT_TTL, |t| t.min(DEFAULT_TTL));
    event.set_extension(TTL_EXTENSION, ttl);
    ttl
}

/// Prepares `reply`, the answer to `cause`, for re-publishing: its TTL is the cause's minus one.
pub fn prepare_reply(cause: &Event, mut reply: Event) -> Result<Event, ReplyError> {
    let next = ttl(cause).unwrap_or(DEFAULT_TTL).saturating_sub(1);
    if next <= 0 {
        return Err(ReplyError::TtlExhausted);
    }
    reply.set_extension(TTL_EXTENSION, next);
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use cloudevents::{EventBuilder, EventBuilderV10};

    use super::*;

    fn event(ttl: Option<ExtensionValue>) -> Event {
        let mut e = EventBuilderV10::new()
            .id("1")
            .ty("t")
            .source("/s")
            .build()
            .unwrap();
        if let Some(ttl) = ttl {
            e.set_extension(TTL_EXTENSION, ttl);
        }
        e
    }

    #[test]
    fn ingress_stamps_default_and_keeps_a_lower_ttl() {
        let mut fresh = event(None);
        assert_eq!(stamp_ttl(&mut fresh), 255);
        assert_eq!(ttl(&fresh), Some(255));
        let mut hop = event(Some(ExtensionValue::from("17")));
        assert_eq!(
            stamp_ttl(&mut hop),
            17,
            "binary mode delivers extensions as strings"
        );
        let mut high = event(Some(ExtensionValue::Integer(10_000)));
        assert_eq!(stamp_ttl(&mut high), 255);
        let mut junk = event(Some(ExtensionValue::from("many")));
        assert_eq!(stamp_ttl(&mut junk), 255);
    }

    #[test]
    fn replies_count_down_and_stop_at_zero() {
        let reply = prepare_reply(&event(Some(ExtensionValue::Integer(3))), event(None)).unwrap();
        assert_eq!(ttl(&reply), Some(2));
        let overridden = prepare_reply(
            &event(Some(ExtensionValue::Integer(3))),
            event(Some(ExtensionValue::Integer(200))),
        );
        assert_eq!(
            overridden.map(|r| ttl(&r)),
            Ok(Some(2)),
            "a reply cannot raise its own ttl"
        );
        assert_eq!(
            prepare_reply(&event(Some(ExtensionValue::Integer(1))), event(None)),
            Err(ReplyError::TtlExhausted)
        );
        assert_eq!(
            prepare_reply(&event(Some(ExtensionValue::Integer(0))), event(None)),
            Err(ReplyError::TtlExhausted)
        );
        assert_eq!(ttl(&prepare_reply(&event(None), event(None)).unwrap()), Some(254));
    }

    #[test]
    fn a_self_replying_loop_ends_after_the_default_ttl() {
        let mut cause = event(None);
        stamp_ttl(&mut cause);
        let mut generations = 0;
        while let Ok(reply) = prepare_reply(&cause, event(None)) {
            cause = reply;
            generations += 1;
        }
        assert_eq!(generations, DEFAULT_TTL - 1);
    }
}
