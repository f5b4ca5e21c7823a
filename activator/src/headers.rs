//! Headers on the way to the pod and back: hop-by-hop headers removed, `Forwarded` (RFC 7239) and
//! `X-Forwarded-*` added, a request id and a W3C `traceparent` guaranteed.

use std::{fmt::Write as _, net::IpAddr};

use http::{HeaderMap, HeaderName, HeaderValue, header};
use rand::Rng;

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `traceparent` (W3C Trace Context).
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
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

/// Adds the forwarding headers for a request from `client` for `host` that came in over plain HTTP.
pub fn add_forwarding(headers: &mut HeaderMap, client: IpAddr, host: &HeaderValue) {
    let mut ip = String::with_capacity(48);
    let _ = write!(ip, "{client}");
    let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip.clone(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert(&X_FORWARDED_FOR, v);
    }
    // RFC 7239: IPv6 addresses are quoted and bracketed; the host is quoted because it may hold ':'.
    let node = if client.is_ipv6() {
        format!("\"[{ip}]\"")
    } else {
        ip
    };
    let host_str = host.to_str().unwrap_or("");
    let element = format!("for={node};host=\"{host_str}\";proto=http");
    let forwarded = match headers.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {element}"),
        None => element,
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        headers.insert(header::FORWARDED, v);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if !headers.contains_key(&X_FORWARDED_HOST) {
        headers.insert(&X_FORWARDED_HOST, host.clone());
    }
}

fn hex_value(digits: usize, rng: &mut impl Rng) -> String {
    let mut s = String::with_capacity(digits);
    while s.len() < digits {
        let _ = write!(s, "{:016x}", rng.random::<u64>());
    }
    s.truncate(digits);
    s
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses `traceparent` version 00: returns the trace id and flags when valid.
pub(crate) fn parse_traceparent(value: &str) -> Option<(&str, &str)> {
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
    if let Some(v) = headers.get(&X_REQUEST_ID) {
        return v.clone();
    }
    let v = HeaderValue::from_str(&hex_value(32, &mut rand::rng())).unwrap_or(HeaderValue::from_static("0"));
    headers.insert(&X_REQUEST_ID, v.clone());
    v
}

/// Ensures `X-Request-Id` and `traceparent`. An incoming trace keeps its trace id and flags and gets a
/// new span id (the activator's hop); otherwise a new trace starts, unsampled. Returns the request id.
pub fn ensure_ids(headers: &mut HeaderMap) -> HeaderValue {
    let mut rng = rand::rng();
    let request_id = match headers.get(&X_REQUEST_ID) {
        Some(v) => v.clone(),
        None => {
            let v = HeaderValue::from_str(&hex_value(32, &mut rng)).unwrap_or(HeaderValue::from_static("0"));
            headers.insert(&X_REQUEST_ID, v.clone());
            v
        }
    };
    let span = hex_value(16, &mut rng);
    let parent = headers
        .get(&TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent);
    let value = match parent {
        Some((trace, flags)) => format!("00-{trace}-{span}-{flags}"),
        None => format!("00-{}-{span}-00", hex_value(32, &mut rng)),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(&TRACEPARENT, v);
    }
    request_id
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn forwarding_headers_are_appended() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        add_forwarding(
            &mut h,
            "127.0.0.2".parse().unwrap(),
            &HeaderValue::from_static("f.ns:8080"),
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.2");
        assert_eq!(
            h[header::FORWARDED],
            "for=127.0.0.2;host=\"f.ns:8080\";proto=http"
        );
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "f.ns:8080");
        let mut h = HeaderMap::new();
        add_forwarding(&mut h, "::1".parse().unwrap(), &HeaderValue::from_static("f.ns"));
        assert!(
            h[header::FORWARDED]
                .to_str()
                .unwrap()
                .starts_with("for=\"[::1]\"")
        );
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
