//! The forwarding fields the activator adds to a request from a client that came in over plain HTTP:
//! `X-Forwarded-For` and `Forwarded` (RFC 7239) get this hop's element after those of earlier hops,
//! `X-Forwarded-Proto` and `X-Forwarded-Host` are set when the client sent none.
//!
//! Either into the request's header map ([`Forwarding::add_to`], for the paths that hand a request to
//! hyper), or written as the HTTP/1.1 head is encoded ([`FieldWriter`], the activator's own client):
//! the same fields with the same values, without four hashed insertions into the map on every
//! request.

use std::{fmt::Write as _, net::IpAddr};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, header, header::Entry};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What this hop adds for one request: the client's address and the host it asked for.
#[derive(Clone, Debug)]
pub struct Forwarding {
    ip: IpText,
    v6: bool,
    host: HeaderValue,
}

impl Forwarding {
    /// The fields for a request from `client` for `host`.
    pub fn new(client: IpAddr, host: HeaderValue) -> Self {
        let mut ip = IpText::default();
        ip.write(client);
        Self {
            ip,
            v6: client.is_ipv6(),
            host,
        }
    }

    /// Adds the fields to `headers`. The values are built straight into the buffers the headers
    /// keep (no `format!`, one allocation per added value).
    pub fn add_to(&self, headers: &mut HeaderMap) {
        append_element(headers, &X_FORWARDED_FOR, &[self.ip.as_bytes()]);
        append_element(headers, &header::FORWARDED, &self.forwarded());
        // One hashed lookup each (an entry), not a look-up then an insert.
        headers
            .entry(&X_FORWARDED_PROTO)
            .or_insert_with(|| HeaderValue::from_static("http"));
        headers
            .entry(&X_FORWARDED_HOST)
            .or_insert_with(|| self.host.clone());
    }

    /// This hop's `Forwarded` element. RFC 7239: an IPv6 address is quoted and bracketed; the host
    /// is quoted because it may hold ':'. A host that is not visible ASCII is left out rather than
    /// sent broken.
    fn forwarded(&self) -> [&[u8]; 7] {
        let host = self.host.to_str().map_or(&b""[..], str::as_bytes);
        let (open, close): (&[u8], &[u8]) = if self.v6 { (b"\"[", b"]\"") } else { (b"", b"") };
        [
            b"for=",
            open,
            self.ip.as_bytes(),
            close,
            b";host=\"",
            host,
            b"\";proto=http",
        ]
    }
}

/// Which forwarding field a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    For,
    Forwarded,
    Proto,
    Host,
}

impl Role {
    /// The field `name` is, or `None` for any other (most fields: one comparison or a prefix).
    fn of(name: &HeaderName) -> Option<Self> {
        if name == header::FORWARDED {
            return Some(Self::Forwarded);
        }
        match name.as_str().strip_prefix("x-forwarded-")? {
            "for" => Some(Self::For),
            "proto" => Some(Self::Proto),
            "host" => Some(Self::Host),
            _ => None,
        }
    }
}

/// Writes a request's fields as the lines of an HTTP/1.1 head, with a hop's [`Forwarding`] in them:
/// the same fields and values [`Forwarding::add_to`] would leave in the map. A list field gets the
/// element after its first value, and its later values are left out, as replacing the entry does.
#[derive(Debug)]
pub struct FieldWriter<'a> {
    forwarding: Option<&'a Forwarding>,
    /// Which fields were written so far, by [`Role`].
    seen: [bool; 4],
}

impl<'a> FieldWriter<'a> {
    /// A writer adding `forwarding`, or writing the fields as they are.
    pub fn new(forwarding: Option<&'a Forwarding>) -> Self {
        Self {
            forwarding,
            seen: [false; 4],
        }
    }

    /// Writes one field.
    pub fn field(&mut self, name: &HeaderName, value: &HeaderValue, out: &mut Vec<u8>) {
        let Some((forwarding, role)) = self.forwarding.zip(Role::of(name)) else {
            return plain(out, name, value);
        };
        let first = !std::mem::replace(&mut self.seen[role as usize], true);
        let (parts, len) = match role {
            Role::For => {
                let mut parts: [&[u8]; 7] = [b""; 7];
                parts[0] = forwarding.ip.as_bytes();
                (parts, 1)
            }
            Role::Forwarded => (forwarding.forwarded(), 7),
            Role::Proto | Role::Host => return plain(out, name, value),
        };
        if !first {
            // A list's later values: replaced, as the map's entry would be.
            return;
        }
        let mut value_parts: [&[u8]; 9] = [b""; 9];
        if !value.is_empty() {
            value_parts[0] = value.as_bytes();
            value_parts[1] = b", ";
        }
        value_parts[2..2 + len].copy_from_slice(&parts[..len]);
        line(out, name, &value_parts);
    }

    /// Writes the forwarding fields the request did not have.
    pub fn finish(self, out: &mut Vec<u8>) {
        let Some(forwarding) = self.forwarding else {
            return;
        };
        let [for_, forwarded, proto, host] = self.seen;
        if !for_ {
            line(out, &X_FORWARDED_FOR, &[forwarding.ip.as_bytes()]);
        }
        if !forwarded {
            line(out, &header::FORWARDED, &forwarding.forwarded());
        }
        if !proto {
            line(out, &X_FORWARDED_PROTO, &[b"http"]);
        }
        if !host {
            line(out, &X_FORWARDED_HOST, &[forwarding.host.as_bytes()]);
        }
    }
}

/// One field line as it came.
fn plain(out: &mut Vec<u8>, name: &HeaderName, value: &HeaderValue) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// One field line: `name: ` and the concatenation of `parts`.
fn line(out: &mut Vec<u8>, name: &HeaderName, parts: &[&[u8]]) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    for part in parts {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(b"\r\n");
}

/// Adds an element made of `parts` to the list header `name`, after the elements it has (the first
/// field's), with one hashed lookup. A value that is not valid is left out rather than sent broken.
fn append_element(headers: &mut HeaderMap, name: &HeaderName, parts: &[&[u8]]) {
    let entry = headers.entry(name);
    let previous = match &entry {
        Entry::Occupied(e) => Some(e.get()),
        Entry::Vacant(_) => None,
    };
    let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(appended(previous, parts))) else {
        return;
    };
    match entry {
        Entry::Occupied(mut e) => {
            e.insert(value);
        }
        Entry::Vacant(e) => {
            e.insert(value);
        }
    }
}

/// `previous` (a list header's value, when there is one) followed by `", "` and the concatenation of
/// `parts`, in one buffer of the right size.
fn appended(previous: Option<&HeaderValue>, parts: &[&[u8]]) -> Vec<u8> {
    let previous = previous.map(HeaderValue::as_bytes).filter(|p| !p.is_empty());
    let len = previous.map_or(0, |p| p.len() + 2) + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    if let Some(previous) = previous {
        out.extend_from_slice(previous);
        out.extend_from_slice(b", ");
    }
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// An IP address as text, kept inline (an IPv6 address is at most 45 characters).
#[derive(Clone, Debug)]
struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl Default for IpText {
    fn default() -> Self {
        Self { buf: [0; 48], len: 0 }
    }
}

impl IpText {
    /// Writes `ip` as `Display` would; IPv4 (every request's client on a cluster network) without the
    /// formatting machinery.
    fn write(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.push(b'.');
                    }
                    if octet >= 100 {
                        self.push(b'0' + octet / 100);
                    }
                    if octet >= 10 {
                        self.push(b'0' + octet / 10 % 10);
                    }
                    self.push(b'0' + octet % 10);
                }
            }
            IpAddr::V6(_) => {
                let _ = write!(self, "{ip}");
            }
        }
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for IpText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
#[path = "forwarding_tests.rs"]
mod tests;
