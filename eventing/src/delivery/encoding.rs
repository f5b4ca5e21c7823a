//! CloudEvents ↔ HTTP for delivery: events go out in binary mode (Knative's default encoding); an
//! answer is read as a reply event when it carries one in either mode.

use bytes::Bytes;
use cloudevents::Event;
use http::{HeaderMap, header::CONTENT_TYPE};
use zeroscale_common::signals;

use super::sender::Answer;

/// Encodes `event` in HTTP binary mode: `ce-*` headers, `content-type`, and the data as the body.
pub fn encode(event: Event) -> Result<(HeaderMap, Bytes), signals::SignalError> {
    let message = signals::to_binary(event)?;
    Ok((message.headers, Bytes::from(message.body)))
}

/// Whether an HTTP message carries a CloudEvent (binary or structured mode).
pub fn carries_event(headers: &HeaderMap) -> bool {
    headers.contains_key("ce-specversion")
        || headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/cloudevents+json")
            })
}

/// The reply event in `answer`: `None` when the answer carries no event, `Some(Err)` when it tries to
/// and the event is malformed.
pub fn reply_event(answer: &Answer) -> Option<Result<Event, signals::SignalError>> {
    if !carries_event(&answer.headers) {
        return None;
    }
    Some(signals::from_http(&answer.headers, answer.body.to_vec()))
}
