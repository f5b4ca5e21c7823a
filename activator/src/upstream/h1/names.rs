//! Header names as heads spell them, turned into [`HeaderName`]s: the most common spellings (as
//! clients, pods and nginx write them) by one comparison, any other through `http`'s own parser.
//!
//! Why: `HeaderName::from_bytes` lowercases each name into a scratch buffer and then matches it, about
//! a hundred instructions per field (and a name `http` has no constant for is copied into a new
//! allocation); a proxied request reads nine or so names between its head and its answer, and nearly
//! all of them are spelled one of a few ways. A request forwarded by another replica (or by an
//! ingress proxy) also carries the forwarding and tracing fields, as this activator and its peers
//! write them (lowercase) or as proxies commonly capitalise them.

use http::{HeaderName, header};

/// The name `raw` spells, or `None` when it is not a valid field name.
pub fn header_name(raw: &[u8]) -> Option<HeaderName> {
    match known(raw) {
        Some(name) => Some(name),
        None => HeaderName::from_bytes(raw).ok(),
    }
}

/// The common spellings of the names most heads carry, lowercase and capitalised.
fn known(raw: &[u8]) -> Option<HeaderName> {
    Some(match raw {
        b"host" | b"Host" => header::HOST,
        b"user-agent" | b"User-Agent" => header::USER_AGENT,
        b"accept" | b"Accept" => header::ACCEPT,
        b"accept-encoding" | b"Accept-Encoding" => header::ACCEPT_ENCODING,
        b"accept-language" | b"Accept-Language" => header::ACCEPT_LANGUAGE,
        b"content-length" | b"Content-Length" => header::CONTENT_LENGTH,
        b"content-type" | b"Content-Type" => header::CONTENT_TYPE,
        b"connection" | b"Connection" => header::CONNECTION,
        b"date" | b"Date" => header::DATE,
        b"server" | b"Server" => header::SERVER,
        b"cache-control" | b"Cache-Control" => header::CACHE_CONTROL,
        b"authorization" | b"Authorization" => header::AUTHORIZATION,
        b"forwarded" | b"Forwarded" => header::FORWARDED,
        b"x-forwarded-for" | b"X-Forwarded-For" => X_FORWARDED_FOR,
        b"x-forwarded-host" | b"X-Forwarded-Host" => X_FORWARDED_HOST,
        b"x-forwarded-proto" | b"X-Forwarded-Proto" => X_FORWARDED_PROTO,
        b"x-real-ip" | b"X-Real-IP" => X_REAL_IP,
        b"x-request-id" | b"X-Request-Id" | b"X-Request-ID" => X_REQUEST_ID,
        b"traceparent" => TRACEPARENT,
        b"tracestate" => TRACESTATE,
        b"zeroscale-peer-hop" => PEER_HOP,
        b"zeroscale-peer-revision" => PEER_REVISION,
        _ => return None,
    })
}

// Constants, not statics: each use is the value built at compile time, with no validation to run.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const PEER_HOP: HeaderName = HeaderName::from_static("zeroscale-peer-hop");
const PEER_REVISION: HeaderName = HeaderName::from_static("zeroscale-peer-revision");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_spellings_are_the_names_http_parses() {
        for raw in [
            "host",
            "Host",
            "user-agent",
            "User-Agent",
            "accept",
            "Accept",
            "accept-encoding",
            "Accept-Encoding",
            "accept-language",
            "Accept-Language",
            "content-length",
            "Content-Length",
            "content-type",
            "Content-Type",
            "connection",
            "Connection",
            "date",
            "Date",
            "server",
            "Server",
            "cache-control",
            "Cache-Control",
            "authorization",
            "Authorization",
            "forwarded",
            "Forwarded",
            "x-forwarded-for",
            "X-Forwarded-For",
            "x-forwarded-host",
            "X-Forwarded-Host",
            "x-forwarded-proto",
            "X-Forwarded-Proto",
            "x-real-ip",
            "X-Real-IP",
            "x-request-id",
            "X-Request-Id",
            "X-Request-ID",
            "traceparent",
            "tracestate",
            "zeroscale-peer-hop",
            "zeroscale-peer-revision",
        ] {
            let fast = known(raw.as_bytes());
            assert!(fast.is_some(), "{raw} has no fast path");
            assert_eq!(fast, HeaderName::from_bytes(raw.as_bytes()).ok(), "{raw}");
        }
    }

    #[test]
    fn other_names_go_through_http_and_invalid_ones_are_refused() {
        assert_eq!(header_name(b"HOST"), Some(header::HOST));
        assert_eq!(
            header_name(b"X-Custom-Field"),
            Some(HeaderName::from_static("x-custom-field"))
        );
        assert_eq!(header_name(b"X-FORWARDED-FOR"), Some(X_FORWARDED_FOR));
        assert_eq!(header_name(b"bad name"), None);
        // The fields this activator writes are read back as the same names (the peers' own two are
        // in the list above: `upstream` does not depend on `peers`).
        for written in [&crate::headers::X_REQUEST_ID, &crate::headers::TRACEPARENT] {
            assert_eq!(known(written.as_str().as_bytes()).as_ref(), Some(written));
        }
        assert_eq!(header_name(b""), None);
    }
}
