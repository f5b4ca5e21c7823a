//! What the dead-letter sink receives: the original event with extensions that say where it could not
//! be delivered and why (Knative's `knativeerrordest`, `knativeerrorcode`, `knativeerrordata`, with
//! our prefix).

use cloudevents::Event;

use super::{failure::Failure, target::Target};

/// Extension: the address the event could not be delivered to, such as `http://hello.default.svc`.
pub const ERROR_DEST_EXTENSION: &str = "zeroscaleerrordest";
/// Extension (integer): the HTTP status of the last attempt; absent when there was no answer
/// (timeout, connection error).
pub const ERROR_CODE_EXTENSION: &str = "zeroscaleerrorcode";
/// Extension: the last answer's body, or what happened when there was none; printable ASCII, at most
/// [`MAX_ERROR_DATA`] bytes.
pub const ERROR_DATA_EXTENSION: &str = "zeroscaleerrordata";
/// Longest `zeroscaleerrordata` (as Knative truncates `knativeerrordata`).
pub const MAX_ERROR_DATA: usize = 1024;

/// Adds the dead-letter extensions for a delivery to `destination` that ended with `failure`.
pub fn annotate(event: &mut Event, destination: &Target, failure: &Failure) {
    event.set_extension(ERROR_DEST_EXTENSION, destination.address());
    match failure.status() {
        Some(status) => {
            event.set_extension(ERROR_CODE_EXTENSION, i64::from(status.as_u16()));
        }
        None => {
            event.remove_extension(ERROR_CODE_EXTENSION);
        }
    }
    event.set_extension(
        ERROR_DATA_EXTENSION,
        header_safe(&failure.describe(), MAX_ERROR_DATA),
    );
}

/// `text` cut to `max` bytes with every byte that is not printable ASCII replaced by `?`, because in
/// binary mode the extension travels as an HTTP header.
fn header_safe(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '?' })
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use cloudevents::{EventBuilder, EventBuilderV10, event::ExtensionValue};
    use http::StatusCode;
    use zeroscale_common::signals::FunctionKey;

    use super::*;

    fn event() -> Event {
        EventBuilderV10::new()
            .id("1")
            .ty("t")
            .source("/s")
            .build()
            .unwrap()
    }

    #[test]
    fn status_failures_name_destination_code_and_body() {
        let mut e = event();
        let target = Target::Function(FunctionKey::new("ns", "hello"));
        let failure = Failure::Status {
            status: StatusCode::BAD_GATEWAY,
            body: Bytes::from("upstream\nbroke ü"),
        };
        annotate(&mut e, &target, &failure);
        assert_eq!(
            e.extension(ERROR_DEST_EXTENSION),
            Some(&ExtensionValue::from("http://hello.ns.svc"))
        );
        assert_eq!(
            e.extension(ERROR_CODE_EXTENSION),
            Some(&ExtensionValue::Integer(502))
        );
        assert_eq!(
            e.extension(ERROR_DATA_EXTENSION),
            Some(&ExtensionValue::from("upstream?broke ?"))
        );
    }

    #[test]
    fn timeouts_have_no_code_and_long_bodies_are_cut() {
        let mut e = event();
        e.set_extension(ERROR_CODE_EXTENSION, 500_i64);
        let target = Target::uri("http://sink/").unwrap();
        annotate(&mut e, &target, &Failure::Timeout(Duration::from_secs(2)));
        assert_eq!(
            e.extension(ERROR_CODE_EXTENSION),
            None,
            "a stale code from an earlier hop is removed"
        );
        assert_eq!(
            e.extension(ERROR_DATA_EXTENSION),
            Some(&ExtensionValue::from("no answer within 2s"))
        );

        let long = Failure::Status {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: Bytes::from("x".repeat(5000)),
        };
        annotate(&mut e, &target, &long);
        let Some(ExtensionValue::String(data)) = e.extension(ERROR_DATA_EXTENSION) else {
            panic!()
        };
        assert_eq!(data.len(), MAX_ERROR_DATA);
    }
}
