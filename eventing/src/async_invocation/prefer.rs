//! The `Prefer` request header (RFC 7240) as far as asynchronous invocation needs it: whether a
//! request asks for `respond-async`, and the header to pass on without that preference.
//!
//! A `Prefer` value is a comma-separated list of preferences, each a token, optionally `=` a value,
//! then `;`-separated parameters; values may be quoted strings holding commas and semicolons. Tokens
//! are case-insensitive, and a request may carry several `Prefer` headers.

use http::{HeaderMap, HeaderValue, header::HeaderName};

/// The `Prefer` header's name.
pub const PREFER: HeaderName = HeaderName::from_static("prefer");

/// The preference that asks for an asynchronous invocation.
pub const RESPOND_ASYNC: &str = "respond-async";

/// Splits one `Prefer` value at the commas outside quoted strings.
fn preferences(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// The token of one preference: what comes before its `=` value or `;` parameters.
fn token(preference: &str) -> &str {
    let end = preference.find(['=', ';']).unwrap_or(preference.len());
    preference[..end].trim()
}

/// Whether `headers` ask for `respond-async` in any `Prefer` header. Values that are not visible
/// ASCII are skipped.
pub fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all(PREFER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(value_prefers_async)
}

/// Whether one `Prefer` header value asks for `respond-async`.
pub fn value_prefers_async(value: &str) -> bool {
    preferences(value)
        .into_iter()
        .any(|p| token(p).eq_ignore_ascii_case(RESPOND_ASYNC))
}

/// The request's other preferences, for the function: `None` when `respond-async` was the only one.
pub fn without_async(headers: &HeaderMap) -> Option<HeaderValue> {
    let rest: Vec<&str> = headers
        .get_all(PREFER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(preferences)
        .filter(|p| !token(p).eq_ignore_ascii_case(RESPOND_ASYNC))
        .collect();
    if rest.is_empty() {
        return None;
    }
    HeaderValue::from_str(&rest.join(", ")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(PREFER, HeaderValue::from_str(v).expect("valid value"));
        }
        map
    }

    #[test]
    fn respond_async_is_found_in_any_case_position_and_header() {
        for value in [
            &["respond-async"][..],
            &["Respond-Async"],
            &["wait=10, respond-async"],
            &["handling=lenient", "respond-async; foo=bar"],
            &["  respond-async  ,return=minimal"],
            &["respond-async=\"\""],
        ] {
            assert!(prefers_async(&headers(value)), "{value:?}");
        }
    }

    #[test]
    fn look_alikes_and_quoted_commas_are_not_respond_async() {
        for value in [
            &[][..],
            &["return=minimal"],
            &["respond-asynchronously"],
            &["x-respond-async"],
            &["foo=\"a, respond-async\""],
            &["foo; bar=\"respond-async\""],
            &["wait=\"1\\\", respond-async\""],
        ] {
            assert!(!prefers_async(&headers(value)), "{value:?}");
        }
    }

    #[test]
    fn the_other_preferences_are_passed_on() {
        assert_eq!(without_async(&headers(&["respond-async"])), None);
        assert_eq!(
            without_async(&headers(&["respond-async, wait=5", "return=minimal"]))
                .expect("kept")
                .to_str()
                .expect("ascii"),
            "wait=5, return=minimal"
        );
    }
}
