//! The request head as the pod reads it, written straight from the request's parts into one buffer
//! that goes out with the body in a single `writev`.

use http::{HeaderMap, Method, Request, Uri, header, request::Parts};

use crate::forwarding::{FieldWriter, Forwarding};

/// The parts of a request its head is written from: a request's, or the parts a request was taken
/// apart into and kept for another attempt (written without building a request again).
#[derive(Clone, Copy, Debug)]
pub struct HeadRef<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The target (only its path and query are written).
    pub uri: &'a Uri,
    /// The header fields, hop-by-hop ones already removed.
    pub headers: &'a HeaderMap,
    /// Forwarding fields written with the head rather than kept in `headers`.
    pub forwarding: Option<&'a Forwarding>,
}

impl<'a> HeadRef<'a> {
    /// The head of `request`.
    pub fn of<B>(request: &'a Request<B>) -> Self {
        Self {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            forwarding: None,
        }
    }

    /// The head kept in `parts`, with `forwarding` to write with it.
    pub fn of_parts(parts: &'a Parts, forwarding: Option<&'a Forwarding>) -> Self {
        Self {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            forwarding,
        }
    }
}

/// Whether a request with this method is expected to carry a body, so an empty one is announced
/// (`Content-Length: 0`) rather than left out (RFC 9110 §8.6).
fn expects_body(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::CONNECT | Method::TRACE
    )
}

/// How a kept request body is delimited on its way to the pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delimited {
    /// By `Content-Length` (this many bytes).
    Length(usize),
    /// Chunked, so trailers can follow it ([`chunked_body`]).
    Chunked,
}

/// Appends the HTTP/1.1 head of `request` to `out`: the request line (origin-form target), its
/// headers as they are (hop-by-hop ones were removed before) with its forwarding fields, and the
/// body's own `Content-Length` (or `Transfer-Encoding: chunked`) in place of any the client sent,
/// since the body that goes out is the one kept here.
pub fn request_head(request: HeadRef<'_>, body: Delimited, out: &mut Vec<u8>) {
    out.extend_from_slice(request.method.as_str().as_bytes());
    out.push(b' ');
    let target = request.uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut fields = FieldWriter::new(request.forwarding);
    for (name, value) in request.headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        fields.field(name, value, out);
    }
    fields.finish(out);
    match body {
        Delimited::Length(len) if len > 0 || expects_body(request.method) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(digits(len as u64, 10, &mut [0; 20]));
            out.extend_from_slice(b"\r\n");
        }
        Delimited::Length(_) => {}
        Delimited::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `body` as one chunk (none when empty), the last chunk and `trailers` to `out`: a kept
/// body that came with trailers (from an HTTP/2 client) keeps them on its way to an HTTP/1.1 pod.
pub fn chunked_body(body: &[u8], trailers: &HeaderMap, out: &mut Vec<u8>) {
    if !body.is_empty() {
        out.extend_from_slice(digits(body.len() as u64, 16, &mut [0; 20]));
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    last_chunk(Some(trailers), out);
}

/// Appends the last chunk of a chunked body to `out`, with `trailers` when there are some.
pub fn last_chunk(trailers: Option<&HeaderMap>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// `n` in base `radix` (10, or 16 for chunk sizes; lowercase), written into the end of `buf`.
pub fn digits(mut n: u64, radix: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        // `n % radix` is below 16: the cast keeps it whole.
        buf[at] = b"0123456789abcdef"[(n % radix) as usize];
        n /= radix;
        if n == 0 {
            return &buf[at..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn encoded(parts: &Request<()>, body_len: usize) -> String {
        let mut out = Vec::new();
        request_head(HeadRef::of(parts), Delimited::Length(body_len), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn a_get_goes_out_as_it_came_without_a_length() {
        let parts = head(
            "GET",
            "/a/b?c=d",
            &[("host", "hello.example"), ("x-request-id", "r1")],
        );
        assert_eq!(
            encoded(&parts, 0),
            "GET /a/b?c=d HTTP/1.1\r\nhost: hello.example\r\nx-request-id: r1\r\n\r\n"
        );
    }

    #[test]
    fn the_length_is_the_kept_body_s_not_the_client_s() {
        let parts = head(
            "POST",
            "/",
            &[
                ("content-length", "99"),
                ("transfer-encoding", "chunked"),
                ("host", "h"),
            ],
        );
        assert_eq!(
            encoded(&parts, 12_345),
            "POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 12345\r\n\r\n"
        );
    }

    #[test]
    fn an_empty_post_announces_its_empty_body() {
        let parts = head("POST", "/", &[]);
        assert_eq!(encoded(&parts, 0), "POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
        let parts = head("DELETE", "/x", &[]);
        assert_eq!(encoded(&parts, 0), "DELETE /x HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn repeated_headers_stay_repeated_and_in_order() {
        let parts = head("GET", "/", &[("cookie", "a=1"), ("x-b", "2"), ("cookie", "c=3")]);
        let text = encoded(&parts, 0);
        assert!(text.contains("cookie: a=1\r\ncookie: c=3\r\n"), "{text}");
        assert!(text.contains("x-b: 2\r\n"), "{text}");
    }

    #[test]
    fn an_absolute_target_goes_out_in_origin_form() {
        let parts = head("GET", "http://pod:8080/p?q", &[]);
        assert!(encoded(&parts, 0).starts_with("GET /p?q HTTP/1.1\r\n"));
        let parts = head("OPTIONS", "http://pod:8080", &[]);
        assert!(encoded(&parts, 0).starts_with("OPTIONS / HTTP/1.1\r\n"));
    }

    #[test]
    fn a_body_with_trailers_goes_out_chunked_with_them() {
        let parts = head("POST", "/", &[("content-length", "5"), ("host", "h")]);
        let mut out = Vec::new();
        request_head(HeadRef::of(&parts), Delimited::Chunked, &mut out);
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", http::HeaderValue::from_static("abc"));
        chunked_body(b"hello", &trailers, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "POST / HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n\
             5\r\nhello\r\n0\r\nx-checksum: abc\r\n\r\n"
        );
        let mut empty = Vec::new();
        chunked_body(b"", &trailers, &mut empty);
        assert_eq!(
            &empty[..],
            b"0\r\nx-checksum: abc\r\n\r\n",
            "no empty chunk before the last"
        );
    }

    #[test]
    fn numbers_in_decimal_and_hexadecimal() {
        for n in [0, 7, 10, 255, 65_536, u64::MAX] {
            assert_eq!(digits(n, 10, &mut [0; 20]), n.to_string().as_bytes());
            assert_eq!(digits(n, 16, &mut [0; 20]), format!("{n:x}").as_bytes());
        }
    }
}
