//! Header names as heads spell them, turned into [`HeaderName`]s: the most common spellings (as
//! clients, pods and nginx write them) by one comparison, any other through `http`'s own parser.
//!
//! Why: `HeaderName::from_bytes` lowercases each name into a scratch buffer and then matches it, about
//! a hundred instructions per field; a proxied request reads nine or so names between its head and
//! its answer, and nearly all of them are spelled one of a few ways.

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
        _ => return None,
    })
}

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
            header_name(b"X-Forwarded-For"),
            Some(HeaderName::from_static("x-forwarded-for"))
        );
        assert_eq!(header_name(b"bad name"), None);
        assert_eq!(header_name(b""), None);
    }
}
