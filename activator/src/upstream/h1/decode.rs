//! A pod's response head: parsed with `httparse` from the connection's read buffer, its header values
//! kept as slices of that buffer, and how its body is delimited (RFC 9112 §6.3).

use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, Version};

use super::passed::PassedFields;

/// Most header fields accepted in a pod's response head.
pub const MAX_HEADERS: usize = 100;

/// Largest response head accepted from a pod.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How a response body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: a `HEAD` request, or a status that has none (`204`, `304`).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the pod closes the connection.
    Close,
}

/// A pod's response head that could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Not HTTP/1.x, or malformed.
    #[error("invalid response head: {0}")]
    Parse(String),
    /// Larger than [`MAX_HEAD_BYTES`] or with more than [`MAX_HEADERS`] fields.
    #[error("response head too large")]
    TooLarge,
    /// `Content-Length` that is not one number (RFC 9112 §6.3, item 5).
    #[error("invalid content-length")]
    Length,
}

/// A response head read whole.
#[derive(Debug)]
pub struct Head {
    /// The response, without its body.
    pub response: Response<()>,
    /// How its body is delimited.
    pub framing: Framing,
    /// Whether the connection can carry another request once the body ended.
    pub keep_alive: bool,
    /// Whether the fields went to the caller's [`PassedFields`] rather than `response`'s header map.
    pub passed: bool,
}

/// The header fields of a head being read: names, and where their values lie in the head. Kept by
/// the connection between responses, so reading a head allocates no list of its own.
pub type FieldSpans = Vec<(HeaderName, std::ops::Range<usize>)>;

/// Reads the response head at the start of `buf`, skipping interim `1xx` heads, and removes it from
/// `buf`; `None` until a whole head has arrived. With `passed`, the fields the client gets are copied
/// there ([`Head::passed`]), unless a `Connection` field names others, which the general hop-by-hop
/// pass then removes from a header map. Without, or then, header values share the head's bytes.
/// `to_head_request`: the request was `HEAD`, so no body follows whatever the head says. `names` is
/// scratch space, left empty.
pub fn read(
    buf: &mut BytesMut,
    to_head_request: bool,
    names: &mut FieldSpans,
    mut passed: Option<&mut PassedFields>,
) -> Result<Option<Head>, HeadError> {
    loop {
        // Left uninitialised: httparse writes the fields it finds (filling the array would cost
        // more than parsing a typical head).
        let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let config = httparse::ParserConfig::default();
        let len = match config.parse_response_with_uninit_headers(&mut parsed, buf, &mut fields) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => return Err(HeadError::TooLarge),
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(e) => return Err(HeadError::Parse(e.to_string())),
        };
        let code = parsed.code.unwrap_or_default();
        // `101` answers an upgrade, which goes over a connection of its own: here it is an error.
        if code == 101 {
            return Err(HeadError::Parse(
                "switching protocols without an upgrade request".into(),
            ));
        }
        if (100..200).contains(&code) {
            let _ = buf.split_to(len);
            continue;
        }
        let status = StatusCode::from_u16(code).map_err(|_| HeadError::Parse(format!("status {code}")))?;
        let version = if parsed.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.version_mut() = version;
        let mut fields = Fields::default();
        if let Some(passed) = passed.as_deref_mut()
            && pass(parsed.headers, &mut fields, passed)?
        {
            buf.advance(len);
            return Ok(Some(fields.head(response, to_head_request, true)));
        }
        let base = buf.as_ptr() as usize;
        fields = Fields::default();
        names.clear();
        for field in parsed.headers.iter() {
            let name = super::header_name(field.name.as_bytes())
                .ok_or_else(|| HeadError::Parse(format!("header name {:?}", field.name)))?;
            if fields.note(name.as_str().as_bytes(), field.value)? == Note::Hop {
                continue;
            }
            // Where the value lies in the head, to slice it once the head is taken out of `buf`.
            let start = field.value.as_ptr() as usize - base;
            names.push((name, start..start + field.value.len()));
        }
        let head = buf.split_to(len).freeze();
        let mut headers = HeaderMap::with_capacity(names.len());
        for (name, range) in names.drain(..) {
            let value = HeaderValue::from_maybe_shared(head.slice(range))
                .map_err(|_| HeadError::Parse(format!("header value of {name}")))?;
            headers.append(name, value);
        }
        *response.headers_mut() = headers;
        return Ok(Some(fields.head(response, to_head_request, false)));
    }
}

/// Copies the fields the client gets into `passed`, noting the others in `fields`; false when a
/// `Connection` field names other fields (left to the general hop-by-hop pass).
fn pass(
    headers: &[httparse::Header<'_>],
    fields: &mut Fields,
    passed: &mut PassedFields,
) -> Result<bool, HeadError> {
    passed.clear();
    for field in headers {
        let start = passed.push_name(field.name.as_bytes());
        match fields.note(passed.name_at(start), field.value)? {
            Note::Pass => passed.push_value(field.value),
            Note::Hop => passed.drop_from(start),
            Note::NamesOthers => return Ok(false),
        }
    }
    passed.length = fields.length;
    passed.date = fields.date;
    Ok(true)
}

/// What a field is to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Note {
    /// It goes to the client.
    Pass,
    /// A field of this hop only, whose meaning is noted, which the client must not get.
    Hop,
    /// A `Connection` field that names other fields, to be removed with it.
    NamesOthers,
}

/// What the fields that delimit the message and the connection said.
#[derive(Debug, Default)]
struct Fields {
    length: Option<u64>,
    encoded: bool,
    chunked: bool,
    close: bool,
    keep_alive: bool,
    date: bool,
}

impl Fields {
    /// Notes what the field `name` (lowercase) says of the message and the connection. A field of
    /// this hop only, whose meaning is now noted, is left out here (RFC 9110 §7.6.1): that spares the
    /// response the general hop-by-hop pass (`headers::strip_hop_by_hop`), which a `Connection:
    /// keep-alive` from the pod (Node.js, nginx) would otherwise take.
    fn note(&mut self, name: &[u8], value: &[u8]) -> Result<Note, HeadError> {
        Ok(match name {
            b"content-length" => {
                let n = parse_length(value)?;
                if self.length.is_some_and(|l| l != n) {
                    return Err(HeadError::Length);
                }
                self.length = Some(n);
                Note::Pass
            }
            b"date" => {
                self.date = true;
                Note::Pass
            }
            b"transfer-encoding" => {
                self.encoded = true;
                // Only the last coding says how the message ends (RFC 9112 §6.3, item 4).
                self.chunked = last_token(value).eq_ignore_ascii_case(b"chunked");
                Note::Hop
            }
            b"connection" => self.connection(value),
            b"keep-alive" | b"proxy-connection" => Note::Hop,
            _ => Note::Pass,
        })
    }

    /// Notes a `Connection` field's options in one pass over its tokens. One that names other
    /// fields stays, so the general pass removes those too.
    fn connection(&mut self, value: &[u8]) -> Note {
        let mut others = false;
        for token in tokens(value) {
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else {
                others |= !token.is_empty();
            }
        }
        if others { Note::NamesOthers } else { Note::Hop }
    }

    /// The head of `response` (status and version set), framed as these fields say; `passed`: its
    /// fields went to a [`PassedFields`].
    fn head(&self, response: Response<()>, to_head_request: bool, passed: bool) -> Head {
        let framing = self.framing(response.status(), to_head_request);
        Head {
            keep_alive: self.persistent(response.version()) && framing != Framing::Close,
            response,
            framing,
            passed,
        }
    }

    /// How the body ends (RFC 9112 §6.3): none for `HEAD` and bodiless statuses; the transfer coding
    /// over `Content-Length`; the connection's end when neither says.
    fn framing(&self, status: StatusCode, to_head_request: bool) -> Framing {
        if to_head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            Framing::Empty
        } else if self.encoded {
            if self.chunked {
                Framing::Chunked
            } else {
                Framing::Close
            }
        } else {
            self.length.map_or(Framing::Close, Framing::Length)
        }
    }

    /// Whether the connection stays open after this response (RFC 9112 §9.3).
    fn persistent(&self, version: Version) -> bool {
        match version {
            Version::HTTP_10 => self.keep_alive && !self.close,
            _ => !self.close,
        }
    }
}

/// A `Content-Length` value: one decimal number, or the same number repeated in a list.
pub fn parse_length(value: &[u8]) -> Result<u64, HeadError> {
    let mut found: Option<u64> = None;
    for part in value.split(|&b| b == b',') {
        let digits = part.trim_ascii();
        if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(HeadError::Length);
        }
        let n = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if found.is_some_and(|f| f != n) {
            return Err(HeadError::Length);
        }
        found = Some(n);
    }
    found.ok_or(HeadError::Length)
}

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

/// Whether the comma-separated list `value` holds `token` (any case).
pub fn has_token(value: &[u8], token: &[u8]) -> bool {
    tokens(value).any(|t| t.eq_ignore_ascii_case(token))
}

fn last_token(value: &[u8]) -> &[u8] {
    tokens(value).filter(|t| !t.is_empty()).last().unwrap_or_default()
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
