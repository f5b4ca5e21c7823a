//! A pod's response fields passed on to the client as lines, not through a [`HeaderMap`].
//!
//! Why: a proxied response's head was parsed into a header map (a name lookup, a value check and a
//! hashed insert per field, the map's allocations) only to be written out again field by field,
//! about 2,000 instructions of a request's ~29,000 (#19). Nothing in the activator reads a pod's
//! response fields apart from those that frame the message, which [`super::decode`] notes as it
//! reads them. So the fields the client gets are copied once, as `name: value` lines with the name
//! lowercased (as a header map writes it), into a buffer the connection keeps between responses; the
//! activator's own HTTP/1.1 server writes them as they are ([`crate::server`]), and a response that
//! goes out through hyper (an HTTP/2 client) has them put into its header map first ([`append_to`]).

use http::{HeaderMap, HeaderName, HeaderValue};

/// The fields of a response head that go to the client as the pod sent them.
#[derive(Debug, Default)]
pub struct PassedFields {
    /// `name: value\r\n` per field, names lowercased, in the pod's order; no hop-by-hop field.
    pub lines: Vec<u8>,
    /// The body's `Content-Length`, when the head gave one (repeats agreed: see `decode`).
    pub length: Option<u64>,
    /// Whether one of the lines is a `Date`.
    pub date: bool,
}

impl PassedFields {
    /// Starts a head's fields, keeping the buffer's capacity.
    pub(super) fn clear(&mut self) {
        self.lines.clear();
        self.length = None;
        self.date = false;
    }

    /// Appends the field `name: value` (the name lowercased); returns where its name starts, so
    /// [`PassedFields::name_at`] can look at it and [`PassedFields::drop_from`] take it back.
    pub(super) fn push_name(&mut self, name: &[u8]) -> usize {
        let start = self.lines.len();
        self.lines.extend_from_slice(name);
        self.lines[start..].make_ascii_lowercase();
        start
    }

    /// The lowercased name pushed at `start`.
    pub(super) fn name_at(&self, start: usize) -> &[u8] {
        &self.lines[start..]
    }

    /// Completes the field whose name was pushed last with its `value`.
    pub(super) fn push_value(&mut self, value: &[u8]) {
        self.lines.extend_from_slice(b": ");
        self.lines.extend_from_slice(value);
        self.lines.extend_from_slice(b"\r\n");
    }

    /// Takes back the name pushed at `start` (a field the client does not get).
    pub(super) fn drop_from(&mut self, start: usize) {
        self.lines.truncate(start);
    }

    /// The fields as `(name, value)` pairs.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.lines
            .split(|&b| b == b'\n')
            .filter_map(|line| line.strip_suffix(b"\r"))
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                Some((&line[..colon], line[colon + 1..].trim_ascii_start()))
            })
    }

    /// Appends the fields to `headers`, for a response that goes out through hyper. The lines were
    /// checked as they were read (`httparse`: token names, values without control bytes), so none
    /// is left out in practice; one that `http` refused would be.
    pub fn append_to(&self, headers: &mut HeaderMap) {
        headers.reserve(self.lines.len() / 24);
        for (name, value) in self.fields() {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                headers.append(name, value);
            }
        }
    }
}
