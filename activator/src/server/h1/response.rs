//! The head of a response the activator writes to a client itself, and how its body is delimited
//! (RFC 9112 §6): as the response's `Content-Length` says, else by the body's exact size, else
//! chunked.

use std::{cell::RefCell, time::SystemTime};

use http::{HeaderMap, StatusCode, header};
use http_body::SizeHint;

use crate::{
    body::ResponseBody,
    trace::Traced,
    upstream::h1::{PassedFields, digits, has_token, parse_length},
};

/// How a response body goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: a `HEAD` request, or a status that has none (`1xx`, `204`, `304`).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What writing a response head decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// How the body follows.
    pub framing: Framing,
    /// The connection closes after this response.
    pub close: bool,
}

/// A response body that may carry its pod's fields as lines to write after the header map's
/// (`upstream/h1/passed.rs`).
pub trait PassesFields {
    /// The fields, when the pod's head passed them.
    fn passed_fields(&self) -> Option<&PassedFields> {
        None
    }
}

impl PassesFields for Traced<ResponseBody> {
    fn passed_fields(&self) -> Option<&PassedFields> {
        self.inner().passed_fields()
    }
}

/// Appends the HTTP/1.1 head of a response with `status`, `headers` and the pod's `passed` fields
/// to `out`. `body` is the body's size hint; `to_head`: the request was `HEAD`; `close`: the
/// connection closes after this response, which the head then says (a response that says so closes
/// it too).
pub fn write_head(
    status: StatusCode,
    headers: &HeaderMap,
    passed: Option<&PassedFields>,
    body: &SizeHint,
    to_head: bool,
    close: bool,
    out: &mut Vec<u8>,
) -> Written {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or_default().as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut length = None;
    let mut close = close;
    for (name, value) in headers {
        if name == header::TRANSFER_ENCODING {
            // The framing is this hop's, decided below.
            continue;
        }
        if name == header::CONTENT_LENGTH {
            match parse_length(value.as_bytes()) {
                Ok(n) if length.is_none_or(|l| l == n) => length = Some(n),
                // Repeated or invalid: the body's size decides instead.
                _ => continue,
            }
        }
        if name == header::CONNECTION {
            close |= has_token(value.as_bytes(), b"close");
            continue;
        }
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    // Checked as they were read: no hop-by-hop field, and any `Content-Length` repeats agree.
    if let Some(passed) = passed {
        out.extend_from_slice(&passed.lines);
        length = length.or(passed.length);
    }
    if !headers.contains_key(header::DATE) && !passed.is_some_and(|p| p.date) {
        DATE.with_borrow_mut(|date| field(out, b"date", date.now()));
    }
    let bodiless = to_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = match (bodiless, length, body.exact()) {
        (true, ..) => Framing::Empty,
        (false, Some(n), _) => Framing::Length(n),
        (false, None, Some(n)) => {
            field(out, b"content-length", digits(n, 10, &mut [0; 20]));
            Framing::Length(n)
        }
        (false, None, None) => {
            field(out, b"transfer-encoding", b"chunked");
            Framing::Chunked
        }
    };
    if close {
        field(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    Written { framing, close }
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The `Date` of responses, formatted once per second per thread.
struct CachedDate {
    second: u64,
    text: Vec<u8>,
}

impl CachedDate {
    fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = httpdate::fmt_http_date(now).into_bytes();
        }
        &self.text
    }
}

thread_local! {
    static DATE: RefCell<CachedDate> = const { RefCell::new(CachedDate { second: 0, text: Vec::new() }) };
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
