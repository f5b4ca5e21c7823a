use bytes::BytesMut;
use http::{StatusCode, Version};

use super::*;

fn read_all(text: &str, to_head_request: bool) -> (Result<Option<Head>, HeadError>, BytesMut) {
    let mut buf = BytesMut::from(text.as_bytes());
    let head = read(&mut buf, to_head_request, &mut FieldSpans::new(), None);
    (head, buf)
}

/// [`read_all`] with the fields passed ([`PassedFields`]) where the head allows.
fn read_passed(
    text: &str,
    to_head_request: bool,
) -> (Result<Option<Head>, HeadError>, BytesMut, PassedFields) {
    let mut buf = BytesMut::from(text.as_bytes());
    let mut passed = PassedFields::default();
    let head = read(
        &mut buf,
        to_head_request,
        &mut FieldSpans::new(),
        Some(&mut passed),
    );
    (head, buf, passed)
}

fn head(text: &str) -> Head {
    match read_all(text, false) {
        (Ok(Some(head)), _) => head,
        (other, _) => panic!("{text:?}: {other:?}"),
    }
}

#[test]
fn a_head_with_a_length_is_taken_out_of_the_buffer_and_the_body_stays() {
    let (parsed, rest) = read_all(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nX-A: 1\r\nX-A: 2\r\n\r\nok\n",
        false,
    );
    let head = parsed.ok().flatten().unwrap_or_else(|| panic!("no head"));
    assert_eq!(head.response.status(), StatusCode::OK);
    assert_eq!(head.response.version(), Version::HTTP_11);
    assert_eq!(head.framing, Framing::Length(3));
    assert!(head.keep_alive);
    let headers = head.response.headers();
    assert_eq!(
        headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"text/plain"[..])
    );
    let repeated: Vec<_> = headers
        .get_all("x-a")
        .iter()
        .map(|v| v.as_bytes().to_vec())
        .collect();
    assert_eq!(repeated, [b"1".to_vec(), b"2".to_vec()]);
    assert_eq!(&rest[..], b"ok\n");
}

#[test]
fn a_partial_head_leaves_the_buffer_as_it_is() {
    let (parsed, rest) = read_all("HTTP/1.1 200 OK\r\nContent-Le", false);
    assert!(matches!(parsed, Ok(None)));
    assert_eq!(rest.len(), "HTTP/1.1 200 OK\r\nContent-Le".len());
}

#[test]
fn interim_heads_are_skipped() {
    let (parsed, rest) = read_all(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        false,
    );
    let head = parsed.ok().flatten().unwrap_or_else(|| panic!("no head"));
    assert_eq!(head.response.status(), StatusCode::CREATED);
    assert_eq!(head.framing, Framing::Length(0));
    assert!(rest.is_empty());
}

#[test]
fn a_switch_of_protocols_nobody_asked_for_is_an_error() {
    let (parsed, _) = read_all(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        false,
    );
    assert!(matches!(parsed, Err(HeadError::Parse(_))), "{parsed:?}");
}

#[test]
fn fields_of_this_hop_are_noted_and_left_out() {
    let head = head(
        "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nX-Kept: 1\r\n\r\n",
    );
    let names: Vec<_> = head
        .response
        .headers()
        .keys()
        .map(|n| n.as_str().to_string())
        .collect();
    assert_eq!(names, ["x-kept"]);
    assert_eq!(head.framing, Framing::Chunked);
    assert!(head.keep_alive);
    // A `Connection` that names another field stays, for the general pass to remove both.
    let head = self::head(
        "HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(head.response.headers().contains_key("connection"));
    assert!(!head.keep_alive);
}

#[test]
fn framing_follows_rfc_9112() {
    let cases = [
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            Framing::Chunked,
        ),
        // The transfer coding wins over a length.
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            Framing::Chunked,
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            Framing::Close,
        ),
        ("HTTP/1.1 200 OK\r\n\r\n", Framing::Close),
        (
            "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
            Framing::Empty,
        ),
        (
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            Framing::Empty,
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n",
            Framing::Length(7),
        ),
    ];
    for (text, framing) in cases {
        assert_eq!(head(text).framing, framing, "{text:?}");
    }
    let (parsed, _) = read_all("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true);
    assert_eq!(parsed.ok().flatten().map(|h| h.framing), Some(Framing::Empty));
}

#[test]
fn a_connection_is_kept_only_when_both_sides_may() {
    assert!(!head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive);
    assert!(!head("HTTP/1.1 200 OK\r\n\r\n").keep_alive, "a body to the close");
    assert!(!head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
    assert!(head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").keep_alive);
}

#[test]
fn bad_lengths_and_heads_are_errors() {
    for text in [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
    ] {
        assert_eq!(read_all(text, false).0.err(), Some(HeadError::Length), "{text:?}");
    }
    assert!(matches!(
        read_all("SSH-2.0-OpenSSH\r\n\r\n", false).0,
        Err(HeadError::Parse(_))
    ));
}

#[test]
fn an_oversized_head_is_refused() {
    let long = format!("HTTP/1.1 200 OK\r\nX-Big: {}", "a".repeat(MAX_HEAD_BYTES));
    assert_eq!(read_all(&long, false).0.err(), Some(HeadError::TooLarge));
    let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
    let text = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
    assert_eq!(read_all(&text, false).0.err(), Some(HeadError::TooLarge));
}

/// Heads as pods write them, and the odd ones above.
const HEADS: &[&str] = &[
    "HTTP/1.1 200 OK\r\nServer: nginx/1.26.3\r\nDate: Sat, 05 Dec 2026 14:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n",
    "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 2\r\nETag: W/\"2-l9Fw4VUO7kr8CvBlt4zaMCqXZ0w\"\r\nDate: Sat, 05 Dec 2026 14:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n{}",
    "HTTP/1.1 201 Created\r\nX-A: 1\r\nx-a: 2\r\nX-CuStOm-NaMe:  padded\tvalue \r\nContent-Length: 7, 7\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
    "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\nProxy-Connection: keep-alive\r\n\r\n",
    "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\nX-Obs: café\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    "HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Le",
];

#[test]
fn passed_fields_say_what_the_header_map_says() {
    for text in HEADS {
        for to_head_request in [false, true] {
            let (mapped, mapped_rest) = read_all(text, to_head_request);
            let (passed, passed_rest, fields) = read_passed(text, to_head_request);
            assert_eq!(passed_rest, mapped_rest, "{text:?}: what is left to read");
            let (mapped, passed) = match (mapped, passed) {
                (Ok(Some(mapped)), Ok(Some(passed))) => (mapped, passed),
                (mapped, passed) => {
                    assert_eq!(
                        mapped.map(|h| h.is_some()),
                        passed.map(|h| h.is_some()),
                        "{text:?}: the same error, or both partial"
                    );
                    continue;
                }
            };
            assert!(!mapped.passed);
            assert_eq!(passed.response.status(), mapped.response.status(), "{text:?}");
            assert_eq!(passed.response.version(), mapped.response.version(), "{text:?}");
            assert_eq!(passed.framing, mapped.framing, "{text:?}");
            assert_eq!(passed.keep_alive, mapped.keep_alive, "{text:?}");
            if !passed.passed {
                // Only a `Connection` naming another field keeps the header map.
                assert!(text.contains("X-Secret"), "{text:?}");
                assert_eq!(passed.response.headers(), mapped.response.headers());
                continue;
            }
            assert!(passed.response.headers().is_empty(), "{text:?}");
            let mut rebuilt = HeaderMap::new();
            fields.append_to(&mut rebuilt);
            assert_eq!(&rebuilt, mapped.response.headers(), "{text:?}");
            assert_eq!(
                fields.date,
                mapped.response.headers().contains_key("date"),
                "{text:?}"
            );
            let length = mapped
                .response
                .headers()
                .get("content-length")
                .map(|v| parse_length(v.as_bytes()));
            assert_eq!(fields.length.map(Ok), length, "{text:?}");
        }
    }
}

#[test]
fn passed_fields_are_lines_with_lowercase_names_in_the_pods_order() {
    let (head, _, fields) = read_passed(HEADS[2], false);
    assert!(head.is_ok_and(|h| h.is_some_and(|h| h.passed)));
    assert_eq!(
        String::from_utf8_lossy(&fields.lines),
        "x-a: 1\r\nx-a: 2\r\nx-custom-name: padded\tvalue\r\ncontent-length: 7, 7\r\n"
    );
    assert_eq!(fields.length, Some(7));
    assert!(!fields.date);
    // The buffer is reused: a second head replaces the first's lines.
    let mut buf = BytesMut::from(HEADS[4].as_bytes());
    let mut fields = fields;
    let head = read(&mut buf, false, &mut FieldSpans::new(), Some(&mut fields));
    assert!(head.is_ok_and(|h| h.is_some_and(|h| h.passed)));
    assert_eq!(String::from_utf8_lossy(&fields.lines), "content-length: 9\r\n");
}
