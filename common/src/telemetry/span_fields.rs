//! The fields of a span as the JSON log format keeps them: one JSON object, written straight into
//! the span's string.
//!
//! `tracing-subscriber`'s own `JsonFields` collects a span's fields into a map of `serde_json`
//! values and serialises the map, which costs the activator about 7,500 instructions for the three
//! ids of each request's span (a third of a proxied request's own cost at the default level,
//! `info`). This writes the same object as it visits the fields, in one write to the span's string.
//! The event formatter parses it back when a line is logged inside the span, so a line carries the
//! same `span` as before (serde_json's map sorts the keys).

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::{
    field::RecordFields,
    fmt::{FormatFields, FormattedFields, format::Writer},
};

/// Formats span fields as one JSON object, for the JSON log format (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonSpanFields;

impl<'writer> FormatFields<'writer> for JsonSpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut object = Object::reopen("");
        fields.record(&mut object);
        writer.write_str(&object.finish())
    }

    /// Fields recorded after the span was made: the object is reopened and they are added at its end
    /// (a name recorded twice keeps its last value when the line is parsed).
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut object = Object::reopen(&current.fields);
        fields.record(&mut object);
        current.fields = object.finish();
        Ok(())
    }
}

/// A JSON object being written.
struct Object {
    out: String,
}

impl Object {
    /// An object that goes on from `previous` (one this type wrote, or empty). Sized so a request's
    /// three ids need no growth.
    fn reopen(previous: &str) -> Self {
        let mut out = String::with_capacity(previous.len() + 128);
        match previous.strip_suffix('}') {
            Some(open) if open.starts_with('{') => out.push_str(open),
            _ => out.push('{'),
        }
        Self { out }
    }

    /// Starts the member `name`.
    fn key(&mut self, name: &str) {
        if !self.out.ends_with('{') {
            self.out.push(',');
        }
        // As `JsonFields` does: a raw identifier's field is named without its `r#`.
        string(&mut self.out, name.strip_prefix("r#").unwrap_or(name));
        self.out.push(':');
    }

    fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

impl Visit for Object {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field.name());
        string(&mut self.out, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field.name());
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        string(&mut self.out, &text);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field.name());
        let _ = write!(self.out, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field.name());
        let _ = write!(self.out, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field.name());
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field.name());
        // JSON has no NaN or infinity: `serde_json` writes them as `null` too.
        if value.is_finite() {
            let _ = write!(self.out, "{value:?}");
        } else {
            self.out.push_str("null");
        }
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.key(field.name());
        self.out.push('[');
        for (i, b) in value.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{b}");
        }
        self.out.push(']');
    }
}

/// Writes `value` as a JSON string (RFC 8259 §7). Scans bytes: only ASCII ones need escaping, and a
/// split next to one is always at a character boundary.
pub(super) fn string(out: &mut String, value: &str) {
    out.push('"');
    let bytes = value.as_bytes();
    let mut plain = 0; // start of the run not yet written
    for (at, &b) in bytes.iter().enumerate().skip(plain_words(bytes)) {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            // As `serde_json` writes them.
            0x08 => "\\b",
            0x0c => "\\f",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&value[plain..at]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escaped);
        }
        plain = at + 1;
    }
    out.push_str(&value[plain..]);
    out.push('"');
}

/// How many leading bytes of `bytes`, in whole words of 8, need no escaping: checked a word at a time,
/// where a byte at a time cost about 20 instructions per byte (a request's span has about 100).
fn plain_words(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Non-zero when some byte of `word` is below `n` (n <= 0x80; bytes from 0x80 never match).
    let below = |word: u64, n: u64| word.wrapping_sub(ONES * n) & !word & HIGH;
    let mut skipped = 0;
    for chunk in bytes.chunks_exact(8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk).map(u64::from_le_bytes) else {
            break;
        };
        let escaped = below(word, 0x20)
            | below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1);
        if escaped != 0 {
            break;
        }
        skipped += 8;
    }
    skipped
}

#[cfg(test)]
#[path = "span_fields_tests.rs"]
mod tests;
