//! Headers on the way to the pod and back: hop-by-hop headers removed, a request id and a W3C
//! `traceparent` guaranteed. The forwarding fields are `crate::forwarding`'s.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use rand::Rng;

use crate::trace_ids::{Hex, new_hex};

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `traceparent` (W3C Trace Context).
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// Most fields the activator adds to a request on its way to the pod: `X-Request-Id`, `traceparent`,
/// `Forwarded`, `X-Forwarded-For`, `-Proto` and `-Host`, and `Host`. A request's map made with room
/// for them never grows (and rehashes) while they are added.
pub const ADDED_REQUEST_FIELDS: usize = 7;
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Whether the request asks to switch protocols (WebSocket and such).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1), including those the `Connection` header names. For
/// an upgrade, `Connection: upgrade` and `Upgrade` are kept: they are the point of the request.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // Most requests and responses carry none: one walk over the names (cheap comparisons) instead of
    // a hashed lookup per header that could be there.
    if !upgrade && !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if let Some(connection) = headers.get(header::CONNECTION).cloned() {
        let named: Vec<HeaderName> = connection
            .to_str()
            .unwrap_or("")
            .split(',')
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .filter(|n| !(upgrade && n == header::UPGRADE))
            .collect();
        for name in named {
            headers.remove(name);
        }
        headers.remove(header::CONNECTION);
    }
    for name in [&KEEP_ALIVE, &PROXY_CONNECTION, &header::TRANSFER_ENCODING] {
        headers.remove(name);
    }
    // `TE: trailers` is how gRPC clients say they accept trailers; anything else is hop-by-hop.
    if headers
        .get(header::TE)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"trailers"))
    {
        headers.remove(header::TE);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// The first value of each of `names` in `headers`, found in one walk over the fields: cheaper than
/// a hashed lookup per name for the few fields a request has.
pub fn first_values<'a, const N: usize>(
    headers: &'a HeaderMap,
    names: [&HeaderName; N],
) -> [Option<&'a HeaderValue>; N] {
    let mut found = [None; N];
    for (name, value) in headers {
        if let Some(at) = names.iter().position(|n| *n == name) {
            found[at].get_or_insert(value);
        }
    }
    found
}

/// Whether `name` is one of the hop-by-hop headers [`strip_hop_by_hop`] may remove by itself (those a
/// `Connection` header names are found through it).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::TE
        || name == header::UPGRADE
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

/// A new request id: 32 random lowercase hex digits, built inline.
fn new_request_id(rng: &mut impl Rng) -> HeaderValue {
    shared_value(*new_hex::<32>(rng).as_bytes()).unwrap_or(HeaderValue::from_static("0"))
}

/// A header value holding `bytes` in one reference-counted allocation. The request id and
/// `traceparent` are cloned into the request's record and the response; a value copied from a slice
/// would allocate a second time at its first clone.
fn shared_value<const N: usize>(bytes: [u8; N]) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(Bytes::from_owner(bytes)).ok()
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `value` has the shape of a version-00 `traceparent` (its length and dashes), which is
/// all a value the activator wrote itself needs checked.
pub(crate) fn traceparent_shaped(value: &[u8]) -> bool {
    value.len() == 55 && value[2] == b'-' && value[35] == b'-' && value[52] == b'-'
}

/// Parses `traceparent` version 00: returns the trace id and flags when valid.
pub(crate) fn parse_traceparent(value: &str) -> Option<(&str, &str)> {
    // The usual 55-byte form is checked field by field in place; anything else goes the general way.
    if traceparent_shaped(value.as_bytes()) {
        let (version, trace, span, flags) = (&value[..2], &value[3..35], &value[36..52], &value[53..]);
        let valid = version != "ff"
            && is_lower_hex(version)
            && is_lower_hex(trace)
            && trace.bytes().any(|b| b != b'0')
            && is_lower_hex(span)
            && is_lower_hex(flags);
        return valid.then_some((trace, flags));
    }
    parse_traceparent_split(value)
}

/// [`parse_traceparent`] for any shape: fields split at `-` (a later version may append more).
fn parse_traceparent_split(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let valid = version.len() == 2
        && version != "ff"
        && is_lower_hex(version)
        && trace.len() == 32
        && is_lower_hex(trace)
        && trace.bytes().any(|b| b != b'0')
        && span.len() == 16
        && is_lower_hex(span)
        && flags.len() == 2
        && is_lower_hex(flags);
    valid.then_some((trace, flags))
}

/// The request's `X-Request-Id`, after adding a new one (32 hex digits) when it had none; error
/// answers and log lines carry it ([`crate::respond::with_request_id`]).
pub fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    let id = headers.entry(&X_REQUEST_ID);
    id.or_insert_with(|| new_request_id(&mut rand::rng())).clone()
}

/// Ensures `X-Request-Id` and `traceparent`. An incoming trace keeps its trace id and flags and gets a
/// new span id (the activator's hop); otherwise a new trace starts, unsampled. Returns the request id.
pub fn ensure_ids(headers: &mut HeaderMap) -> HeaderValue {
    let mut rng = rand::rng();
    let request_id = headers
        .entry(&X_REQUEST_ID)
        .or_insert_with(|| new_request_id(&mut rng))
        .clone();
    let span = new_hex::<16>(&mut rng);
    let parent = headers
        .get(&TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent)
        .and_then(|(trace, flags)| Some((Hex::<32>::parse(trace)?, Hex::<2>::parse(flags)?)));
    let (trace, flags) = parent.unwrap_or_else(|| (new_hex(&mut rng), Hex::zero()));
    set_traceparent(headers, &trace, &span, &flags);
    request_id
}

/// Sets `traceparent` (version 00) from its parts, built inline.
pub(crate) fn set_traceparent(h: &mut HeaderMap, trace: &Hex<32>, span: &Hex<16>, flags: &Hex<2>) {
    let mut value = [0u8; 55];
    value[..3].copy_from_slice(b"00-");
    value[3..35].copy_from_slice(trace.as_bytes());
    value[35] = b'-';
    value[36..52].copy_from_slice(span.as_bytes());
    value[52] = b'-';
    value[53..].copy_from_slice(flags.as_bytes());
    if let Some(v) = shared_value(value) {
        h.insert(&TRACEPARENT, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_values_are_found_in_one_walk() {
        let mut h = HeaderMap::new();
        h.append(&X_REQUEST_ID, HeaderValue::from_static("one"));
        h.append(&X_REQUEST_ID, HeaderValue::from_static("two"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        let [id, length, trace] = first_values(&h, [&X_REQUEST_ID, &header::CONTENT_LENGTH, &TRACEPARENT]);
        assert_eq!(
            id.map(HeaderValue::as_bytes),
            Some(&b"one"[..]),
            "the first of repeated fields"
        );
        assert_eq!(length.map(HeaderValue::as_bytes), Some(&b"3"[..]));
        assert_eq!(trace, None);
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("gzip"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        let mut h = HeaderMap::new();
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h[header::TE], "trailers");
    }

    #[test]
    fn headers_without_hop_by_hop_ones_are_kept_whole() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("f.ns"));
        h.append("x-many", HeaderValue::from_static("1"));
        h.append("x-many", HeaderValue::from_static("2"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        let before = h.clone();
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h, before);
        // Each one alone is found and removed.
        for name in [
            "connection",
            "transfer-encoding",
            "upgrade",
            "keep-alive",
            "proxy-connection",
            "te",
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("f.ns"));
            h.insert(HeaderName::from_static(name), HeaderValue::from_static("x"));
            strip_hop_by_hop(&mut h, false);
            assert_eq!(h.len(), 1, "{name}: {h:?}");
        }
    }

    #[test]
    fn upgrade_keeps_its_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h[header::CONNECTION], "upgrade");
        assert_eq!(h[header::UPGRADE], "websocket");
    }

    #[test]
    fn request_ids_are_32_hex_digits_and_differ() {
        let mut rng = rand::rng();
        let (a, b) = (new_request_id(&mut rng), new_request_id(&mut rng));
        assert_eq!(a.len(), 32);
        assert!(is_lower_hex(a.to_str().unwrap()));
        assert_ne!(a, b);
    }

    #[test]
    fn both_traceparent_parsers_agree() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cases = [
            valid,
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473--00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "",
        ];
        for case in cases {
            assert_eq!(parse_traceparent(case), parse_traceparent_split(case), "{case}");
        }
        assert_eq!(
            parse_traceparent(valid),
            Some(("4bf92f3577b34da6a3ce929d0e0e4736", "01"))
        );
        assert!(parse_traceparent(cases[3]).is_none());
        assert!(parse_traceparent(cases[4]).is_none());
    }

    #[test]
    fn trace_is_kept_or_created() {
        let mut h = HeaderMap::new();
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        h.insert(&TRACEPARENT, HeaderValue::from_static(incoming));
        h.insert(&X_REQUEST_ID, HeaderValue::from_static("abc"));
        assert_eq!(ensure_ids(&mut h), "abc");
        let out = h[&TRACEPARENT].to_str().unwrap().to_string();
        assert!(out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && out.ends_with("-01"));
        assert_ne!(out, incoming);
        let mut h = HeaderMap::new();
        h.insert(&TRACEPARENT, HeaderValue::from_static("garbage"));
        let id = ensure_ids(&mut h);
        assert_eq!(id.len(), 32);
        assert!(parse_traceparent(h[&TRACEPARENT].to_str().unwrap()).is_some());
    }
}
