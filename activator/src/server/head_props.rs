//! The head parser against arbitrary bytes: it never panics, never reads a `Host` that is not in the
//! bytes, and a complete head it cannot use goes to hyper (which answers 4xx), never to a function.

use proptest::prelude::*;

use super::*;

/// Request line parts, header lines and the ending, as generated.
type HeadParts = (String, String, String, Vec<(String, Vec<u8>)>, String);

/// Request-head-like bytes: a request line, some header lines, maybe the empty line, with noise.
fn headish() -> impl Strategy<Value = Vec<u8>> {
    let s = |v: &str| Just(v.to_string());
    let method = prop_oneof![s("GET"), s("POST"), s("PRI"), s("G\0T"), "[A-Z]{0,8}"];
    let target = prop_oneof![s("/"), s("*"), s("http://x/"), "[ -~]{0,12}"];
    let version = prop_oneof![s("HTTP/1.1"), s("HTTP/1.0"), s("HTTP/2.0"), "[ -~]{0,9}"];
    let header = (
        prop_oneof![Just("Host".to_string()), Just("hOsT".to_string()), "[ -~]{0,10}"],
        prop::collection::vec(any::<u8>(), 0..16),
    );
    let end = prop_oneof![s("\r\n\r\n"), s("\n\n"), s("\r\n"), s("")];
    (method, target, version, prop::collection::vec(header, 0..6), end).prop_map(
        |(method, target, version, headers, end): HeadParts| {
            let mut bytes = format!("{method} {target} {version}\r\n").into_bytes();
            for (name, value) in headers {
                bytes.extend_from_slice(name.as_bytes());
                bytes.extend_from_slice(b": ");
                bytes.extend_from_slice(&value);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(end.as_bytes());
            bytes
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = classify(&bytes);
        let _ = ends_head(&bytes);
    }

    #[test]
    fn a_host_read_early_is_a_host_header_of_a_complete_head(bytes in headish()) {
        match classify(&bytes) {
            Head::Http1 { host } => {
                let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
                prop_assert!(text.contains(&host.to_ascii_lowercase()), "{text:?} {host:?}");
                prop_assert!(ends_head(&bytes));
            }
            Head::Http2 => prop_assert!(bytes.starts_with(H2_PREFACE)),
            Head::Partial | Head::Other => {}
        }
    }

    #[test]
    fn every_prefix_of_a_head_is_partial_or_final(bytes in headish(), cut in any::<prop::sample::Index>()) {
        let prefix = &bytes[..cut.index(bytes.len() + 1)];
        // Feeding the head in pieces never gives an answer that the whole head contradicts.
        if let Head::Http1 { host } = classify(prefix) {
            prop_assert_eq!(classify(&bytes), Head::Http1 { host });
        }
    }
}
