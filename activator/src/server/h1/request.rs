//! A client's HTTP/1.1 request head, parsed with `httparse` from the connection's buffer into a
//! request whose header values share the head's bytes, when the activator serves it itself: see
//! [`Parsed`] for which requests are left to hyper.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Uri, Version, header};

use crate::{
    client_body::{ClientBody, ClientRequest},
    upstream::{
        h1::{FieldSpans, has_token, header_name, parse_length},
        request::REPLAY_LIMIT,
    },
};

/// What the start of a connection's buffer holds.
// Taken apart as soon as it is returned: boxing the request would cost every request an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed {
    /// A whole request, its body included, taken out of the buffer.
    Request {
        /// The request.
        request: ClientRequest,
        /// The client asked for the connection to be closed after it (`Connection: close`).
        close: bool,
    },
    /// Not a whole head yet.
    Partial,
    /// A whole head whose body (small enough to keep whole) has not all arrived. Nothing was taken
    /// out of the buffer. The server waits for the rest within the header-read timeout, then leaves
    /// the connection to hyper, which reads a body as it comes.
    Body,
    /// A request hyper serves, from here to the connection's end: malformed or too large (hyper
    /// answers 400 or 431), HTTP/1.0, an upgrade or `CONNECT`, `Expect`, a `Transfer-Encoding`, or a
    /// body larger than the pipeline keeps whole (or one that did not follow its head in time: see
    /// [`Parsed::Body`]).
    /// Nothing was taken out of the buffer.
    Unsuited,
}

/// Reads the request at the start of `buf`. `max_headers` and `max_head_bytes` are the server's
/// limits; `spans` is scratch space, left empty.
pub fn parse(
    buf: &mut BytesMut,
    max_headers: usize,
    max_head_bytes: usize,
    spans: &mut FieldSpans,
) -> Parsed {
    // Left uninitialised: httparse writes the fields it finds (filling the array would cost more
    // than parsing a typical head).
    let mut fields = [const { MaybeUninit::uninit() }; MAX_FIELDS];
    let mut parsed = httparse::Request::new(&mut []);
    let len = match parsed.parse_with_uninit_headers(buf, &mut fields[..max_headers.min(MAX_FIELDS)]) {
        Ok(httparse::Status::Complete(len)) if len <= max_head_bytes => len,
        Ok(httparse::Status::Partial) if buf.len() < max_head_bytes => return Parsed::Partial,
        _ => return Parsed::Unsuited,
    };
    if parsed.version != Some(1) {
        return Parsed::Unsuited;
    }
    let (Some(method), Some(path)) = (parsed.method, parsed.path) else {
        return Parsed::Unsuited;
    };
    // `CONNECT` turns the connection into a tunnel: hyper's.
    let Some(method) = Method::from_bytes(method.as_bytes())
        .ok()
        .filter(|m| m != Method::CONNECT)
    else {
        return Parsed::Unsuited;
    };
    let base = buf.as_ptr() as usize;
    let span = |field: &[u8]| {
        let start = field.as_ptr() as usize - base;
        start..start + field.len()
    };
    let target = span(path.as_bytes());
    let mut length = None;
    let mut close = false;
    spans.clear();
    for field in parsed.headers.iter() {
        let Some(name) = header_name(field.name.as_bytes()) else {
            return unsuited(spans);
        };
        if name == header::CONTENT_LENGTH {
            match parse_length(field.value) {
                Ok(n) if length.is_none_or(|l| l == n) => length = Some(n),
                _ => return unsuited(spans),
            }
        } else if name == header::TRANSFER_ENCODING || name == header::EXPECT || name == header::UPGRADE {
            return unsuited(spans);
        } else if name == header::CONNECTION {
            close |= has_token(field.value, b"close");
        }
        spans.push((name, span(field.value)));
    }
    let body_len = match usize::try_from(length.unwrap_or(0)) {
        Ok(n) if n <= REPLAY_LIMIT && buf.len() - len >= n => n,
        Ok(n) if n <= REPLAY_LIMIT => {
            spans.clear();
            return Parsed::Body;
        }
        _ => return unsuited(spans),
    };
    let head = buf.split_to(len).freeze();
    let body = buf.split_to(body_len).freeze();
    match build(method, &head, target, spans, body.clone()) {
        Some(request) => Parsed::Request { request, close },
        // A target or value httparse let through and `http` refuses (rare): hyper answers it, from
        // the bytes as they came.
        None => {
            let mut whole = BytesMut::with_capacity(head.len() + body.len() + buf.len());
            for part in [&head[..], &body[..], &buf[..]] {
                whole.extend_from_slice(part);
            }
            *buf = whole;
            Parsed::Unsuited
        }
    }
}

/// Most header fields read in a head: the server's limit is lower (`ServerLimits::max_headers`).
const MAX_FIELDS: usize = 128;

fn unsuited(spans: &mut FieldSpans) -> Parsed {
    spans.clear();
    Parsed::Unsuited
}

/// The request from its parsed parts; `None` when the target or a value is not valid for `http`.
fn build(
    method: Method,
    head: &Bytes,
    target: std::ops::Range<usize>,
    spans: &mut FieldSpans,
    body: Bytes,
) -> Option<ClientRequest> {
    let uri = Uri::from_maybe_shared(head.slice(target)).ok();
    let mut headers = HeaderMap::with_capacity(spans.len() + crate::headers::ADDED_REQUEST_FIELDS);
    let mut valid = uri.is_some();
    for (name, range) in spans.drain(..) {
        match HeaderValue::from_maybe_shared(head.slice(range)) {
            Ok(value) => {
                headers.append(name, value);
            }
            Err(_) => valid = false,
        }
    }
    let mut request = Request::new(ClientBody::Read(Some(body)));
    *request.method_mut() = method;
    *request.uri_mut() = uri.filter(|_| valid)?;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(request)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
