//! Reading a chunked response body (RFC 9112 §7.1) out of the connection's read buffer: the chunks'
//! data comes out as slices of the bytes read, without a copy; the trailer section as a header map.

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Longest chunk-size line (size, extensions) accepted.
const MAX_LINE: usize = 4096;

/// Largest trailer section accepted.
const MAX_TRAILERS: usize = 16 * 1024;

/// Where the decoder is in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk, with this many bytes of it left.
    Data(u64),
    /// At the line end after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer fields, then an empty line.
    Trailers,
    /// The body has ended.
    Done,
}

/// What the next step of decoding found.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Body bytes.
    Data(Bytes),
    /// The trailer fields; the body has ended.
    Trailers(HeaderMap),
    /// The body has ended.
    End,
    /// More bytes must be read first.
    More,
}

/// A malformed chunked body.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid chunked body: {0}")]
pub struct ChunkError(&'static str);

/// Decodes one chunked body.
#[derive(Debug)]
pub struct Decoder {
    state: State,
}

impl Default for Decoder {
    fn default() -> Self {
        Self { state: State::Size }
    }
}

impl Decoder {
    /// Takes the next piece of the body out of `buf`.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<Step, ChunkError> {
        loop {
            match self.state {
                State::Size => {
                    let Some(line) = take_line(buf, MAX_LINE)? else {
                        return Ok(Step::More);
                    };
                    let size = chunk_size(&line)?;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                    return Ok(Step::Data(buf.split_to(n).freeze()));
                }
                State::DataEnd => match take_line(buf, 2)? {
                    Some(line) if line.is_empty() => self.state = State::Size,
                    Some(_) => return Err(ChunkError("chunk data longer than its size")),
                    None => return Ok(Step::More),
                },
                State::Trailers => return self.trailers(buf),
                State::Done => return Ok(Step::End),
            }
        }
    }

    fn trailers(&mut self, buf: &mut BytesMut) -> Result<Step, ChunkError> {
        if buf.starts_with(b"\r\n") || buf.starts_with(b"\n") {
            buf.advance(if buf[0] == b'\r' { 2 } else { 1 });
            self.state = State::Done;
            return Ok(Step::End);
        }
        let mut fields = [httparse::EMPTY_HEADER; 32];
        match httparse::parse_headers(buf, &mut fields) {
            Ok(httparse::Status::Complete((len, fields))) => {
                let mut trailers = HeaderMap::with_capacity(fields.len());
                for field in fields {
                    let name = HeaderName::from_bytes(field.name.as_bytes())
                        .map_err(|_| ChunkError("trailer name"))?;
                    let value =
                        HeaderValue::from_bytes(field.value).map_err(|_| ChunkError("trailer value"))?;
                    trailers.append(name, value);
                }
                buf.advance(len);
                self.state = State::Done;
                Ok(Step::Trailers(trailers))
            }
            Ok(httparse::Status::Partial) if buf.len() > MAX_TRAILERS => {
                Err(ChunkError("trailers too large"))
            }
            Ok(httparse::Status::Partial) => Ok(Step::More),
            Err(_) => Err(ChunkError("trailers")),
        }
    }
}

/// Takes one line (without its `\r\n` or `\n`) from the front of `buf`; `None` until it is whole.
fn take_line(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, ChunkError> {
    let Some(end) = buf.iter().take(max + 2).position(|&b| b == b'\n') else {
        return if buf.len() >= max + 2 {
            Err(ChunkError("line too long"))
        } else {
            Ok(None)
        };
    };
    let mut line = buf.split_to(end + 1);
    line.truncate(end);
    if line.last() == Some(&b'\r') {
        line.truncate(end - 1);
    }
    Ok(Some(line))
}

/// The size on a chunk-size line: hex digits, then optional whitespace and `;` extensions (ignored).
fn chunk_size(line: &[u8]) -> Result<u64, ChunkError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(ChunkError("no chunk size"));
    }
    if digits > 15 {
        return Err(ChunkError("chunk size too large"));
    }
    let rest = line[digits..].trim_ascii_start();
    if !rest.is_empty() && rest[0] != b';' {
        return Err(ChunkError("chunk size"));
    }
    let size = line[..digits].iter().fold(0u64, |n, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        };
        (n << 4) | u64::from(v)
    });
    Ok(size)
}

#[cfg(test)]
#[path = "chunked_tests.rs"]
mod tests;
