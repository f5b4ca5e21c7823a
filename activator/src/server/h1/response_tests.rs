use http::HeaderValue;

use super::*;

fn head(
    status: u16,
    fields: &[(&str, &str)],
    body: SizeHint,
    to_head: bool,
    close: bool,
) -> (String, Written) {
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    let mut out = Vec::new();
    let status = StatusCode::from_u16(status).expect("status");
    let written = write_head(status, &headers, None, &body, to_head, close, &mut out);
    (String::from_utf8(out).expect("ascii"), written)
}

fn date_line(text: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with("date: ") && l.ends_with(" GMT"))
}

#[test]
fn a_body_of_known_size_gets_its_length_and_the_head_a_date() {
    let (text, written) = head(
        200,
        &[("content-type", "text/plain")],
        SizeHint::with_exact(3),
        false,
        false,
    );
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\ncontent-length: 3\r\n"), "{text}");
    assert!(date_line(&text), "{text}");
    assert!(text.ends_with("\r\n\r\n"));
    assert_eq!(
        written,
        Written {
            framing: Framing::Length(3),
            close: false
        }
    );
}

#[test]
fn a_length_the_response_gives_is_kept_and_a_streamed_body_is_chunked() {
    let (text, written) = head(200, &[("content-length", "10")], SizeHint::new(), false, false);
    assert_eq!(text.matches("content-length").count(), 1, "{text}");
    assert_eq!(written.framing, Framing::Length(10));
    let (text, written) = head(
        200,
        &[("transfer-encoding", "chunked")],
        SizeHint::new(),
        false,
        false,
    );
    assert_eq!(text.matches("transfer-encoding: chunked").count(), 1, "{text}");
    assert_eq!(written.framing, Framing::Chunked);
    let (_, written) = head(
        200,
        &[("content-length", "1, 2")],
        SizeHint::with_exact(2),
        false,
        false,
    );
    assert_eq!(
        written.framing,
        Framing::Length(2),
        "an invalid length: the body's size decides"
    );
}

#[test]
fn head_requests_and_bodiless_statuses_send_no_body() {
    let (text, written) = head(
        200,
        &[("content-length", "42")],
        SizeHint::with_exact(0),
        true,
        false,
    );
    assert!(
        text.contains("content-length: 42"),
        "HEAD keeps the length of what GET would send"
    );
    assert_eq!(written.framing, Framing::Empty);
    for status in [204, 304] {
        let (_, written) = head(status, &[], SizeHint::with_exact(0), false, false);
        assert_eq!(written.framing, Framing::Empty, "{status}");
    }
}

#[test]
fn a_closing_connection_says_so_once() {
    let (text, written) = head(503, &[], SizeHint::with_exact(0), false, true);
    assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
    assert_eq!(text.matches("connection: close").count(), 1, "{text}");
    assert!(written.close);
    let (text, written) = head(
        200,
        &[("connection", "close")],
        SizeHint::with_exact(0),
        false,
        false,
    );
    assert_eq!(text.matches("connection: close").count(), 1, "{text}");
    assert!(written.close, "a response that closes the connection closes it");
    let (_, written) = head(
        200,
        &[("date", "Tue, 01 Dec 2026 00:00:00 GMT")],
        SizeHint::with_exact(0),
        false,
        false,
    );
    assert!(!written.close);
}

#[test]
fn a_pods_passed_fields_are_written_as_its_header_map_was() {
    let heads = [
        "HTTP/1.1 200 OK\r\nServer: nginx/1.26.3\r\nDate: Sat, 05 Dec 2026 14:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n",
        "HTTP/1.1 404 Not Found\r\nX-Powered-By: Express\r\nContent-Type: text/html\r\nDate: Sat, 05 Dec 2026 14:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\nDate: Sat, 05 Dec 2026 14:00:00 GMT\r\n\r\n",
        // No `Date`: the head gets the activator's.
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
    ];
    for text in heads {
        let read = |passed: Option<&mut PassedFields>| {
            let mut buf = bytes::BytesMut::from(text.as_bytes());
            match crate::upstream::h1::read_head(&mut buf, false, &mut Vec::new(), passed) {
                Ok(Some(head)) => head,
                other => panic!("{text:?}: {other:?}"),
            }
        };
        let mapped = read(None);
        let mut fields = PassedFields::default();
        let passed = read(Some(&mut fields));
        assert!(passed.passed, "{text:?}");
        let hint = |framing| match framing {
            crate::upstream::h1::Framing::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        };
        let write = |headers, fields, framing| {
            let mut out = Vec::new();
            let written = write_head(
                mapped.response.status(),
                headers,
                fields,
                &hint(framing),
                false,
                false,
                &mut out,
            );
            // The activator's own `Date` (this second's) is compared by its presence only.
            let text = String::from_utf8(out).expect("ascii");
            let lines: Vec<String> = text
                .split("\r\n")
                .map(|l| {
                    if date_line(l) && !l.contains("14:00:00") {
                        "date: (now)".into()
                    } else {
                        l.into()
                    }
                })
                .collect();
            (lines, written)
        };
        assert_eq!(
            write(passed.response.headers(), Some(&fields), passed.framing),
            write(mapped.response.headers(), None, mapped.framing),
            "{text:?}"
        );
    }
}
